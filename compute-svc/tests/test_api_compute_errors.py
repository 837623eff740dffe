"""The compute API's negative paths answer Nova's status, fault key and text.

Clients and Tempest read these texts (``Instance <id> could not be found.``, ``Invalid
key_name provided.``, jsonschema's ``'1.1.1.1.1.1' is not a 'ipv4'``, ...), so each row of
the table is one request and exactly what Nova (at microversion 2.1) answers to it, taken
from Nova's controllers, its exception texts and its schema validator's wording. One cloud
(compute-api, a real network-api, fake agents) serves the whole table; a refused create
makes nothing, which the last test checks.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from api_helpers import ADMIN, Cloud, cloud, private_vhost

pytestmark = pytest.mark.asyncio(loop_scope="module")

MISSING = str(uuid.UUID(int=0xDEAD))
NAME_RULE = (
    "An invalid 'name' value was provided. The name must be: printable characters. "
    "Can not start or end with whitespace."
)
LONG = "a" * 256


@dataclass
class World:
    c: Cloud
    ids: dict[str, str]

    def server(self, **fields: Any) -> dict[str, Any]:
        """A create body that Nova takes, with ``fields`` changed (None: left out)."""
        body = {"name": "x", "flavorRef": self.ids["flavor"], "imageRef": self.ids["image"]}
        body |= {"networks": [{"uuid": self.ids["network"]}]}
        body |= fields
        return {"server": {k: v for k, v in body.items() if v is not None}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    with private_vhost() as url:
        async with cloud(tmp_path_factory.mktemp("errors"), url) as c:
            flavor = await c.api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
            image = await c.api.image("p1", b"QFI\xfb" + b"\0" * 100)
            big = await c.api.image("p1", b"QFI\xfb" + b"\0" * 100, min_ram=4096)
            body = {"name": "q", "disk_format": "qcow2", "container_format": "bare"}
            queued = (await c.api.post("p1", "/image/v2/images", body)).json()
            net = await c.network.post("p1", "/v2.0/networks", {"network": {"name": "n1"}})
            network = net.json()["network"]
            subnet = {"subnet": {"network_id": network["id"], "cidr": "10.7.0.0/24"}}
            assert (await c.network.post("p1", "/v2.0/subnets", subnet)).status_code == 201
            key = await c.api.post("p1", "/v2.1/os-keypairs", {"keypair": {"name": "k1"}})
            assert key.status_code == 200, key.text
            ids = {
                "flavor": flavor["id"],
                "image": image["id"],
                "big": big["id"],
                "queued": queued["id"],
                "network": network["id"],
            }
            w = World(c, ids)
            created = await c.api.post("p1", "/v2.1/servers", w.server(name="one"))
            ids["server"] = created.json()["server"]["id"]
            await c.wait_status("p1", ids["server"], "ACTIVE")
            # A project whose quotas are used up: no instance, no key pair.
            quota = {"quota_set": {"instances": 0, "key_pairs": 0}}
            put = await c.api.put("admin", "/v2.1/os-quota-sets/pq", quota, *ADMIN)
            assert put.status_code == 200, put.text
            ids["pq_image"] = (await c.api.image("pq", b"QFI\xfb" + b"\0" * 100))["id"]
            yield w


Body = Callable[[World], Any]


def _case(
    label: str,
    method: str,
    path: str,
    body: Body | None,
    status: int,
    key: str,
    message: str,
    project: str = "p1",
) -> Any:
    return pytest.param(method, path, body, status, key, message, project, id=label)


def _create(**fields: Any) -> Body:
    return lambda w: w.server(**fields)


BAD_KEYPAIR_NAME = "Value: bad!name. 'bad!name' does not match '^[_\\\\- a-zA-Z0-9]+$'"

CASES = [
    # ---- a server that is not there, or is another project's
    _case("show missing", "GET", "/v2.1/servers/{missing}", None,
          404, "itemNotFound", "Instance {missing} could not be found."),
    _case("show another project's", "GET", "/v2.1/servers/{server}", None,
          404, "itemNotFound", "Instance {server} could not be found.", project="p2"),
    _case("delete missing", "DELETE", "/v2.1/servers/{missing}", None,
          404, "itemNotFound", "Instance {missing} could not be found."),
    _case("update missing", "PUT", "/v2.1/servers/{missing}", lambda w: {"server": {"name": "y"}},
          404, "itemNotFound", "Instance {missing} could not be found."),
    _case("reboot missing", "POST", "/v2.1/servers/{missing}/action",
          lambda w: {"reboot": {"type": "HARD"}},
          404, "itemNotFound", "Instance {missing} could not be found."),
    _case("stop another project's", "POST", "/v2.1/servers/{server}/action",
          lambda w: {"os-stop": None},
          404, "itemNotFound", "Instance {server} could not be found.", project="p2"),
    # ---- create: flavorRef and imageRef
    _case("unknown flavor", "POST", "/v2.1/servers", _create(flavorRef="nope"),
          400, "badRequest", "Flavor nope could not be found."),
    _case("unknown flavor by link", "POST", "/v2.1/servers",
          _create(flavorRef="http://cloud/compute/v2.1/flavors/nope"),
          400, "badRequest", "Flavor nope could not be found."),
    _case("flavorRef a list", "POST", "/v2.1/servers", _create(flavorRef=[]),
          400, "badRequest",
          "Invalid input for field/attribute flavorRef. Value: []. "
          "[] is not of type 'string', 'integer'"),
    _case("unknown image", "POST", "/v2.1/servers", _create(imageRef=MISSING),
          400, "badRequest", "Can not find requested image"),
    _case("another project's image", "POST", "/v2.1/servers",
          lambda w: w.server(imageRef=w.ids["pq_image"]),
          400, "badRequest", "Can not find requested image"),
    _case("image -1 (Tempest)", "POST", "/v2.1/servers", _create(imageRef=-1),
          400, "badRequest",
          "Invalid input for field/attribute imageRef. Value: -1. "
          "-1 is not valid under any of the given schemas"),
    _case("imageRef not a UUID", "POST", "/v2.1/servers", _create(imageRef="abc"),
          400, "badRequest",
          "Invalid input for field/attribute imageRef. Value: abc. "
          "'abc' is not valid under any of the given schemas"),
    _case("no imageRef", "POST", "/v2.1/servers", _create(imageRef=None),
          400, "badRequest", "Missing imageRef attribute"),
    _case("image not active", "POST", "/v2.1/servers", lambda w: w.server(imageRef=w.ids["queued"]),
          400, "badRequest", "Image {queued} is not active."),
    _case("flavor too small", "POST", "/v2.1/servers", lambda w: w.server(imageRef=w.ids["big"]),
          400, "badRequest", "Flavor's memory is too small for requested image."),
    # ---- create: the other fields
    _case("unknown key_name", "POST", "/v2.1/servers", _create(key_name="nope"),
          400, "badRequest", "Invalid key_name provided."),
    _case("bad accessIPv4", "POST", "/v2.1/servers", _create(accessIPv4="1.1.1.1.1.1"),
          400, "badRequest",
          "Invalid input for field/attribute accessIPv4. Value: 1.1.1.1.1.1. "
          "'1.1.1.1.1.1' is not a 'ipv4'"),
    _case("bad accessIPv6", "POST", "/v2.1/servers", _create(accessIPv6="notvalid"),
          400, "badRequest",
          "Invalid input for field/attribute accessIPv6. Value: notvalid. "
          "'notvalid' is not a 'ipv6'"),
    _case("IPv4 as accessIPv6", "POST", "/v2.1/servers", _create(accessIPv6="10.0.0.1"),
          400, "badRequest",
          "Invalid input for field/attribute accessIPv6. Value: 10.0.0.1. "
          "'10.0.0.1' is not a 'ipv6'"),
    _case("accessIPv4 not a string", "POST", "/v2.1/servers", _create(accessIPv4=5),
          400, "badRequest",
          "Invalid input for field/attribute accessIPv4. Value: 5. 5 is not of type 'string'"),
    _case("blank name", "POST", "/v2.1/servers", _create(name=""),
          400, "badRequest",
          "Invalid input for field/attribute name. Value: . '' should be non-empty"),
    _case("numeric name", "POST", "/v2.1/servers", _create(name=12345),
          400, "badRequest",
          "Invalid input for field/attribute name. Value: 12345. 12345 is not of type 'string'"),
    _case("name with a leading space", "POST", "/v2.1/servers", _create(name=" x"),
          400, "badRequest", NAME_RULE),
    _case("name of 256", "POST", "/v2.1/servers", _create(name=LONG),
          400, "badRequest",
          f"Invalid input for field/attribute name. Value: {LONG}. '{LONG}' is too long"),
    _case("no name", "POST", "/v2.1/servers",
          lambda w: {"server": {"flavorRef": "1", "imageRef": MISSING}},
          400, "badRequest",
          "Invalid input for field/attribute server. "
          f"Value: {{'flavorRef': '1', 'imageRef': '{MISSING}'}}. 'name' is a required property"),
    _case("network uuid malformed", "POST", "/v2.1/servers",
          _create(networks=[{"uuid": "a-b-c-d-e-f-g-h-i-j"}]),
          400, "badRequest",
          "Bad networks format: network uuid is not in proper format (a-b-c-d-e-f-g-h-i-j)"),
    _case("network missing", "POST", "/v2.1/servers", _create(networks=[{"uuid": MISSING}]),
          400, "badRequest", "Network {missing} could not be found."),
    _case("network without uuid", "POST", "/v2.1/servers",
          _create(networks=[{"fixed_ip": "10.7.0.9"}]),
          400, "badRequest", "Bad network format: missing 'uuid'"),
    _case("port missing", "POST", "/v2.1/servers", _create(networks=[{"port": MISSING}]),
          400, "badRequest", "Port id {missing} could not be found."),
    _case("port twice", "POST", "/v2.1/servers",
          _create(networks=[{"port": MISSING}, {"port": MISSING}]),
          400, "badRequest",
          "Port ID '{missing}' was specified twice: you cannot attach a port multiple times."),
    _case("port and fixed_ip", "POST", "/v2.1/servers",
          _create(networks=[{"port": MISSING, "fixed_ip": "10.7.0.9"}]),
          400, "badRequest",
          "Specified Fixed IP '10.7.0.9' cannot be used with port '{missing}': "
          "the two cannot be specified together."),
    _case("fixed_ip not an address", "POST", "/v2.1/servers",
          lambda w: w.server(networks=[{"uuid": w.ids["network"], "fixed_ip": "10.7.0.300"}]),
          400, "badRequest",
          "Invalid input for field/attribute fixed_ip. Value: 10.7.0.300. "
          "'10.7.0.300' is not valid under any of the given schemas"),
    _case("unknown security group", "POST", "/v2.1/servers",
          _create(security_groups=[{"name": "nope"}]),
          400, "badRequest", "Security group nope not found."),
    _case("user_data not base64", "POST", "/v2.1/servers", _create(user_data="abc"),
          400, "badRequest",
          "Invalid input for field/attribute user_data. Value: abc. 'abc' is not a 'base64'"),
    _case("metadata value not a string", "POST", "/v2.1/servers", _create(metadata={"k": 1}),
          400, "badRequest",
          "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"),
    _case("too many metadata items", "POST", "/v2.1/servers",
          _create(metadata={f"k{i}": "v" for i in range(129)}),
          403, "forbidden", "Maximum number of metadata items exceeds 128"),
    _case("over the instances quota", "POST", "/v2.1/servers",
          lambda w: {"server": {"name": "q", "flavorRef": w.ids["flavor"],
                                "imageRef": w.ids["pq_image"]}},
          403, "forbidden",
          "Quota exceeded for instances: Requested 1, but already used 0 of 0 instances",
          project="pq"),
    # ---- update and actions
    _case("update bad accessIPv6", "PUT", "/v2.1/servers/{server}",
          lambda w: {"server": {"accessIPv6": "notvalid"}},
          400, "badRequest",
          "Invalid input for field/attribute accessIPv6. Value: notvalid. "
          "'notvalid' is not a 'ipv6'"),
    _case("update bad accessIPv4", "PUT", "/v2.1/servers/{server}",
          lambda w: {"server": {"accessIPv4": "300.1.1.1"}},
          400, "badRequest",
          "Invalid input for field/attribute accessIPv4. Value: 300.1.1.1. "
          "'300.1.1.1' is not a 'ipv4'"),
    _case("update blank name", "PUT", "/v2.1/servers/{server}",
          lambda w: {"server": {"name": ""}},
          400, "badRequest",
          "Invalid input for field/attribute name. Value: . '' should be non-empty"),
    _case("update unknown field", "PUT", "/v2.1/servers/{server}",
          lambda w: {"server": {"foo": 1}},
          400, "badRequest",
          "Invalid input for field/attribute server. Value: {'foo': 1}. "
          "Additional properties are not allowed ('foo' was unexpected)"),
    _case("reboot of a bad type", "POST", "/v2.1/servers/{server}/action",
          lambda w: {"reboot": {"type": "bogus"}},
          400, "badRequest",
          "Invalid input for field/attribute type. Value: bogus. "
          "'bogus' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"),
    _case("unknown action", "POST", "/v2.1/servers/{server}/action",
          lambda w: {"os-bogus": None},
          400, "badRequest", "There is no such action: os-bogus"),
    _case("add an unknown security group", "POST", "/v2.1/servers/{server}/action",
          lambda w: {"addSecurityGroup": {"name": "nope"}},
          404, "itemNotFound", "Security group nope is not found for project p1"),
    # ---- key pairs
    _case("keypair missing", "GET", "/v2.1/os-keypairs/nope", None,
          404, "itemNotFound", "Keypair nope not found for user user-p1"),
    _case("keypair delete missing", "DELETE", "/v2.1/os-keypairs/nope", None,
          404, "itemNotFound", "Keypair nope not found for user user-p1"),
    _case("keypair exists", "POST", "/v2.1/os-keypairs", lambda w: {"keypair": {"name": "k1"}},
          409, "conflictingRequest", "Key pair 'k1' already exists."),
    _case("keypair blank name", "POST", "/v2.1/os-keypairs", lambda w: {"keypair": {"name": ""}},
          400, "badRequest",
          "Invalid input for field/attribute name. Value: . '' should be non-empty"),
    _case("keypair bad characters", "POST", "/v2.1/os-keypairs",
          lambda w: {"keypair": {"name": "bad!name"}},
          400, "badRequest", f"Invalid input for field/attribute name. {BAD_KEYPAIR_NAME}"),
    _case("keypair name with spaces around", "POST", "/v2.1/os-keypairs",
          lambda w: {"keypair": {"name": " k "}},
          400, "badRequest", NAME_RULE),
    _case("keypair name of 256", "POST", "/v2.1/os-keypairs",
          lambda w: {"keypair": {"name": LONG}},
          400, "badRequest",
          f"Invalid input for field/attribute name. Value: {LONG}. '{LONG}' is too long"),
    _case("keypair bad public key", "POST", "/v2.1/os-keypairs",
          lambda w: {"keypair": {"name": "k2", "public_key": "ssh-rsa AAAA junk"}},
          400, "badRequest", "Keypair data is invalid: failed to generate fingerprint"),
    _case("over the key pairs quota", "POST", "/v2.1/os-keypairs",
          lambda w: {"keypair": {"name": "kq"}},
          403, "forbidden", "Quota exceeded, too many key pairs.", project="pq"),
    # ---- flavors, images, hypervisors
    _case("flavor missing", "GET", "/v2.1/flavors/nope", None,
          404, "itemNotFound", "Flavor nope could not be found."),
    _case("image missing", "GET", "/v2.1/images/{missing}", None,
          404, "itemNotFound", "Image not found."),
    _case("hypervisor missing", "GET", "/v2.1/os-hypervisors/nope", None,
          404, "itemNotFound", "Hypervisor with ID 'nope' could not be found.", project="admin"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "key", "message", "project"), CASES)
async def test_negative_path_answers_novas_text(
    world: World,
    method: str,
    path: str,
    body: Body | None,
    status: int,
    key: str,
    message: str,
    project: str,
) -> None:
    roles = ADMIN if project == "admin" else ()
    resp = await world.c.api.call(
        method, project, _fill(path, world), body(world) if body else None, *roles
    )
    assert resp.status_code == status, resp.text
    assert resp.json() == {key: {"code": status, "message": _fill(message, world)}}


def _fill(text: str, world: World) -> str:
    """``{server}``, ``{missing}``, ... replaced by the ids (other braces left alone)."""
    for name, value in {"missing": MISSING, **world.ids}.items():
        text = text.replace("{" + name + "}", value)
    return text


async def test_refused_creates_made_nothing(world: World) -> None:
    await world.c.api.app.state.deps.tasks.idle()
    listed = await world.c.api.get("admin", "/v2.1/servers/detail?all_tenants=1", *ADMIN)
    assert [s["id"] for s in listed.json()["servers"]] == [world.ids["server"]]
    server = (await world.c.api.get("p1", f"/v2.1/servers/{world.ids['server']}")).json()
    assert (server["server"]["accessIPv4"], server["server"]["accessIPv6"]) == ("", "")
