"""Fuzz every service's published API through the gateway with schemathesis (``make fuzz``).

Starts its own cloud the way ``tests/e2e`` does (``stack.running_stack``: gateway, compute,
network and volume APIs from their console scripts on a temporary data directory with its
own identity keys, on a RabbitMQ virtual host of its own) with volume-agent, which
deletes volumes; its files and iSCSI targets carry a random prefix and are swept at the
end (compute and network agents do not run: servers end in ERROR, ports stay DOWN). A new
project gets a member, who calls every route its role allows; routes whose least role is
admin are called with the bootstrap admin's token. Each service's ``/openapi.json`` is read
from the service itself with a signed admin identity (the gateway never forwards it) and
its paths are rewritten to the gateway's (``/network/v2.0/...``, compute's ``/image/...``
as ``/image/...``), so every request crosses the gateway as a tenant's would.

Per operation schemathesis draws up to ``--examples`` cases (path ids: a new one or one of
a few real resources made first). A create or update whose body is published as a bare
object (``body: Any``) also gets bodies in its resource's envelope built from a create that
worked (``body_hint``), or it would only ever see arbitrary JSON. Each answer is checked: a
5xx is a server error, a body that does not match the schema the operation publishes for
that status is a schema violation. Afterwards everything the run made (the cloud's
resources listed through the admin API, before and after) is deleted through the API, and
what is still there is counted as left behind. Prints one table (operations, requests, 2xx,
4xx, 5xx, schema violations, resources made and left per service), each finding with an
example, and exits 1 if any of 5xx, violations or leftovers is not 0.

    python tests/fuzz/fuzz_api.py [--examples 50] [--seed N] [--services network,volume]
                                  [--positive-only] [--as-admin] [--show 5]

Cases come from both of schemathesis's modes: inputs the schema allows and (unless
``--positive-only``) inputs it forbids, which must be refused with a 4xx, never a 5xx.
The default (50 per operation, about 250 operations) takes about two minutes on two cores.

Settings also come from FUZZ_EXAMPLES and FUZZ_SEED.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from stack import SERVICES as PROCESSES  # noqa: E402
from stack import Caller, HostLab, IdentityAdmin, broker_vhost, running_stack  # noqa: E402

from api_gateway.domain.auth import ROLES  # noqa: E402
from api_gateway.domain.policy import NOT_PROXIED, find_rule, is_public, service_of  # noqa: E402
from common_rpc import RequestContext  # noqa: E402
from common_rpc.chassis.identity import (  # noqa: E402
    IDENTITY_HEADER,
    IdentitySigner,
    generate_keypair,
)

SERVICES = ("compute", "network", "volume")
METHODS = ("get", "head", "post", "put", "patch", "delete")
DEFAULT_EXAMPLES = 50
REQUEST_TIMEOUT_S = 30.0
DELETE_WAIT_S = 30.0
_PARAM = re.compile(r"\{([^}/]+)\}")


# --- the published documents, as the gateway serves them -------------------------------------


def read_documents(urls: dict[str, str], signer: IdentitySigner) -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, from the service itself with a signed admin identity."""
    admin = RequestContext(project_id=uuid.uuid4().hex, roles=frozenset(ROLES))
    headers = {IDENTITY_HEADER: signer.sign(admin)}
    documents = {}
    for service, url in urls.items():
        reply = httpx.get(f"{url}/openapi.json", headers=headers, timeout=REQUEST_TIMEOUT_S)
        reply.raise_for_status()
        documents[service] = reply.json()
    return documents


def least_role(target: str, method: str, rest: str) -> str | None:
    """The least role policy asks for a route (None: public); an action route's lowest."""
    if is_public(target, method, rest):
        return None
    found = find_rule(target, method, rest)
    if found is None:
        return "admin"  # no rule: the gateway refuses it; tried as the admin
    access = found[0].access
    if isinstance(access, str):
        return access
    order = {"reader": 0, "member": 1, "admin": 2}
    return min(access.values(), key=lambda role: order.get(role, 3))


