"""`make conformance`'s fixed parts, without a cloud or Tempest: the guideline's ID list,
the pins, the tempest.conf generator (describes the cloud, switches no feature off) and the
classification of Tempest's results (a skip nobody accepted is a failure)."""

from __future__ import annotations

import configparser
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "conformance"
LIST = HERE / "interop-2020.06-powered-compute.txt"
SHARED_LIST = ROOT.parent / "shared" / "conformance" / LIST.name
TEST_ID = re.compile(r"^tempest\.api\.(compute|network|volume|image|identity)(\.\w+)+\.test_\w+$")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


tempest_conf = _load("tempest_conf")
results = _load("results")


def test_the_list_is_the_guidelines_217_tests() -> None:
    ids = results.read_ids(LIST)
    assert len(ids) == len(set(ids)) == 217
    assert [i for i in ids if not TEST_ID.match(i)] == []
    components = Counter(i.split(".")[2] for i in ids)
    assert components == {"compute": 75, "network": 61, "volume": 54, "image": 20, "identity": 7}


@pytest.mark.skipif(not SHARED_LIST.exists(), reason="no shared/ beside the repository")
def test_the_list_is_the_shared_one() -> None:
    assert LIST.read_text() == SHARED_LIST.read_text()


def test_accepted_skips_are_listed_tests_with_a_reason() -> None:
    ids = set(results.read_ids(LIST))
    for test_id, reason in results.read_accepted(HERE / "accepted-skips.txt").items():
        assert test_id in ids, test_id
        assert reason, f"{test_id}: say why upstream skips it too"


