"""Placement across several compute hosts, and servers moved off a host.

compute-api (and network-api, in-process) on a private vhost; each host is a fake
compute-agent and a fake network-agent on its own topics (no guest runs: where a server
lands and what the service records is the point), with a heartbeat that says its size
and zone. Checked: spread and pack, availability zones (listed, honoured at create,
shown), server groups (2.1 and 2.64 shapes, affinity and anti-affinity honoured, members
listed, the quota), a disabled service (both API forms) and a down one skipped;
evacuation only off a down host, to another with the same port and fixed IP and the
claim moved; cold migration (running and stopped) to VERIFY_RESIZE with both hosts
claimed, then confirmed or reverted, each host's usage always the sum of its claims.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ADMIN, Cloud, FakeComputeAgent, FakeNetworkAgent, cloud, private_vhost
from sqlalchemy import select, update

from common_rpc.agents import AgentHeartbeat
from common_rpc.chassis.db import make_engine, make_sessionmaker, transaction
from common_rpc.chassis.migrations import upgrade
from common_rpc.tables import agents as agents_table
from common_rpc.testing import wait_for
from compute_svc.app import MIGRATIONS
from compute_svc.db.models import Claim, HostUsage, Migration
from compute_svc.domain import scheduler
from compute_svc.domain.placement import Wanted, filtered
from compute_svc.domain.scheduler import Capacity, Need
from compute_svc.domain.server_groups import Rule

V264 = {"OpenStack-API-Version": "compute 2.64"}
V253 = {"OpenStack-API-Version": "compute 2.53"}


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


# ---------------------------------------------------------------- pure logic


def test_group_rules_and_filters() -> None:
    anti = Rule("g", "anti-affinity", Counter({"cn1": 1}))
    assert [anti.allows(h) for h in ("cn1", "cn2")] == [False, True]
    two = Rule("g", "anti-affinity", Counter({"cn1": 1}), max_per_host=2)
    assert two.allows("cn1")
    empty = Rule("g", "affinity")
    assert empty.allows("cn1") and empty.allows("cn2")  # the first member goes anywhere
    aff = Rule("g", "affinity", Counter({"cn2": 1}))
    assert [aff.allows(h) for h in ("cn1", "cn2")] == [False, True]
    hosts = [Capacity("cn1", 2, 1024, 10, zone="az1"), Capacity("cn2", 2, 1024, 10, zone="az2")]
    assert [c.host for c in filtered(hosts, Wanted.of_request("az2"), None)] == ["cn2"]
    assert [c.host for c in filtered(hosts, Wanted.of_request(":cn1"), None)] == ["cn1"]
    assert [c.host for c in filtered(hosts, Wanted(avoid=frozenset({"cn1"})), None)] == ["cn2"]
    assert filtered(hosts, Wanted(), anti) == [hosts[1]]
    assert Wanted.of_request("az1:cn1:node") == Wanted(zone="az1", host="cn1")


async def test_spread_and_pack_order_the_hosts_that_fit(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/compute.db"
    await upgrade(url, MIGRATIONS)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    hosts = [Capacity("cn1", 4, 1024, 40), Capacity("cn2", 4, 1024, 40)]
    one = Need(1, 256, 1)
    try:
        placed = []
        for i in range(4):
            async with transaction(sessions) as session:
                placed.append(await scheduler.claim(session, f"s{i}", one, hosts, "spread"))
        assert placed == ["cn1", "cn2", "cn1", "cn2"]  # the most free RAM first, ties by name
        for i in range(4, 6):
            async with transaction(sessions) as session:
                placed.append(await scheduler.claim(session, f"s{i}", one, hosts, "pack"))
        # Both hosts hold 512 MB: pack takes cn1 (a tie), then cn1 again (now the fuller).
        assert placed[4:] == ["cn1", "cn1"]
        async with transaction(sessions) as session:
            assert await scheduler.rekey(session, "s5", "m5")
        async with transaction(sessions, write=False) as session:
            usage = {u.host: u.ram_mb for u in await session.scalars(select(HostUsage))}
            held = {c.server_id: c.host for c in await session.scalars(select(Claim))}
        assert usage == {"cn1": 1024, "cn2": 512}  # moving a claim to another key adds nothing
        assert held["m5"] == "cn1" and "s5" not in held
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- several fake hosts


@dataclass
class Lab:
    c: Cloud
    agents: dict[str, FakeComputeAgent] = field(default_factory=dict)
    net_agents: dict[str, FakeNetworkAgent] = field(default_factory=dict)
    flavor: str = ""
    image: str = ""

    @property
    def api(self) -> Any:
        return self.c.api

    async def boot(self, name: str, project: str = "p1", **extra: Any) -> str:
        hints = extra.pop("hints", None)
        roles = extra.pop("roles", ())
        server = {"name": name, "flavorRef": self.flavor, "imageRef": self.image, **extra}
        body: dict[str, Any] = {"server": server}
        if hints:
            body["os:scheduler_hints"] = hints
        resp = await self.api.post(project, "/v2.1/servers", body, *roles)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["server"]["id"])

    async def server(self, sid: str, project: str = "admin") -> dict[str, Any]:
        roles = ADMIN if project == "admin" else ()
        resp = await self.api.get(project, f"/v2.1/servers/{sid}?all_tenants=1", *roles)
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["server"])

    async def settled(self, sid: str, *wanted: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            got = await self.server(sid)
            return got if got["status"] in wanted and got["OS-EXT-STS:task_state"] is None else None

        return await wait_for(probe, timeout=30)

    async def host_of(self, sid: str) -> str:
        return str((await self.settled(sid, "ACTIVE"))["OS-EXT-SRV-ATTR:host"])

    async def usage(self) -> dict[str, tuple[int, int]]:
        """(vCPUs, RAM) the claims hold per host, and check they add up to the usage."""
        async with transaction(self.api.app.state.runtime.sessions, write=False) as session:
            rows = {u.host: (u.vcpus, u.ram_mb) for u in await session.scalars(select(HostUsage))}
            sums: dict[str, list[int]] = {}
            for claim in await session.scalars(select(Claim)):
                acc = sums.setdefault(claim.host, [0, 0])
                acc[0] += claim.vcpus
                acc[1] += claim.ram_mb
        assert {h: v for h, v in rows.items() if v != (0, 0)} == {
            h: (v[0], v[1]) for h, v in sums.items()
        }
        return rows

    async def silence(self, host: str) -> None:
        """The host's last heartbeat an hour ago: its agent is down (as if it died)."""
        past = datetime.now(UTC) - timedelta(hours=1)
        async with transaction(self.api.app.state.runtime.sessions) as session:
            await session.execute(
                update(agents_table).where(agents_table.c.host == host).values(last_heartbeat=past)
            )

    async def delete_all(self, *sids: str) -> None:
        for sid in sids:
            resp = await self.api.delete("admin", f"/v2.1/servers/{sid}", *ADMIN)
            assert resp.status_code in (204, 404), resp.text
        for sid in sids:
            await self.c.wait_gone("p1", sid)


