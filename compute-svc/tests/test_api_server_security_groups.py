"""A server's security groups end to end: compute-api and a real network-api on RabbitMQ,
fake agents on the host. The groups live in network-svc; compute names them on a create,
puts them on its ports, shows them and changes them with Nova's actions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, cloud, private_vhost


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


async def _basics(c: Cloud, project: str = "p1") -> dict[str, Any]:
    flavor = await c.api.flavor("m1.tiny", ram=128, vcpus=1, disk=1)
    image = await c.api.image(project, b"QFI\xfb" + b"\0" * 1000)
    resp = await c.network.post(project, "/v2.0/networks", {"network": {"name": "net1"}})
    assert resp.status_code == 201, resp.text
    net = resp.json()["network"]
    body = {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}
    assert (await c.network.post(project, "/v2.0/subnets", body)).status_code == 201
    return {"flavor": flavor, "image": image, "network": net}


def _server(base: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "flavorRef": base["flavor"]["id"],
        "imageRef": base["image"]["id"],
        "networks": [{"uuid": base["network"]["id"]}],
    }
    return {"server": body | extra}


async def _group(c: Cloud, project: str, name: str, **rule: Any) -> dict[str, Any]:
    resp = await c.network.post(
        project, "/v2.0/security-groups", {"security_group": {"name": name}}
    )
    assert resp.status_code == 201, resp.text
    group = dict(resp.json()["security_group"])
    if rule:
        body = {"security_group_rule": {"security_group_id": group["id"], **rule}}
        made = await c.network.post(project, "/v2.0/security-group-rules", body)
        assert made.status_code == 201, made.text
    return group


async def _ports_of(c: Cloud, server_id: str) -> list[dict[str, Any]]:
    ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
    return [p for p in ports if p["device_id"] == server_id]


async def _group_id(c: Cloud, project: str, name: str) -> str:
    listed = (await c.network.get(project, "/v2.0/security-groups")).json()["security_groups"]
    [group] = [g for g in listed if g["name"] == name]
    return str(group["id"])


async def test_named_group_on_create_then_added_and_removed(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        web = await _group(
            c, "p1", "web", direction="ingress", protocol="tcp",
            port_range_min=22, port_range_max=22, remote_ip_prefix="192.0.2.0/24",
        )  # fmt: skip
        db = await _group(c, "p1", "db")
        resp = await c.api.post("p1", "/v2.1/servers", _server(base, "s1",
                                security_groups=[{"name": "web"}]))  # fmt: skip
        assert resp.status_code == 202, resp.text
        created = resp.json()["server"]
        assert created["security_groups"] == [{"name": "web"}]
        sid = created["id"]
        server = await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        assert server["security_groups"] == [{"name": "web"}]
        [port] = await _ports_of(c, sid)
        assert port["security_groups"] == [web["id"]]  # not the project's default
        listed = (await c.api.get("p1", "/v2.1/servers/detail")).json()["servers"]
        assert [s["security_groups"] for s in listed] == [[{"name": "web"}]]

        # Nova's view of the server's groups: ingress rules only, in its rule shape.
        shown = await c.api.get("p1", f"/v2.1/servers/{sid}/os-security-groups")
        assert shown.status_code == 200, shown.text
        [group] = shown.json()["security_groups"]
        assert {k: group[k] for k in ("id", "name", "tenant_id")} == {
            "id": web["id"],
            "name": "web",
            "tenant_id": "p1",
        }
        assert group["description"] == ""
        [rule] = group["rules"]
        assert rule["parent_group_id"] == web["id"] and rule["ip_protocol"] == "tcp"
        assert (rule["from_port"], rule["to_port"]) == (22, 22)
        assert rule["ip_range"] == {"cidr": "192.0.2.0/24"} and rule["group"] == {}

        # Add by id, then by name: the port has both; the views show both names.
        action = f"/v2.1/servers/{sid}/action"
        resp = await c.api.post("p1", action, {"addSecurityGroup": {"name": db["id"]}})
        assert resp.status_code == 202, resp.text
        [port] = await _ports_of(c, sid)
        assert sorted(port["security_groups"]) == sorted([web["id"], db["id"]])
        server = (await c.api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        assert server["security_groups"] == [{"name": "web"}, {"name": "db"}]
        again = await c.api.post("p1", action, {"addSecurityGroup": {"name": "db"}})
        assert again.status_code == 202  # already there: nothing changes
        [port] = await _ports_of(c, sid)
        assert len(port["security_groups"]) == 2
        shown = await c.api.get("p1", f"/v2.1/servers/{sid}/os-security-groups")
        assert [g["name"] for g in shown.json()["security_groups"]] == ["web", "db"]

        resp = await c.api.post("p1", action, {"removeSecurityGroup": {"name": "web"}})
        assert resp.status_code == 202, resp.text
        [port] = await _ports_of(c, sid)
        assert port["security_groups"] == [db["id"]]
        server = (await c.api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        assert server["security_groups"] == [{"name": "db"}]

        # Nova's faults: not on the server, unknown, no name, empty name.
        gone = await c.api.post("p1", action, {"removeSecurityGroup": {"name": "web"}})
        assert (
            gone.status_code == 404 and "not associated" in gone.json()["itemNotFound"]["message"]
        )
        unknown = await c.api.post("p1", action, {"addSecurityGroup": {"name": "nope"}})
        assert unknown.status_code == 404
        assert unknown.json()["itemNotFound"]["message"] == (
            "Security group nope is not found for project p1"
        )
        for args in ({}, None, {"name": ""}, {"name": "  "}):
            bad = await c.api.post("p1", action, {"addSecurityGroup": args})
            assert bad.status_code == 400 and "badRequest" in bad.json(), args
        [port] = await _ports_of(c, sid)
        assert port["security_groups"] == [db["id"]]

        # Another project sees no such server, and cannot use its own group on it.
        await _group(c, "p2", "theirs")
        for path, body in (
            (action, {"addSecurityGroup": {"name": "theirs"}}),
            (action, {"removeSecurityGroup": {"name": "db"}}),
        ):
            assert (await c.api.post("p2", path, body)).status_code == 404
        assert (await c.api.get("p2", f"/v2.1/servers/{sid}/os-security-groups")).status_code == 404
        # ...and p1 cannot name p2's group by id.
        theirs = await _group_id(c, "p2", "theirs")
        resp = await c.api.post("p1", action, {"addSecurityGroup": {"name": theirs}})
        assert resp.status_code == 404
        [port] = await _ports_of(c, sid)
        assert port["security_groups"] == [db["id"]]

        # The security group is in use by the server's port until the server goes.
        busy = await c.network.delete("p1", f"/v2.0/security-groups/{db['id']}")
        assert busy.status_code == 409
        await c.api.delete("p1", f"/v2.1/servers/{sid}")
        await c.wait_gone("p1", sid)
        assert await _ports_of(c, sid) == []


async def test_unknown_group_on_create_makes_nothing(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        await _group(c, "p1", "twin")
        await _group(c, "p1", "twin")
        theirs = await _group(c, "p2", "theirs")
        cases = [
            ([{"name": "nope"}], 400, "Security group nope not found."),
            ([{"name": "web"}, {"name": theirs["id"]}], 400, f"Security group {theirs['id']}"),
            ([{"name": "twin"}], 409, "Multiple security groups found matching 'twin'. Use an ID"),
            ("web", 400, "security_groups"),
            ([{"name": ""}], 400, "security_groups"),
            ([{"name": "web", "extra": 1}], 400, "security_groups"),
            (["web"], 400, "security_groups"),
        ]
        await _group(c, "p1", "web")
        for groups, status, message in cases:
            resp = await c.api.post(
                "p1", "/v2.1/servers", _server(base, "x", security_groups=groups)
            )
            assert resp.status_code == status, (groups, resp.text)
            [(key, fault)] = resp.json().items()
            assert key == ("badRequest" if status == 400 else "conflictingRequest")
            assert fault["code"] == status and message in fault["message"], fault
        await c.api.app.state.deps.tasks.idle()
        listed = await c.api.get("admin", "/v2.1/servers/detail?all_tenants=1", *ADMIN)
        assert listed.json()["servers"] == []
        ports = (await c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
        assert [p for p in ports if p["device_owner"] == "compute:nova"] == []


async def test_default_group_and_a_given_port_keeps_its_own(tmp_path: Path, amqp_url: str) -> None:
    async with cloud(tmp_path, amqp_url) as c:
        base = await _basics(c)
        # None named: the port network-svc makes gets the project's default group.
        resp = await c.api.post("p1", "/v2.1/servers", _server(base, "plain"))
        assert resp.json()["server"]["security_groups"] == [{"name": "default"}]
        sid = resp.json()["server"]["id"]
        server = await c.wait_status("p1", sid, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        assert server["security_groups"] == [{"name": "default"}]
        default = await _group_id(c, "p1", "default")
        [port] = await _ports_of(c, sid)
        assert port["security_groups"] == [default]
        shown = await c.api.get("p1", f"/v2.1/servers/{sid}/os-security-groups")
        [group] = shown.json()["security_groups"]
        assert group["id"] == default and group["name"] == "default"
        # The default group lets its own members in: a rule naming a group, not a range.
        assert group["rules"] and all(
            r["group"] == {"name": "default", "tenant_id": "p1"} and r["ip_range"] == {}
            for r in group["rules"]
        )
        assert all(r["ip_protocol"] is None for r in group["rules"])

        # A given port keeps its own groups, whatever the create names.
        own = await _group(c, "p1", "own")
        await _group(c, "p1", "web")
        body = {"port": {"network_id": base["network"]["id"], "security_groups": [own["id"]]}}
        given = (await c.network.post("p1", "/v2.0/ports", body)).json()["port"]
        request = _server(
            base, "on-port", networks=[{"port": given["id"]}], security_groups=[{"name": "web"}]
        )
        other = (await c.api.post("p1", "/v2.1/servers", request)).json()["server"]["id"]
        server = await c.wait_status("p1", other, "ACTIVE", "ERROR")
        assert server["status"] == "ACTIVE", server.get("fault")
        kept = (await c.network.get("p1", f"/v2.0/ports/{given['id']}")).json()["port"]
        assert kept["security_groups"] == [own["id"]]
        assert server["security_groups"] == [{"name": "own"}]  # what is really in force
        # Nova's actions change every port of the server, a given one too.
        action = f"/v2.1/servers/{other}/action"
        resp = await c.api.post("p1", action, {"addSecurityGroup": {"name": "web"}})
        assert resp.status_code == 202, resp.text
        kept = (await c.network.get("p1", f"/v2.0/ports/{given['id']}")).json()["port"]
        assert len(kept["security_groups"]) == 2
        resp = await c.api.post("p1", action, {"removeSecurityGroup": {"name": "own"}})
        assert resp.status_code == 202, resp.text
        server = (await c.api.get("p1", f"/v2.1/servers/{other}")).json()["server"]
        assert server["security_groups"] == [{"name": "web"}]

        # A server with no port has no group to show, and none can be added.
        bare = await c.api.post("p1", "/v2.1/servers", _server(base, "bare", networks="none"))
        bare_id = bare.json()["server"]["id"]
        server = await c.wait_status("p1", bare_id, "ACTIVE", "ERROR")
        assert "security_groups" not in server
        resp = await c.api.post(
            "p1", f"/v2.1/servers/{bare_id}/action", {"addSecurityGroup": {"name": "web"}}
        )
        assert resp.status_code == 404
        shown = await c.api.get("p1", f"/v2.1/servers/{bare_id}/os-security-groups")
        assert shown.json() == {"security_groups": []}