def gateway_document(service: str, document: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """``document`` with its paths as the gateway serves them, and each operation's role.

    Returns the rewritten document and ``{(METHOD, gateway path): least role}``.
    """
    paths: dict[str, Any] = {}
    roles: dict[tuple[str, str], str | None] = {}
    for template, item in document["paths"].items():
        if template in NOT_PROXIED:
            continue
        target, rest = service_of(service, template)
        public = template if target != service else f"/{service}{template}"
        paths[public] = item
        for method in item:
            if method in METHODS:
                roles[(method.upper(), public)] = least_role(target, method.upper(), rest)
    return {**document, "paths": paths, "servers": []}, roles


# --- results ---------------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str  # "5xx" or "schema"
    method: str
    path: str
    status: int
    body: Any
    detail: str


@dataclass
class ServiceResult:
    operations: int = 0
    requests: int = 0
    server_errors: int = 0
    violations: int = 0
    generation_errors: list[str] = field(default_factory=list)
    findings: dict[tuple[str, str, str, int], Finding] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    made: int = 0
    left: list[str] = field(default_factory=list)

    def record(self, finding: Finding) -> None:
        key = (finding.kind, finding.method, finding.path, finding.status)
        self.findings.setdefault(key, finding)


# --- the cloud's resources, through the admin API --------------------------------------------


@dataclass(frozen=True)
class Collection:
    """One kind of resource: where the admin lists every project's, and how one is deleted."""

    service: str
    kind: str
    list_path: str  # {admin} is the admin's project
    key: str
    delete: Callable[[Cloud, dict[str, Any]], None]
    ident: str = "id"


class Cloud:
    """Calls through the gateway as the fuzz run's admin and member."""

    def __init__(self, gateway: str, admin: Caller, member: Caller) -> None:
        self.gateway = gateway
        self.admin = admin
        self.member = member
        self.http = httpx.Client(base_url=gateway, timeout=REQUEST_TIMEOUT_S)
        self.refusals: dict[str, str] = {}  # path -> the last refusal, to explain a leftover

    def call(
        self, method: str, path: str, *, caller: Caller | None = None, json: Any = None
    ) -> httpx.Response:
        path = path.format(admin=self.admin.project_id, member=self.member.project_id)
        reply = self.http.request(method, path, json=json, headers=(caller or self.admin).headers)
        if method != "GET" and reply.status_code >= 400:
            self.refusals[path.split("?")[0]] = f"{method} {reply.status_code} {reply.text[:200]}"
        return reply

    def close(self) -> None:
        self.http.close()


def _delete(path: str) -> Callable[[Cloud, dict[str, Any]], None]:
    def run(cloud: Cloud, item: dict[str, Any]) -> None:
        cloud.call("DELETE", path.format_map({**_project_keys(cloud, item), **item}))

    return run


def _project_keys(cloud: Cloud, item: dict[str, Any]) -> dict[str, str]:
    return {"admin": cloud.admin.project_id, "member": cloud.member.project_id}


def _delete_router(cloud: Cloud, router: dict[str, Any]) -> None:
    """A router's interfaces and gateway go first, as Neutron asks."""
    ports = cloud.call("GET", f"/network/v2.0/ports?device_id={router['id']}").json()
    for port in ports.get("ports", []):
        if port.get("device_owner") == "network:router_interface":
            cloud.call(
                "PUT",
                f"/network/v2.0/routers/{router['id']}/remove_router_interface",
                json={"port_id": port["id"]},
            )
    if router.get("external_gateway_info"):
        cloud.call(
            "PUT",
            f"/network/v2.0/routers/{router['id']}",
            json={"router": {"external_gateway_info": {}}},
        )
    cloud.call("DELETE", f"/network/v2.0/routers/{router['id']}")


def _delete_volume(cloud: Cloud, volume: dict[str, Any]) -> None:
    """Cascading; one whose status refuses a delete (no agent runs here) is reset to error."""
    base = f"/volume/v3/{cloud.admin.project_id}/volumes/{volume['id']}"
    if cloud.call("DELETE", f"{base}?cascade=true").status_code == 400:
        reset = {"os-reset_status": {"status": "error", "attach_status": "detached"}}
        cloud.call("POST", f"{base}/action", json=reset)
        cloud.call("DELETE", f"{base}?cascade=true")


def _delete_snapshot(cloud: Cloud, snapshot: dict[str, Any]) -> None:
    base = f"/volume/v3/{cloud.admin.project_id}/snapshots/{snapshot['id']}"
    if cloud.call("DELETE", base).status_code == 400:
        cloud.call("POST", f"{base}/action", json={"os-reset_status": {"status": "error"}})
        cloud.call("DELETE", base)


def _delete_server(cloud: Cloud, server: dict[str, Any]) -> None:
    base = f"/compute/v2.1/servers/{server['id']}"
    if cloud.call("DELETE", base).status_code >= 400:
        cloud.call("POST", f"{base}/action", json={"forceDelete": None})


def _delete_keypair(cloud: Cloud, pair: dict[str, Any]) -> None:
    cloud.call("DELETE", f"/compute/v2.1/os-keypairs/{pair['name']}?user_id={pair['user_id']}")


# Deleted in this order: what holds others first.
COLLECTIONS = (
    Collection("compute", "servers", "/compute/v2.1/servers/detail?all_tenants=1", "servers",
               _delete_server),
    Collection("compute", "server groups", "/compute/v2.1/os-server-groups?all_projects=True",
               "server_groups", _delete("/compute/v2.1/os-server-groups/{id}")),
    Collection("compute", "flavors", "/compute/v2.1/flavors/detail?is_public=None", "flavors",
               _delete("/compute/v2.1/flavors/{id}")),
    Collection("compute", "images", "/image/v2/images", "images",
               _delete("/image/v2/images/{id}")),
    Collection("network", "floating IPs", "/network/v2.0/floatingips", "floatingips",
               _delete("/network/v2.0/floatingips/{id}")),
    Collection("network", "routers", "/network/v2.0/routers", "routers", _delete_router),
    Collection("network", "ports", "/network/v2.0/ports", "ports",
               _delete("/network/v2.0/ports/{id}")),
    Collection("network", "subnets", "/network/v2.0/subnets", "subnets",
               _delete("/network/v2.0/subnets/{id}")),
    Collection("network", "networks", "/network/v2.0/networks", "networks",
               _delete("/network/v2.0/networks/{id}")),
    Collection("network", "security group rules", "/network/v2.0/security-group-rules",
               "security_group_rules", _delete("/network/v2.0/security-group-rules/{id}")),
    Collection("network", "security groups", "/network/v2.0/security-groups",
               "security_groups", _delete("/network/v2.0/security-groups/{id}")),
    Collection("volume", "attachments", "/volume/v3/{admin}/attachments?all_tenants=1",
               "attachments", _delete("/volume/v3/{admin}/attachments/{id}")),
    Collection("volume", "transfers", "/volume/v3/{admin}/os-volume-transfer?all_tenants=1",
               "transfers", _delete("/volume/v3/{admin}/os-volume-transfer/{id}")),
    Collection("volume", "backups", "/volume/v3/{admin}/backups/detail?all_tenants=1",
               "backups", _delete("/volume/v3/{admin}/backups/{id}?force=true")),
    Collection("volume", "snapshots", "/volume/v3/{admin}/snapshots/detail?all_tenants=1",
               "snapshots", _delete_snapshot),
    Collection("volume", "volumes", "/volume/v3/{admin}/volumes/detail?all_tenants=1",
               "volumes", _delete_volume),
    Collection("volume", "types", "/volume/v3/{admin}/types?is_public=None", "volume_types",
               _delete("/volume/v3/{admin}/types/{id}")),
)  # fmt: skip


def inventory(cloud: Cloud) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Every resource of every collection the admin can list: (service, kind) -> id -> item."""
    found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for coll in COLLECTIONS:
        reply = cloud.call("GET", coll.list_path)
        items = reply.json().get(coll.key, []) if reply.status_code == 200 else []
        found[(coll.service, coll.kind)] = {str(item[coll.ident]): item for item in items}
    # Keypairs belong to users: the member's and the admin's.
    for caller in (cloud.member, cloud.admin):
        reply = cloud.call("GET", f"/compute/v2.1/os-keypairs?user_id={caller.user_id}")
        pairs = reply.json().get("keypairs", []) if reply.status_code == 200 else []
        for pair in pairs:
            item = {**pair["keypair"], "user_id": caller.user_id}
            found.setdefault(("compute", "keypairs"), {})[f"{caller.user_id}/{item['name']}"] = item
    found.setdefault(("compute", "keypairs"), {})
    return found


def made_since(
    before: dict[tuple[str, str], dict[str, dict[str, Any]]],
    after: dict[tuple[str, str], dict[str, dict[str, Any]]],
) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    return {
        key: {i: item for i, item in items.items() if i not in before.get(key, {})}
        for key, items in after.items()
    }


def clean_up(cloud: Cloud, before: dict) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Delete what the run made, in order, until nothing new is left or time is up."""
    deleters = {(c.service, c.kind): c.delete for c in COLLECTIONS}
    deleters[("compute", "keypairs")] = _delete_keypair
    deadline = time.monotonic() + DELETE_WAIT_S
    while True:
        new = made_since(before, inventory(cloud))
        if not any(new.values()) or time.monotonic() > deadline:
            return new
        for coll in (*COLLECTIONS, None):
            key = ("compute", "keypairs") if coll is None else (coll.service, coll.kind)
            for item in new.get(key, {}).values():
                with contextlib.suppress(httpx.HTTPError):
                    deleters[key](cloud, item)
        time.sleep(1)


# --- fuzzing ---------------------------------------------------------------------------------


@dataclass
class Seeds:
    """What the run made first: ids for path parameters, and each collection's body shape."""

    ids: list[str] = field(default_factory=list)
    # gateway collection path -> (envelope, a create body that worked, the resource made)
    shapes: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=dict)

    def add(self, path: str, sent: dict[str, Any], reply: httpx.Response) -> None:
        envelope = next(iter(sent))
        if reply.status_code in (200, 201, 202):
            item = reply.json()[envelope]
            self.ids.append(str(item["id"]))
            self.shapes[path] = (envelope, sent[envelope], item)