def test_constraints_pin_every_package() -> None:
    lines = [
        line
        for line in (HERE / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [line for line in lines if not re.match(r"^[\w.\-]+==[\w.\-+]+$", line)] == []
    names = {line.split("==")[0].lower() for line in lines}
    assert {"tempest", "openstacksdk", "stestr", "python-subunit"} <= names


def _cloud(**changes: object) -> object:
    fields = dict(
        auth_url="http://127.0.0.1:8080/identity/v3",
        region="RegionOne",
        admin_username="admin",
        admin_password="s3cret",
        admin_project_name="admin",
        admin_user_domain_name="Default",
        admin_project_domain_name="Default",
        image_ref="img-1",
        image_ref_alt="img-2",
        flavor_ref="fl-1",
        flavor_ref_alt="fl-2",
        public_network_id="net-1",
        public_network_name="conformance-public",
        network_extensions=("router", "external-net", "router"),
        volume_extensions=(),
    )
    fields.update(changes)
    return tempest_conf.Cloud(**fields)


def _parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_tempest_conf_describes_the_prepared_cloud() -> None:
    run = tempest_conf.Run(log_dir="/b", lock_path="/b/lock", build_timeout=900)
    conf = _parse(tempest_conf.render(_cloud(), run))
    assert conf["identity"]["uri_v3"] == "http://127.0.0.1:8080/identity/v3"
    assert conf["auth"]["admin_password"] == "s3cret"
    assert conf["auth"]["use_dynamic_credentials"] == "true"
    assert conf["compute"]["image_ref"] != conf["compute"]["image_ref_alt"]
    assert conf["compute"]["flavor_ref"] != conf["compute"]["flavor_ref_alt"]
    assert conf["compute"]["build_timeout"] == conf["volume"]["build_timeout"] == "900"
    assert conf["network"]["public_network_id"] == "net-1"
    # The advertised extensions, once each; none advertised is none, not Tempest's "all".
    assert conf["network-feature-enabled"]["api_extensions"] == "external-net,router"
    assert conf["volume-feature-enabled"]["api_extensions"] == ""
    assert conf["DEFAULT"]["log_dir"] == "/b"
    assert "max_microversion" not in conf["compute"]  # none advertised: the base version


def test_tempest_conf_takes_the_advertised_microversions() -> None:
    run = tempest_conf.Run(log_dir="/b", lock_path="/b/lock")
    cloud = _cloud(compute_max_microversion="2.1", volume_max_microversion="3.0")
    conf = _parse(tempest_conf.render(cloud, run))
    assert conf["compute"]["max_microversion"] == "2.1"
    assert conf["volume"]["max_microversion"] == "3.0"
    assert "min_microversion" not in conf["compute"]  # requests at the base: no header


def test_tempest_conf_switches_no_feature_off() -> None:
    """Feature flags stay at Tempest's defaults: a missing feature fails, it is not skipped.
    Only SSH validation is off (the guest has no sshd); its skips count as failures."""
    run = tempest_conf.Run(log_dir="/b", lock_path="/b/lock")
    conf = _parse(tempest_conf.render(_cloud(), run))
    flags = {
        (section, key)
        for section in conf.sections()
        if section.endswith("-feature-enabled")
        for key, value in conf[section].items()
        if key not in conf.defaults() and value == "false"
    }
    assert flags == {
        ("identity-feature-enabled", "api_v2"),  # Keystone v2 is gone upstream too
        ("image-feature-enabled", "image_format_enforcement"),  # uploads are not inspected
    }
    assert conf["validation"]["run_validation"] == "false"
    available = {k for k, v in conf["service_available"].items() if k not in conf.defaults()}
    assert {"nova", "neutron", "cinder", "glance"} <= {
        k for k in available if conf.getboolean("service_available", k)
    }


@pytest.mark.parametrize(
    ("auth_url", "uri_v3"),
    [
        ("http://gw/identity", "http://gw/identity/v3"),
        ("http://gw/identity/", "http://gw/identity/v3"),
        ("http://gw/identity/v3/", "http://gw/identity/v3"),
    ],
)
def test_identity_v3_from_any_auth_url(auth_url: str, uri_v3: str) -> None:
    assert tempest_conf.identity_v3(auth_url) == uri_v3


def test_operator_options_are_laid_over() -> None:
    run = tempest_conf.Run(
        log_dir="/b", lock_path="/l", extra={"compute": {"build_timeout": "1200"}, "x": {"y": "z"}}
    )
    conf = _parse(tempest_conf.render(_cloud(), run))
    assert conf["compute"]["build_timeout"] == "1200"
    assert conf["x"]["y"] == "z"


CLS = "tempest.api.compute.servers.test_servers.ServersTestJSON"
OTHER = "tempest.api.volume.test_versions.VersionsTest"


def _record(test_id: str, status: str, **details: str) -> dict[str, object]:
    return {"id": test_id, "status": status, "details": details}


def test_classification() -> None:
    ids = [f"{CLS}.test_a", f"{CLS}.test_b", f"{CLS}.test_c", f"{CLS}.test_d",
           f"{OTHER}.test_list_versions", "tempest.api.image.v2.test_x.X.test_gone"]  # fmt: skip
    traceback = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in t\n    boom()\n'
        "tempest.lib.exceptions.NotFound: Object not found\nDetails: {'code': 404}\n"
    )
    records = [
        _record(f"{CLS}.test_a[id-1,smoke]", "success"),
        _record(f"{CLS}.test_b[id-2]", "fail", traceback=traceback),
        _record(f"{CLS}.test_c[id-3]", "skip", reason="Pause is not available."),
        _record(f"{CLS}.test_d[id-4]", "skip", reason="Upstream skips it"),
        _record(f"setUpClass ({OTHER})", "fail", traceback=traceback),
    ]
    known = set(ids) - {"tempest.api.image.v2.test_x.X.test_gone"}
    out = results.classify(ids, records, {f"{CLS}.test_d": "reason"}, known)
    assert {k.rsplit(".", 1)[1]: v["status"] for k, v in out.items()} == {
        "test_a": "passed",
        "test_b": "failed",
        "test_c": "failed",  # a skip nobody accepted
        "test_d": "skipped",
        "test_list_versions": "failed",  # its class never set up
        "test_gone": "failed",
    }
    assert out[f"{CLS}.test_b"]["detail"].splitlines() == [
        "tempest.lib.exceptions.NotFound: Object not found",
        "Details: {'code': 404}",
    ]
    assert out[f"{CLS}.test_c"]["detail"] == "Pause is not available."
    assert out[f"{OTHER}.test_list_versions"]["detail"].startswith("setUpClass: tempest.lib")
    assert "not found in this Tempest" in out["tempest.api.image.v2.test_x.X.test_gone"]["detail"]
    assert results.summary(out) == {"passed": 1, "failed": 4, "skipped": 1}


def test_error_lines_are_the_exception_after_the_last_frame() -> None:
    mismatch = (
        'Traceback (most recent call last):\n  File "y.py", line 2, in t\n    check()\n'
        "    ^^^^^^^\ntesttools.matchers._impl.MismatchError: !=:\n"
        "reference = {'cores': 20,\n     'ram': 51200}\n"
    )
    assert results.error_lines(mismatch).splitlines() == [
        "testtools.matchers._impl.MismatchError: !=:",
        "reference = {'cores': 20,",
        "     'ram': 51200}",
    ]