@asynccontextmanager
async def lab(
    tmp_path: Path, amqp_url: str, zones: dict[str, str], **settings: Any
) -> AsyncIterator[Lab]:
    """The cloud's own host (zone ``nova``) plus one fake host per entry of ``zones``."""
    async with cloud(tmp_path, amqp_url, **settings) as c, AsyncExitStack() as stack:
        out = Lab(c, {c.host: c.agent})
        runtime = c.api.app.state.runtime
        for name, zone in zones.items():
            agent = FakeComputeAgent(runtime, name)
            await agent.server.start()
            stack.push_async_callback(agent.server.stop)
            out.agents[name] = agent
            if c.network is not None:
                net_agent = FakeNetworkAgent(c.network.app.state.runtime, name)
                await net_agent.server.start()
                stack.push_async_callback(net_agent.server.stop)
                out.net_agents[name] = net_agent
            caps = {
                "vcpus": 8,
                "ram_mb": 8192,
                "disk_gb": 100,
                "initiator": f"iqn.2010-10.org.stackling:{name}",
                "availability_zone": zone,
            }
            beat = AgentHeartbeat(
                runtime.rpc,
                service="compute",
                binary="compute-agent",
                host=name,
                capabilities=lambda caps=caps: dict(caps),
            )
            await beat.report()
        names = {c.host, *zones}

        async def all_alive() -> bool:
            return set(await c.api.app.state.deps.agents.alive_hosts("compute-agent")) == names

        await wait_for(all_alive, timeout=15)
        out.flavor = (await c.api.flavor("m1.move", ram=64, vcpus=1, disk=1))["id"]
        out.image = (await c.api.image("p1", b"raw", disk_format="raw"))["id"]
        yield out
        await c.api.app.state.deps.tasks.idle()