def seed_resources(cloud: Cloud) -> Seeds:
    """A few real resources of the member's, so some path ids name something that exists."""
    seeds = Seeds()
    m = cloud.member
    body = {"network": {"name": "fz"}}
    net = cloud.call("POST", "/network/v2.0/networks", caller=m, json=body)
    seeds.add("/network/v2.0/networks", body, net)
    if net.status_code == 201:
        net_id = net.json()["network"]["id"]
        body = {"subnet": {"network_id": net_id, "cidr": "10.99.0.0/24", "ip_version": 4}}
        sub = cloud.call("POST", "/network/v2.0/subnets", caller=m, json=body)
        seeds.add("/network/v2.0/subnets", body, sub)
        body = {"port": {"network_id": net_id}}
        port = cloud.call("POST", "/network/v2.0/ports", caller=m, json=body)
        seeds.add("/network/v2.0/ports", body, port)
    a = cloud.admin
    for who, path, body in (
        (m, "/network/v2.0/routers", {"router": {"name": "fz"}}),
        (m, "/network/v2.0/security-groups", {"security_group": {"name": "fz"}}),
        (m, "/volume/v3/{project_id}/volumes", {"volume": {"size": 1, "name": "fz"}}),
        (m, "/compute/v2.1/os-server-groups",
         {"server_group": {"name": "fz", "policies": ["affinity"]}}),
        (a, "/volume/v3/{project_id}/types", {"volume_type": {"name": "fz"}}),
        (a, "/compute/v2.1/flavors", {"flavor": {"name": "fz", "ram": 64, "vcpus": 1, "disk": 1}}),
    ):  # fmt: skip
        project = "{member}" if who is m else "{admin}"
        reply = cloud.call("POST", path.replace("{project_id}", project), caller=who, json=body)
        seeds.add(path, body, reply)
    if "/network/v2.0/security-groups" in seeds.shapes:
        group = seeds.shapes["/network/v2.0/security-groups"][2]["id"]
        body = {"security_group_rule": {"security_group_id": group, "direction": "ingress"}}
        reply = cloud.call("POST", "/network/v2.0/security-group-rules", caller=m, json=body)
        seeds.add("/network/v2.0/security-group-rules", body, reply)
    return seeds


