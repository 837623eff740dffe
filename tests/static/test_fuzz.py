"""`make fuzz`'s fixed parts, without a cloud: the target, the pin, and the harness's
rewriting of a service's document to the gateway's paths and roles."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import Response
from fastapi.openapi.utils import _get_api_route_for_openapi
from fastapi.routing import iter_route_contexts

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "fuzz" / "fuzz_api.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_api", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_api"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz_api = _load()


def test_make_fuzz_runs_the_harness() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M)
    assert phony is not None and "fuzz" in phony.group(1).split()
    recipe = re.search(r"^fuzz:.*\n\t(.*)$", makefile, re.M)
    assert recipe is not None and "tests/fuzz/fuzz_api.py" in recipe.group(1)


def test_schemathesis_is_pinned_and_installed_by_setup() -> None:
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert any(re.fullmatch(r"schemathesis==[\d.]+", line) for line in pins)
    tools = re.search(r"^DEV_TOOLS=\((.*)\)$", (ROOT / "deploy" / "setup.sh").read_text(), re.M)
    assert tools is not None and "schemathesis" in tools.group(1).split()


def test_documents_are_rewritten_to_the_gateways_paths_and_roles() -> None:
    item = {"get": {"responses": {}}, "put": {"responses": {}}}
    compute = {"paths": {"/v2.1/servers": item, "/image/v2/images": item, "/openapi.json": item}}
    rewritten, roles = fuzz_api.gateway_document("compute", compute)
    assert set(rewritten["paths"]) == {"/compute/v2.1/servers", "/image/v2/images"}
    assert roles[("GET", "/compute/v2.1/servers")] == "reader"
    network = {"paths": {"/v2.0/agents/{agent_id}": item, "/v2.0/networks": item}}
    _, roles = fuzz_api.gateway_document("network", network)
    assert roles[("PUT", "/network/v2.0/agents/{agent_id}")] == "admin"
    assert roles[("GET", "/network/v2.0/networks")] == "reader"


def _empty_body_routes_published_as_json(app: Any) -> list[str]:
    """Routes whose handler answers a bare ``Response`` (no body) but publish a JSON one."""
    document = app.openapi()
    wrong = []
    for context in iter_route_contexts(app.routes):
        route = _get_api_route_for_openapi(context)
        if route is None or route.path_format not in document["paths"]:
            continue  # not published (/metrics)
        returns = route.endpoint.__annotations__.get("return")
        if returns not in (Response, "Response"):
            continue
        for method in route.methods:
            answers = document["paths"][route.path_format][method.lower()]["responses"]
            status = str(route.status_code or 200)
            if "application/json" in answers.get(status, {}).get("content", {}):
                wrong.append(f"{method} {route.path_format} {status}")
    return sorted(wrong)


@pytest.mark.parametrize("service", ["compute", "network", "volume"])
def test_empty_answers_are_published_without_a_body(service: str, tmp_path: Path) -> None:
    """A 201/202/200 with no body (or bytes, not JSON) is documented so, as the fuzzer
    reads it."""
    if service == "compute":
        from compute_svc.app import create_app
        from compute_svc.settings import ComputeSettings as Settings
    elif service == "network":
        from network_svc.app import create_app
        from network_svc.settings import NetworkSettings as Settings
    else:
        from volume_svc.app import create_app
        from volume_svc.settings import VolumeSettings as Settings
    app = create_app(Settings(data_dir=tmp_path))
    assert _empty_body_routes_published_as_json(app) == []