def _suffix() -> str:
    return uuid.uuid4().hex[:6]


async def test_zones_groups_and_disabled_hosts_steer_placement(
    tmp_path: Path, amqp_url: str
) -> None:
    a, b = f"cn-a-{_suffix()}", f"cn-b-{_suffix()}"
    async with lab(tmp_path, amqp_url, {a: "az1", b: "az2"}, with_network=False) as lb:
        api, own = lb.api, lb.c.host
        # Zones: listed for anyone, detailed for admins only.
        zones = (await api.get("p1", "/v2.1/os-availability-zone")).json()
        names = [z["zoneName"] for z in zones["availabilityZoneInfo"]]
        assert names == ["az1", "az2", "nova"]
        assert (await api.get("p1", "/v2.1/os-availability-zone/detail")).status_code == 403
        detail = (await api.get("admin", "/v2.1/os-availability-zone/detail", *ADMIN)).json()
        az2 = next(z for z in detail["availabilityZoneInfo"] if z["zoneName"] == "az2")
        assert az2["hosts"][b]["nova-compute"] | {"updated_at": None} == {
            "available": True,
            "active": True,
            "updated_at": None,
        }
        services = (await api.get("admin", "/v2.1/os-services", *ADMIN)).json()["services"]
        assert {s["host"]: s["zone"] for s in services} == {a: "az1", b: "az2", own: "nova"}

        # A zone asked for is honoured and shown; an unknown one is a 400, nothing made.
        sid = await lb.boot("in-az2", availability_zone="az2")
        assert await lb.host_of(sid) == b
        assert (await lb.server(sid))["OS-EXT-AZ:availability_zone"] == "az2"
        body = {"server": {"name": "x", "flavorRef": lb.flavor, "imageRef": lb.image,
                           "availability_zone": "az9"}}  # fmt: skip
        resp = await api.post("p1", "/v2.1/servers", body)
        assert resp.status_code == 400, resp.text
        assert "availability zone" in resp.json()["badRequest"]["message"]
        # zone:host is an admin's forced host.
        body["server"]["availability_zone"] = f"az1:{a}"
        assert (await api.post("p1", "/v2.1/servers", body)).status_code == 403
        await lb.delete_all(sid)

        # Groups: 2.1 shape, 2.64 shape; another project's is not found.
        made = await api.post(
            "p1", "/v2.1/os-server-groups",
            {"server_group": {"name": "anti", "policies": ["anti-affinity"]}},
        )  # fmt: skip
        assert made.status_code == 200, made.text
        anti = made.json()["server_group"]
        assert anti | {"id": ""} == {"id": "", "name": "anti", "policies": ["anti-affinity"],
                                     "members": [], "metadata": {}}  # fmt: skip
        made = await api.post(
            "p1", "/v2.1/os-server-groups",
            {"server_group": {"name": "aff", "policy": "affinity"}}, headers=V264,
        )  # fmt: skip
        assert made.status_code == 200, made.text
        aff = made.json()["server_group"]
        assert made.headers["OpenStack-API-Version"] == "compute 2.64"
        assert (aff["policy"], aff["rules"], aff["project_id"]) == ("affinity", {}, "p1")
        bad = await api.post(
            "p1", "/v2.1/os-server-groups",
            {"server_group": {"name": "x", "policies": ["sideways"]}},
        )  # fmt: skip
        assert bad.status_code == 400, bad.text
        assert (await api.get("p2", f"/v2.1/os-server-groups/{anti['id']}")).status_code == 404
        # 2.1 refuses a 2.64 body; the rest of the API stays at 2.1.
        assert (
            await api.post("p1", "/v2.1/os-server-groups",
                           {"server_group": {"name": "x", "policy": "affinity"}})
        ).status_code == 400  # fmt: skip
        assert (await api.get("p1", "/v2.1/servers", headers=V264)).status_code == 406

        # Anti-affinity: three members on three hosts; a fourth finds no valid host.
        members = [await lb.boot(f"anti-{i}", hints={"group": anti["id"]}) for i in range(3)]
        placed = {await lb.host_of(s) for s in members}
        assert placed == {own, a, b}
        fourth = await lb.boot("anti-3", hints={"group": anti["id"]})
        failed = await lb.settled(fourth, "ERROR")
        assert "No valid host" in failed["fault"]["message"]
        shown = (await api.get("p1", f"/v2.1/os-server-groups/{anti['id']}")).json()
        assert sorted(shown["server_group"]["members"]) == sorted([*members, fourth])
        # Affinity: all on the first one's host, even with spread.
        together = [await lb.boot(f"aff-{i}", hints={"group": aff["id"]}) for i in range(3)]
        assert len({await lb.host_of(s) for s in together}) == 1
        # A group of another project cannot be named.
        resp = await api.post(
            "p2", "/v2.1/servers",
            {"server": {"name": "x", "flavorRef": lb.flavor, "imageRef": lb.image},
             "os:scheduler_hints": {"group": aff["id"]}},
        )  # fmt: skip
        assert resp.status_code == 400, resp.text
        await lb.delete_all(*members, fourth, *together)
        shown = (await api.get("p1", f"/v2.1/os-server-groups/{anti['id']}")).json()
        assert shown["server_group"]["members"] == []
        listed = (await api.get("p1", "/v2.1/os-server-groups")).json()["server_groups"]
        assert {g["id"] for g in listed} == {anti["id"], aff["id"]}
        assert (await api.delete("p1", f"/v2.1/os-server-groups/{aff['id']}")).status_code == 204
        limits = (await api.get("p1", "/v2.1/limits")).json()["limits"]["absolute"]
        assert (limits["totalServerGroupsUsed"], limits["maxServerGroups"]) == (1, 10)

        # A disabled service (the pre-2.53 form) is skipped; its servers stay.
        resp = await api.put(
            "admin", "/v2.1/os-services/disable-log-reason",
            {"host": a, "binary": "nova-compute", "disabled_reason": "maintenance"}, *ADMIN,
        )  # fmt: skip
        assert resp.status_code == 200, resp.text
        assert resp.json()["service"]["status"] == "disabled"
        member_try = {"host": b, "binary": "nova-compute"}
        assert (await api.put("p1", "/v2.1/os-services/disable", member_try)).status_code == 403
        # 2.53: by id, as openstack compute service set --disable does at that version.
        b_id = next(s["id"] for s in services if s["host"] == b)
        resp = await api.put(
            "admin", f"/v2.1/os-services/{b_id}", {"status": "disabled"}, *ADMIN, headers=V253
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["service"] | {"updated_at": None} == {
            "id": b_id, "binary": "nova-compute", "host": b, "zone": "az2",
            "status": "disabled", "state": "up", "updated_at": None,
            "disabled_reason": None, "forced_down": False,
        }  # fmt: skip
        placed_now = [await lb.host_of(await lb.boot(f"d-{i}")) for i in range(2)]
        assert placed_now == [own, own]
        listed = (await api.get("admin", "/v2.1/os-services", *ADMIN)).json()["services"]
        by_host = {s["host"]: s for s in listed}
        assert (by_host[a]["status"], by_host[a]["disabled_reason"]) == ("disabled", "maintenance")
        for host in (a, b):
            resp = await api.put(
                "admin", "/v2.1/os-services/enable", {"host": host, "binary": "nova-compute"},
                *ADMIN,
            )  # fmt: skip
            assert resp.status_code == 200, resp.text
        # A silent host is down: listed so, and skipped.
        await lb.silence(own)
        listed = (await api.get("admin", "/v2.1/os-services", *ADMIN)).json()["services"]
        assert {s["host"]: s["state"] for s in listed}[own] == "down"
        after = {await lb.host_of(await lb.boot(f"e-{i}")) for i in range(4)}
        assert own not in after and after == {a, b}
        assert await lb.usage()


async def test_pack_fills_one_host_first(tmp_path: Path, amqp_url: str) -> None:
    a = f"cn-a-{_suffix()}"
    async with lab(
        tmp_path, amqp_url, {a: "nova"}, with_network=False, scheduler_strategy="pack"
    ) as lb:
        placed = [await lb.host_of(await lb.boot(f"p-{i}")) for i in range(3)]
        assert len(set(placed)) == 1, placed


async def _port_of(lb: Lab, sid: str) -> dict[str, Any]:
    ports = (await lb.c.network.get("admin", "/v2.0/ports", *ADMIN)).json()["ports"]
    [port] = [p for p in ports if p["device_id"] == sid]
    return dict(port)


async def test_evacuate_and_cold_migration_move_servers_and_their_claims(
    tmp_path: Path, amqp_url: str
) -> None:
    a, b = f"cn-a-{_suffix()}", f"cn-b-{_suffix()}"
    async with lab(tmp_path, amqp_url, {a: "nova", b: "nova"}) as lb:
        api = lb.api
        net = (await lb.c.network.post("p1", "/v2.0/networks", {"network": {"name": "n"}})).json()
        body = {"subnet": {"network_id": net["network"]["id"], "cidr": "10.9.0.0/24"}}
        await lb.c.network.post("p1", "/v2.0/subnets", body)
        networks = [{"uuid": net["network"]["id"]}]
        # On the cloud's own host (an admin's zone:host), so that a and b are the two
        # places the evacuation and then the migration can go, one each.
        zone = f"nova:{lb.c.host}"
        sid = await lb.boot("mover", networks=networks, availability_zone=zone, roles=ADMIN)
        own = await lb.host_of(sid)
        assert own == lb.c.host
        port = await _port_of(lb, sid)
        fixed = port["fixed_ips"][0]["ip_address"]
        path = f"/v2.1/servers/{sid}/action"
        evacuate = {"evacuate": {"onSharedStorage": False}}

        # Evacuation: refused for a member, for a host that is up, without its 2.1 field.
        assert (await api.post("admin", path, evacuate)).status_code == 403
        resp = await api.post("admin", path, evacuate, *ADMIN)
        assert resp.status_code == 400 and "still in use" in resp.text, resp.text
        resp = await api.post("admin", path, {"evacuate": {}}, *ADMIN)
        assert resp.status_code == 400 and "onSharedStorage" in resp.text, resp.text
        # The host goes silent: the server is rebuilt elsewhere, same port and address.
        await lb.silence(own)
        resp = await api.post("admin", path, evacuate, *ADMIN)
        assert resp.status_code == 200, resp.text
        assert resp.json()["adminPass"]
        moved = await lb.settled(sid, "ACTIVE")
        new = moved["OS-EXT-SRV-ATTR:host"]
        assert new in (a, b)
        port_now = await _port_of(lb, sid)
        assert (port_now["id"], port_now["binding:host_id"]) == (port["id"], new)
        assert port_now["fixed_ips"][0]["ip_address"] == fixed
        assert sid in lb.agents[new].spawned
        usage = await lb.usage()
        assert usage[own] == (0, 0) and usage[new] == (1, 64)
        events = (await api.get("admin", f"/v2.1/servers/{sid}/os-instance-actions",
                                *ADMIN)).json()["instanceActions"]  # fmt: skip
        assert events[0]["action"] == "evacuate" and events[0]["message"] is None
        # The old host's desired state no longer holds it: it removes its copy on return.
        from compute_svc.domain.desired import host_state

        deps = api.app.state.deps
        assert sid not in {s.server_id for s in (await host_state(deps, own)).servers}
        assert sid in {s.server_id for s in (await host_state(deps, new)).servers}

        # Cold migration of the running server: VERIFY_RESIZE, both hosts claimed once.
        other = b if new == a else a
        resp = await api.post("admin", path, {"migrate": None}, *ADMIN)
        assert resp.status_code == 202, resp.text
        verify = await lb.settled(sid, "VERIFY_RESIZE")
        assert verify["OS-EXT-SRV-ATTR:host"] == other
        assert ("stop", sid) in lb.agents[new].power
        assert (await _port_of(lb, sid))["binding:host_id"] == other
        assert (await lb.usage())[new] == (1, 64) and (await lb.usage())[other] == (1, 64)
        # The source keeps its copy for a revert; the destination holds the new one.
        assert sid in {s.server_id for s in (await host_state(deps, new)).servers}
        assert sid in {s.server_id for s in (await host_state(deps, other)).servers}
        # Revert: back on the source, running again; the destination's room given back.
        resp = await api.post("admin", path, {"revertResize": None}, *ADMIN)
        assert resp.status_code == 202, resp.text
        back = await lb.settled(sid, "ACTIVE")
        assert back["OS-EXT-SRV-ATTR:host"] == new
        assert ("start", sid) in lb.agents[new].power and sid in lb.agents[other].destroyed
        assert (await _port_of(lb, sid))["binding:host_id"] == new
        usage = await lb.usage()
        assert usage[new] == (1, 64) and usage.get(other, (0, 0)) == (0, 0)

        # A stopped server migrates stopped; confirm moves its claim for good.
        await api.post("admin", path, {"os-stop": None}, *ADMIN)
        await lb.settled(sid, "SHUTOFF")
        resp = await api.post("admin", path, {"migrate": {"host": other}}, *ADMIN)
        assert resp.status_code == 202, resp.text
        verify = await lb.settled(sid, "VERIFY_RESIZE")
        assert (verify["OS-EXT-SRV-ATTR:host"], verify["OS-EXT-STS:power_state"]) == (other, 4)
        assert (await api.post("admin", path, {"confirmResize": None}, *ADMIN)).status_code == 204
        done = await lb.settled(sid, "SHUTOFF")
        assert done["OS-EXT-SRV-ATTR:host"] == other
        assert sid in lb.agents[new].destroyed
        usage = await lb.usage()
        assert usage[new] == (0, 0) and usage[other] == (1, 64)
        # Nothing to confirm now: 409; a migration to an unknown host: 404.
        assert (await api.post("admin", path, {"confirmResize": None}, *ADMIN)).status_code == 409
        resp = await api.post("admin", path, {"migrate": {"host": "nowhere"}}, *ADMIN)
        assert resp.status_code == 404, resp.text
        async with transaction(api.app.state.runtime.sessions, write=False) as session:
            kinds = [(m.kind, m.status) for m in await session.scalars(
                select(Migration).order_by(Migration.created_at))]  # fmt: skip
        assert sorted(kinds) == sorted(
            [("evacuation", "done"), ("migration", "reverted"), ("migration", "confirmed")]
        )
        await lb.delete_all(sid)
        assert all(v == (0, 0) for v in (await lb.usage()).values())