def body_hint(seeds: Seeds, method: str, path: str) -> Any | None:
    """Bodies in a collection's envelope, for a create or update published as a bare object.

    A create body that worked, with up to four attributes of the resource it made added
    or changed: to that resource's value, one of the same type, another seed's id, or
    any JSON. A stand-in until the services publish their request bodies as models.
    """
    from hypothesis import strategies as st

    collection = path if method == "POST" else path.rsplit("/", 1)[0]
    if method not in ("POST", "PUT") or collection not in seeds.shapes:
        return None
    envelope, base, item = seeds.shapes[collection]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=6,
    )
    ids = st.sampled_from(seeds.ids) if seeds.ids else st.uuids().map(str)

    def like(value: Any) -> Any:
        typed: Any = json_values
        if isinstance(value, bool):
            typed = st.booleans()
        elif isinstance(value, int):
            typed = st.integers(-(2**40), 2**40)
        elif isinstance(value, str):
            typed = st.text(max_size=300) | ids
        elif isinstance(value, list):
            typed = st.lists(json_values, max_size=3)
        elif isinstance(value, dict):
            typed = st.dictionaries(st.text(max_size=12), json_values, max_size=3)
        return st.just(value) | typed | json_values

    fields = {key: like(value) for key, value in {**item, **base}.items() if key != "id"}
    changed = st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({key: fields[key] for key in keys})
    )
    start = st.just(base) if method == "POST" else st.just({})
    return st.tuples(start, changed).map(lambda pair: {envelope: {**pair[0], **pair[1]}})


