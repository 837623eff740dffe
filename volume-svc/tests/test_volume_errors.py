"""Cinder's faults on the negative paths clients and Tempest take: status, fault key and the
exact message, one row per request (cinder/api/schemas, cinder/exception.py, the volume
API's InvalidInput/InvalidVolume texts and tempest/api/volume/*negative*).

One API (with its agent) serves the whole table: a volume of 2 GiB with a snapshot, in
project p1. No row changes anything, which the last test checks.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from volapi_helpers import Api, volume_api

pytestmark = pytest.mark.asyncio(loop_scope="module")

MISSING = str(uuid.uuid4())
BOOLEANS = (
    "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', "
    "False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f']"
)

# (method, path, body, roles) -> (status, fault key, message); {vol}, {snap} and {missing}
# are filled in from the fixture.
TABLE: list[tuple[str, str, Any, tuple[str, ...], int, str, str]] = [
    # volume create: Cinder's JSON schema, then the references, then the size
    ("POST", "/volumes", {"volume": {"size": "#$%"}}, (), 400, "badRequest",
     "Invalid input for field/attribute size. Value: #$%. '#$%' does not match '^[0-9]+$'"),
    ("POST", "/volumes", {"volume": {"size": ""}}, (), 400, "badRequest",
     "Invalid input for field/attribute size. Value: . '' does not match '^[0-9]+$'"),
    ("POST", "/volumes", {"volume": {"size": "0"}}, (), 400, "badRequest",
     "Invalid input for field/attribute size. Value: 0. 0 is less than the minimum of 1"),
    ("POST", "/volumes", {"volume": {"size": -1}}, (), 400, "badRequest",
     "Invalid input for field/attribute size. Value: -1. -1 is less than the minimum of 1"),
    ("POST", "/volumes", {"volume": {"size": "-1"}}, (), 400, "badRequest",
     "Invalid input for field/attribute size. Value: -1. '-1' does not match '^[0-9]+$'"),
    ("POST", "/volumes", {"volume": {"size": 1.5}}, (), 400, "badRequest",
     "Invalid input for field/attribute size. Value: 1.5. 1.5 is not of type 'integer', "
     "'string', 'null'"),
    ("POST", "/volumes", {"volume": {}}, (), 400, "badRequest",
     "Invalid input received: Volume size 'None' must be an integer and greater than 0"),
    ("POST", "/volumes", {"size": 1}, (), 400, "badRequest",
     "'volume' is a required property"),
    ("POST", "/volumes", [1], (), 400, "badRequest", "[1] is not of type 'object'"),
    ("POST", "/volumes", {"volume": "big"}, (), 400, "badRequest",
     "Invalid input for field/attribute volume. Value: big. 'big' is not of type 'object'"),
    ("POST", "/volumes", {"volume": {"size": 1, "volume_type": "gold"}}, (), 404,
     "itemNotFound", "Volume type with name gold could not be found."),
    ("POST", "/volumes", {"volume": {"size": 1, "snapshot_id": "{missing}"}}, (), 404,
     "itemNotFound", "Snapshot {missing} could not be found."),
    ("POST", "/volumes", {"volume": {"size": 1, "snapshot_id": "nope"}}, (), 400,
     "badRequest", "Invalid input for field/attribute snapshot_id. Value: nope. 'nope' is not "
     "valid under any of the given schemas"),
    ("POST", "/volumes", {"volume": {"size": 1, "source_volid": "{missing}"}}, (), 404,
     "itemNotFound", "Volume {missing} could not be found."),
    ("POST", "/volumes", {"volume": {"size": 1, "snapshot_id": "{snap}"}}, (), 400,
     "badRequest", "Invalid input received: Volume size '1'GB cannot be smaller than the "
     "snapshot size 2GB. They must be >= original snapshot size."),
    ("POST", "/volumes", {"volume": {"size": 1, "source_volid": "{vol}"}}, (), 400,
     "badRequest", "Invalid input received: Volume size '1'GB cannot be smaller than original "
     "volume size  2GB. They must be >= original volume size."),
    ("POST", "/volumes", {"volume": {"size": 20000}}, (), 413, "overLimit",
     "Requested volume size 20000G is larger than maximum allowed limit 16384G."),
    ("POST", "/volumes", {"volume": {"size": 1000}}, (), 413, "overLimit",
     "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 1000G, quota is "
     "1000G and 4G has been consumed."),
    # volumes that are not there, or not the caller's
    ("GET", "/volumes/{missing}", None, (), 404, "itemNotFound",
     "Volume {missing} could not be found."),
    ("PUT", "/volumes/{missing}", {"volume": {"name": "n"}}, (), 404, "itemNotFound",
     "Volume {missing} could not be found."),
    ("DELETE", "/volumes/{missing}", None, (), 404, "itemNotFound",
     "Volume {missing} could not be found."),
    ("GET", "/volumes/{vol}", "p2", (), 404, "itemNotFound", "Volume {vol} could not be found."),
    ("GET", "/volumes/{vol}/metadata/nokey", None, (), 404, "itemNotFound",
     "Volume {vol} has no metadata with key nokey."),
    ("DELETE", "/volumes/{vol}", None, (), 400, "badRequest",
     "Invalid volume: Volume status must be available or error or error_restoring or "
     "error_extending or error_managing and must not be migrating, attached, belong to a "
     "group, have snapshots, awaiting a transfer, or be disassociated from snapshots after "
     "volume transfer."),
    # actions
    ("POST", "/volumes/{vol}/action", {"os-extend": {"new_size": 2}}, (), 400, "badRequest",
     "Invalid input received: New size for extend must be greater than current size. "
     "(current: 2, extended: 2)."),
    ("POST", "/volumes/{vol}/action", {"os-extend": {"new_size": "abc"}}, (), 400,
     "badRequest",
     "Invalid input for field/attribute new_size. Value: abc. 'abc' does not match '^[0-9]+$'"),
    ("POST", "/volumes/{vol}/action", {"os-extend": {"new_size": None}}, (), 400,
     "badRequest", "Invalid input for field/attribute new_size. Value: None. None is not of "
     "type 'integer', 'string'"),
    ("POST", "/volumes/{vol}/action", {"os-extend": {}}, (), 400, "badRequest",
     "Invalid input for field/attribute os-extend. Value: {}. 'new_size' is a required "
     "property"),
    ("POST", "/volumes/{vol}/action", {"os-extend": {"new_size": 20000}}, (), 413,
     "overLimit", "Requested volume size 20000G is larger than maximum allowed limit 16384G."),
    ("POST", "/volumes/{missing}/action", {"os-extend": {"new_size": 3}}, (), 404,
     "itemNotFound", "Volume {missing} could not be found."),
    ("POST", "/volumes/None/action", {"os-extend": {"new_size": 3}}, (), 404, "itemNotFound",
     "Volume None could not be found."),
    ("POST", "/volumes/{vol}/action", {"os-frobnicate": {}}, (), 400, "badRequest",
     "There is no such action: os-frobnicate. Verify the request body and Content-Type header "
     "and try again."),
    # an action on a volume or snapshot that is not there is a 404 whatever the action
    ("POST", "/volumes/{missing}/action", {"os-frobnicate": {}}, (), 404, "itemNotFound",
     "Volume {missing} could not be found."),
    ("POST", "/volumes/{vol}/action", {"os-frobnicate": {}}, "p2", 404, "itemNotFound",
     "Volume {vol} could not be found."),
    ("POST", "/snapshots/{missing}/action", {"os-frobnicate": {}}, (), 404, "itemNotFound",
     "Snapshot {missing} could not be found."),
    ("POST", "/snapshots/{snap}/action", {"os-frobnicate": {}}, (), 400, "badRequest",
     "There is no such action: os-frobnicate. Verify the request body and Content-Type header "
     "and try again."),
    ("POST", "/volumes/{vol}/action", {"os-set_bootable": {"bootable": "maybe"}}, (), 400,
     "badRequest", f"Invalid input for field/attribute bootable. Value: maybe. 'maybe' is not "
     f"one of {BOOLEANS}"),
    ("POST", "/volumes/{vol}/action", {"os-set_bootable": {}}, (), 400, "badRequest",
     "Invalid input for field/attribute os-set_bootable. Value: {}. 'bootable' is a required "
     "property"),
    ("POST", "/volumes/{vol}/action", {"os-update_readonly_flag": {}}, (), 400, "badRequest",
     "Invalid input for field/attribute os-update_readonly_flag. Value: {}. 'readonly' is a "
     "required property"),
    ("POST", "/volumes/{vol}/action", {"os-extend": {"new_size": 3}, "x": 1}, (), 400,
     "badRequest", "Malformed request body"),
    ("POST", "/volumes/{vol}/action", {"os-reset_status": {"status": "error"}}, (), 403,
     "forbidden", "Policy doesn't allow volume_extension:volume_admin_actions:reset_status to "
     "be performed."),
    ("POST", "/volumes/{vol}/action", {"os-reset_status": {"status": "flying"}}, ("admin",),
     400, "badRequest", "Invalid input for field/attribute status. Value: flying. 'flying' is "
     "not a 'volume_status'"),
    ("POST", "/volumes/{vol}/action", {"os-reset_status": {}}, ("admin",), 400, "badRequest",
     "Invalid input for field/attribute os-reset_status. Value: {}. {} is not a "
     "'validate_volume_reset_body'"),
    # snapshots (tempest: volume_id=None is a 404, as Cinder looks the volume None up)
    ("POST", "/snapshots", {"snapshot": {"volume_id": None, "display_name": "s"}}, (), 404,
     "itemNotFound", "Volume None could not be found."),
    ("POST", "/snapshots", {"snapshot": {"display_name": "s"}}, (), 400, "badRequest",
     "Invalid input for field/attribute snapshot. Value: {'display_name': 's'}. 'volume_id' "
     "is a required property"),
    ("POST", "/snapshots", {"snapshot": {"volume_id": "{missing}"}}, (), 404, "itemNotFound",
     "Volume {missing} could not be found."),
    ("POST", "/snapshots", {"snapshot": {"volume_id": "abc"}}, (), 400, "badRequest",
     "Invalid input for field/attribute volume_id. Value: abc. 'abc' is not valid under any "
     "of the given schemas"),
    ("POST", "/snapshots", {"snapshot": {"volume_id": "{vol}", "force": "maybe"}}, (), 400,
     "badRequest", f"Invalid input for field/attribute force. Value: maybe. 'maybe' is not "
     f"one of {BOOLEANS}"),
    ("GET", "/snapshots/{missing}", None, (), 404, "itemNotFound",
     "Snapshot {missing} could not be found."),
    ("DELETE", "/snapshots/{missing}", None, (), 404, "itemNotFound",
     "Snapshot {missing} could not be found."),
    ("POST", "/snapshots/{snap}/action", {"os-reset_status": {"status": "error"}}, (), 403,
     "forbidden", "Policy doesn't allow volume_extension:snapshot_admin_actions:reset_status "
     "to be performed."),
    ("POST", "/snapshots/{snap}/action", {"os-reset_status": {"status": "lost"}}, ("admin",),
     400, "badRequest", "Invalid input for field/attribute status. Value: lost. 'lost' is not "
     "a 'snapshot_status'"),
    # lists
    ("GET", "/snapshots?limit=invalid", None, (), 400, "badRequest",
     "limit param must be an integer"),
    ("GET", "/volumes/detail?limit=-1", None, (), 400, "badRequest",
     "limit param must be positive"),
    ("GET", "/snapshots?sort_key=invalid", None, (), 400, "badRequest",
     "Invalid input received: Invalid sort key"),
    ("GET", "/snapshots?marker={missing}", None, (), 404, "itemNotFound",
     "Snapshot {missing} could not be found."),
    ("GET", "/volumes?marker={missing}", None, (), 404, "itemNotFound",
     "Volume {missing} could not be found."),
]  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cloud(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Api, dict]]:
    tmp: Path = tmp_path_factory.mktemp("volume-errors")
    async with volume_api(tmp) as api:
        vol = await api.volume("p1", size=2)
        snap = await api.snapshot("p1", vol["id"])
        yield api, {"vol": vol["id"], "snap": snap["id"], "missing": MISSING}


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, real in names.items():
            value = value.replace("{" + name + "}", real)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "roles", "status", "key", "message"),
    TABLE,
    ids=[f"{row[0]} {row[1]} {str(row[2])[:40]}" for row in TABLE],
)
async def test_cinder_fault(
    cloud: tuple[Api, dict],
    method: str,
    path: str,
    body: Any,
    roles: tuple[str, ...],
    status: int,
    key: str,
    message: str,
) -> None:
    api, names = cloud
    project = "p1"
    if body == "p2":  # the same request from another project
        project, body = "p2", None
    if roles == "p2":  # this request with its body, from another project
        project, roles = "p2", ()
    url = f"/v3/{project}{_fill(path, names)}"
    reply = await api.http.request(
        method, url, json=_fill(body, names), headers=api.as_(project, *roles)
    )
    assert reply.status_code == status, reply.text
    assert reply.json() == {key: {"code": status, "message": _fill(message, names)}}


async def test_the_table_changed_nothing(cloud: tuple[Api, dict]) -> None:
    api, names = cloud
    volumes = (await api.get("p1", "/volumes/detail")).json()["volumes"]
    assert [(v["id"], v["size"], v["status"]) for v in volumes] == [(names["vol"], 2, "available")]
    snaps = (await api.get("p1", "/snapshots")).json()["snapshots"]
    assert [(s["id"], s["status"]) for s in snaps] == [(names["snap"], "available")]
    quota = (await api.get("p1", "/os-quota-sets/p1?usage=True")).json()["quota_set"]
    assert quota["volumes"]["in_use"] == 1 and quota["snapshots"]["in_use"] == 1
    assert quota["gigabytes"]["in_use"] == 4