def _bare_body(operation: Any) -> bool:
    """A request body published as any object (``body: Any``/``dict``), not a model."""
    body = (operation.definition.raw or {}).get("requestBody") or {}
    schema = body.get("content", {}).get("application/json", {}).get("schema")
    return isinstance(schema, dict) and not ({"$ref", "properties", "anyOf", "oneOf"} & set(schema))


def _status_of(item: dict[str, Any]) -> str:
    return str(item.get("status", "no status"))


def _refusal(cloud: Cloud, ident: str) -> str:
    said = [text for path, text in cloud.refusals.items() if ident.split("/")[-1] in path]
    return said[-1] if said else "no refusal seen"


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


def fuzz_service(
    service: str,
    document: dict[str, Any],
    cloud: Cloud,
    seeds: Seeds,
    *,
    examples: int,
    seed: int,
    negative: bool,
    as_admin: bool = False,
) -> ServiceResult:
    """Every operation of one service, ``examples`` cases each, through the gateway."""
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import response_schema_conformance

    result = ServiceResult()
    rewritten, roles = gateway_document(service, document)
    schema = schemathesis.openapi.from_dict(rewritten)
    session = requests.Session()
    modes = [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if negative else [])]
    for entry in schema.get_all_operations():
        try:
            operation = entry.ok()
        except Exception as exc:
            result.generation_errors.append(f"{service}: unreadable operation: {exc}")
            continue
        method, path = operation.method.upper(), operation.path
        role = roles.get((method, path), "member")
        caller = cloud.admin if role == "admin" or as_admin else cloud.member
        names = _PARAM.findall(path)
        result.operations += 1

        def fixed(choices: list[str | None], names: list[str] = names) -> dict[str, Any]:
            return {n: c for n, c in zip(names, choices, strict=True) if c is not None}

        ids = st.lists(
            st.sampled_from([None, *seeds.ids]), min_size=len(names), max_size=len(names)
        )
        hint = body_hint(seeds, method, path) if _bare_body(operation) else None

        def strategy(
            choices: list[str | None],
            op: Any = operation,
            who: Caller = caller,
            names: list[str] = names,
            hint: Any = hint,
        ) -> Any:
            params = fixed(choices)
            if "project_id" in names:
                params["project_id"] = who.project_id
            drawn = [op.as_strategy(mode, path_parameters=params) for mode in modes]
            if hint is not None:
                positive = GenerationMode.POSITIVE
                drawn.append(
                    hint.flatmap(lambda b: op.as_strategy(positive, path_parameters=params, body=b))
                )
            return st.one_of(*drawn)

        def run_case(case: Any, who: Caller = caller, m: str = method, p: str = path) -> None:
            try:
                response = case.call(
                    base_url=cloud.gateway,
                    session=session,
                    headers=who.headers,
                    timeout=REQUEST_TIMEOUT_S,
                )
            except requests.RequestException as exc:
                result.requests += 1
                result.server_errors += 1
                result.record(Finding("5xx", m, p, 0, case.body, f"no answer: {exc}"))
                return
            result.requests += 1
            result.statuses[response.status_code] += 1
            real_path = case.formatted_path if hasattr(case, "formatted_path") else p
            if response.status_code >= 500:
                result.server_errors += 1
                result.record(
                    Finding("5xx", m, p, response.status_code, _body_of(case, real_path),
                            _short(response.text))
                )  # fmt: skip
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                result.violations += 1
                result.record(
                    Finding("schema", m, p, response.status_code, _body_of(case, real_path),
                            _short(f"{_failure_text(exc)} | got {response.text}", 600))
                )  # fmt: skip

        test = _hypothesis_test(ids.flatmap(strategy), run_case, examples=examples, seed=seed)
        try:
            test()
        except Exception as exc:
            result.generation_errors.append(f"{method} {path}: {type(exc).__name__}: {exc}"[:300])
    session.close()
    return result


def _hypothesis_test(
    cases: Any, run: Callable[[Any], None], *, examples: int, seed: int
) -> Callable[[], None]:
    """``run`` on ``examples`` cases drawn from ``cases``; findings are recorded, not raised."""
    import hypothesis
    from hypothesis import strategies as st

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.given(data=st.data())
    def test(data: Any) -> None:
        run(data.draw(cases))

    return test


def _body_of(case: Any, path: str) -> str:
    query = f"?{_short(case.query, 120)}" if case.query else ""
    body = case.body if not _is_unset(case.body) else None
    return f"{path}{query} body={_short(body, 300)}"


def _is_unset(value: Any) -> bool:
    return type(value).__name__ == "NotSet"


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_failure_text(e) for e in exc.exceptions)
    title = getattr(exc, "title", type(exc).__name__)
    message = getattr(exc, "message", str(exc))
    return f"{title}: {message}".replace("\n", " ")


# --- the run ---------------------------------------------------------------------------------


LOG_DIR = ROOT / "build" / "fuzz"


def keep_logs(names: Iterable[str], log_file: Callable[[str], Path]) -> None:
    """The processes' logs into build/fuzz/ (the data directory goes away), tracebacks named."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        with contextlib.suppress(OSError):
            text = log_file(name).read_text(errors="replace")
            (LOG_DIR / f"{name}.log").write_text(text)
            if "Traceback" in text:
                print(f"  note: {name}'s log has tracebacks: {LOG_DIR / f'{name}.log'}")


def print_report(results: dict[str, ServiceResult], show: int, seconds: float) -> bool:
    """The table, then each finding; True when every figure that must be 0 is 0."""
    print()
    header = f"{'service':<9} {'operations':>10} {'requests':>9} {'2xx':>5} {'4xx':>5} {'5xx':>5} "
    print(header + f"{'schema':>7} {'made':>6} {'left':>5}")
    ok = True
    for service, r in results.items():
        ok_2xx = sum(n for status, n in r.statuses.items() if 200 <= status < 300)
        refused = sum(n for status, n in r.statuses.items() if 400 <= status < 500)
        print(
            f"{service:<9} {r.operations:>10} {r.requests:>9} {ok_2xx:>5} {refused:>5} "
            f"{r.server_errors:>5} {r.violations:>7} {r.made:>6} {len(r.left):>5}"
        )
        ok = ok and not (r.server_errors or r.violations or r.left)
    print(f"({seconds:.0f} s)")
    for service, r in results.items():
        if r.findings or r.left or r.generation_errors:
            print(f"\n== {service}")
        for finding in list(r.findings.values())[: show if show > 0 else None]:
            print(f"  {finding.kind} {finding.status} {finding.method} {finding.body}")
            print(f"      -> {finding.detail}")
        if show > 0 and len(r.findings) > show:
            print(f"  ... {len(r.findings) - show} more distinct findings (--show 0: all)")
        for left in r.left:
            print(f"  left behind: {left}")
        for error in r.generation_errors:
            print(f"  not generated: {error}")
    print("\nfuzz: " + ("ok" if ok else "FAILED (5xx, schema violations or leftovers above)"))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "0")) or None)
    parser.add_argument("--services", default=",".join(SERVICES))
    parser.add_argument(
        "--as-admin", action="store_true", help="every route with the admin's token"
    )
    parser.add_argument(
        "--positive-only", action="store_true", help="no schema-breaking inputs (default: both)"
    )
    parser.add_argument("--show", type=int, default=0, help="findings shown per service (0: all)")
    args = parser.parse_args(argv)
    seed = args.seed or random.randrange(1, 2**31)
    services = [s for s in args.services.split(",") if s]
    print(f"fuzz: {args.examples} examples per operation, seed {seed} (FUZZ_SEED={seed} repeats)")
    started = time.monotonic()
    lab = HostLab.create()
    try:
        return _run(args, services, seed, started, lab)
    finally:
        lab.sweep()


def _run(
    args: argparse.Namespace, services: list[str], seed: int, started: float, lab: HostLab
) -> int:
    """The stack (with volume-agent: a volume is deleted by its host), the run, the report."""
    data_dir = lab.root / "stack"
    data_dir.mkdir()
    generate_keypair(data_dir / "keys")
    # A virtual host of its own: the services' topics are fixed names other stacks share.
    with (
        broker_vhost(f"stackling-fuzz-{lab.prefix}") as amqp_url,
        running_stack(
            data_dir,
            (*PROCESSES, "volume-agent"),
            env={**lab.env(), "STACKLING_AMQP_URL": amqp_url},
        ) as stack,
    ):
        signer = IdentitySigner.from_file(data_dir / "keys" / "identity.key")
        documents = read_documents({s: stack.url(s) for s in services}, signer)
        identity = IdentityAdmin(stack.url("gateway"), stack.admin_password)
        project = identity.create_project(f"fuzz-{uuid.uuid4().hex[:8]}")
        member = identity.add_user(f"fuzz-member-{uuid.uuid4().hex[:8]}", project, "member")
        cloud = Cloud(stack.url("gateway"), identity.admin, member)
        try:
            before = inventory(cloud)  # before the seeds: they are cleaned up too
            seeds = seed_resources(cloud)
            results: dict[str, ServiceResult] = {}
            for service in services:
                t0 = time.monotonic()
                results[service] = fuzz_service(
                    service, documents[service], cloud, seeds,
                    examples=args.examples, seed=seed,
                    negative=not args.positive_only, as_admin=args.as_admin,
                )  # fmt: skip
                r = results[service]
                print(
                    f"  {service}: {r.operations} operations, {r.requests} requests "
                    f"in {time.monotonic() - t0:.0f} s",
                    flush=True,
                )
            made = made_since(before, inventory(cloud))
            left = clean_up(cloud, before)
            for (service, _kind), items in made.items():
                if service in results:
                    results[service].made += len(items)
            for (service, kind), items in left.items():
                if not items:
                    continue
                results.setdefault(service, ServiceResult()).left.extend(
                    f"{kind} {i}: {_status_of(item)}; {_refusal(cloud, i)}"
                    for i, item in items.items()
                )
            for what, names in lab.leftovers().items():
                for name in names:
                    results.setdefault("volume", ServiceResult()).left.append(
                        f"on the host: {what} {name}"
                    )
        finally:
            cloud.close()
            identity.close()
        keep_logs(stack.procs, stack.log_file)
        ok = print_report(results, args.show, time.monotonic() - started)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
