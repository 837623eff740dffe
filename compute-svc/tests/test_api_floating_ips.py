"""Floating IPs in a server's ``addresses``, as Nova shows them: after the fixed address,
under the port's network name, ``OS-EXT-IPS:type`` ``floating`` with the port's MAC.
They come and go with the network service's floating IP events (associate, disassociate,
create with a port, delete, the port deleted), on show, the detail list and ``/ips``,
and the list asks the network service nothing. compute-api with the real compute-agent
on libvirt's test:///default hypervisor and a real network-api; late and concurrent
events on compute's migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from api_helpers import ADMIN, Api, private_vhost
from test_api_agent_testdriver import _stack
from test_scheduler_claims import PG_ADMIN_DSN

from common_rpc import Event
from common_rpc.audit import request_audit
from common_rpc.chassis.db import make_engine, make_sessionmaker, transaction
from common_rpc.chassis.migrations import upgrade
from common_rpc.testing import wait_for
from compute_svc.app import MIGRATIONS
from compute_svc.db.models import FloatingIp
from compute_svc.domain import floating_ips


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture
async def lab(tmp_path: Path, amqp_url: str) -> AsyncIterator[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        yield await _stack(tmp_path, amqp_url, stack)


async def _topology(network: Api) -> dict[str, str]:
    """An external network, p1's network ``private`` and a router between them."""
    body = {"network": {"name": "public", "router:external": True}}
    ext = (await network.post("admin", "/v2.0/networks", body, *ADMIN)).json()["network"]
    sub = {"subnet": {"network_id": ext["id"], "cidr": "172.24.4.0/24", "enable_dhcp": False}}
    assert (await network.post("admin", "/v2.0/subnets", sub, *ADMIN)).status_code == 201
    net = (await network.post("p1", "/v2.0/networks", {"network": {"name": "private"}})).json()
    sub = {"subnet": {"network_id": net["network"]["id"], "cidr": "10.9.0.0/24"}}
    resp = await network.post("p1", "/v2.0/subnets", sub)
    assert resp.status_code == 201, resp.text
    subnet_id = resp.json()["subnet"]["id"]
    body = {"router": {"name": "r1", "external_gateway_info": {"network_id": ext["id"]}}}
    router = (await network.post("p1", "/v2.0/routers", body)).json()["router"]
    path = f"/v2.0/routers/{router['id']}/add_router_interface"
    assert (await network.put("p1", path, {"subnet_id": subnet_id})).status_code == 200
    return {"external": ext["id"], "private": net["network"]["id"]}


async def _boot(api: Api, name: str, networks: list[dict[str, str]]) -> str:
    flavor = await api.flavor(f"f-{name}", ram=128, vcpus=1, disk=1)
    kernel = await api.image("p1", b"vmlinuz", disk_format="aki", container_format="aki")
    body = {
        "server": {
            "name": name,
            "flavorRef": flavor["id"],
            "imageRef": kernel["id"],
            "networks": networks,
        }
    }
    resp = await api.post("p1", "/v2.1/servers", body)
    assert resp.status_code == 202, resp.text
    sid: str = resp.json()["server"]["id"]

    async def settled() -> dict[str, Any] | None:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        return server if server["status"] in ("ACTIVE", "ERROR") else None

    server = await wait_for(settled, timeout=60)
    assert server["status"] == "ACTIVE", server.get("fault")
    return sid


def _fixed(port: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 4,
        "addr": port["fixed_ips"][0]["ip_address"],
        "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
    }


def _floating(address: str, port: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 4,
        "addr": address,
        "OS-EXT-IPS:type": "floating",
        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
    }


class NoNetwork:
    """Stands in for compute's network client while a read must not use it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the network service was asked ({name}) on a read")


async def _shown(api: Api, sid: str, wanted: dict[str, list[dict[str, Any]]]) -> None:
    """Until show has ``wanted`` as ``addresses``; then the detail list and ``/ips`` agree,
    and none of the three asked the network service."""

    async def probe() -> bool:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        return server["addresses"] == wanted

    await wait_for(probe, timeout=20)
    deps = api.app.state.deps
    client, deps.network = deps.network, NoNetwork()
    try:
        listed = (await api.get("p1", "/v2.1/servers/detail")).json()["servers"]
        ips = (await api.get("p1", f"/v2.1/servers/{sid}/ips")).json()
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
    finally:
        deps.network = client
    assert server["addresses"] == wanted
    assert [s["addresses"] for s in listed if s["id"] == sid] == [wanted]
    brief = {
        label: [{"version": a["version"], "addr": a["addr"]} for a in entries]
        for label, entries in wanted.items()
    }
    assert ips == {"addresses": brief}


async def test_floating_ips_follow_association_in_addresses(lab: dict[str, Any]) -> None:
    api, network = lab["api"], lab["network"]
    ids = await _topology(network)
    sid = await _boot(api, "fip", [{"uuid": ids["private"]}])
    [port] = (await network.get("p1", f"/v2.0/ports?device_id={sid}")).json()["ports"]
    fixed = _fixed(port)
    await _shown(api, sid, {"private": [fixed]})

    # Associated through the network API: shown after the fixed address.
    body = {"floatingip": {"floating_network_id": ids["external"]}}
    fip = (await network.post("p1", "/v2.0/floatingips", body)).json()["floatingip"]
    url = f"/v2.0/floatingips/{fip['id']}"
    resp = await network.put("p1", url, {"floatingip": {"port_id": port["id"]}})
    assert resp.status_code == 200, resp.text
    address = fip["floating_ip_address"]
    await _shown(api, sid, {"private": [fixed, _floating(address, port)]})

    # Disassociated: gone.
    resp = await network.put("p1", url, {"floatingip": {"port_id": None}})
    assert resp.status_code == 200, resp.text
    await _shown(api, sid, {"private": [fixed]})

    # Created with the port, then deleted.
    body = {"floatingip": {"floating_network_id": ids["external"], "port_id": port["id"]}}
    second = (await network.post("p1", "/v2.0/floatingips", body)).json()["floatingip"]
    await _shown(api, sid, {"private": [fixed, _floating(second["floating_ip_address"], port)]})
    assert (await network.delete("p1", f"/v2.0/floatingips/{second['id']}")).status_code == 204
    await _shown(api, sid, {"private": [fixed]})

    # A port given with its floating IP already on it: shown once the server has it.
    given = {"port": {"network_id": ids["private"], "name": "given"}}
    given_port = (await network.post("p1", "/v2.0/ports", given)).json()["port"]
    resp = await network.put("p1", url, {"floatingip": {"port_id": given_port["id"]}})
    assert resp.status_code == 200, resp.text
    other = await _boot(api, "given", [{"port": given_port["id"]}])
    await _shown(api, other, {"private": [_fixed(given_port), _floating(address, given_port)]})

    # A server's delete deletes the port it made: its floating IP is let go, and so shown.
    body = {"floatingip": {"floating_network_id": ids["external"], "port_id": port["id"]}}
    third = (await network.post("p1", "/v2.0/floatingips", body)).json()["floatingip"]
    await _shown(api, sid, {"private": [fixed, _floating(third["floating_ip_address"], port)]})
    rpc = api.app.state.runtime.rpc
    report = await request_audit(rpc, "compute", timeout=30)
    assert report.findings == [], report
    assert (report.checked["servers"], report.checked["domains"]) == (2, 2), report
    for server_id in (sid, other):
        assert (await api.delete("p1", f"/v2.1/servers/{server_id}")).status_code == 204

    async def deleted() -> bool:
        return (await api.get("p1", "/v2.1/servers")).json()["servers"] == []

    await wait_for(deleted, timeout=30)

    async def released() -> bool:
        async with api.app.state.runtime.sessions() as session:
            row = await session.get(FloatingIp, third["id"])
            return row is not None and row.port_id is None

    await wait_for(released, timeout=30)
    shown = (await network.get("p1", f"/v2.0/floatingips/{third['id']}")).json()
    assert shown["floatingip"]["port_id"] is None
    # The given port was given back with its floating IP on it, as Neutron keeps it.
    async with api.app.state.runtime.sessions() as session:
        row = await session.get(FloatingIp, fip["id"])
        assert row is not None and row.port_id == given_port["id"]
    path = f"/v2.0/ports/{given_port['id']}"
    given_back = (await network.get("p1", path, *ADMIN)).json()["port"]  # with its binding
    assert (given_back["device_id"], given_back["binding:host_id"]) == ("", "")
    # What `stackling audit` reports after the deletes: no guest or claim left, no port
    # bound to the host for a guest that is gone.
    for service in ("compute", "network"):
        report = await request_audit(rpc, service, timeout=30)
        assert report.findings == [], report
    assert (report.checked["networks"], report.checked["hosts"]) == (2, 0), report


def _event(
    kind: str, revision: int, port: str | None, at: datetime, fip_id: str = "fip-1"
) -> Event:
    payload = {
        "id": fip_id,
        "project_id": "p1",
        "floating_network_id": "ext",
        "floating_ip_address": "172.24.4.7",
        "status": "ACTIVE" if port else "DOWN",
        "port_id": port,
        "fixed_ip_address": "10.9.0.5" if port else None,
        "revision_number": revision,
    }
    return Event(event_type=f"network.floatingip.{kind}.end", payload=payload, timestamp=at)


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Sessions on compute's migrated schema: a SQLite file, or a fresh PostgreSQL
    database dropped after."""
    name = f"sltest_{uuid.uuid4().hex[:10]}"
    url = f"sqlite+aiosqlite:///{tmp_path}/compute.db"
    if request.param == "postgresql":
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    engine = None
    try:
        await upgrade(url, MIGRATIONS)
        engine = make_engine(url)
        yield make_sessionmaker(engine)
    finally:
        if engine is not None:
            await engine.dispose()
        if request.param == "postgresql":
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


async def _apply(sessions: Any, event: Event) -> None:
    async with transaction(sessions) as session:
        await floating_ips.apply(session, event)


async def _row(sessions: Any, fip_id: str = "fip-1") -> tuple[str | None, bool] | None:
    async with sessions() as session:
        row = await session.get(FloatingIp, fip_id)
        return None if row is None else (row.port_id, row.deleted)


async def test_late_events_never_undo_newer_ones(sessions: Any) -> None:
    t0 = datetime.now(UTC)
    later = t0 + timedelta(seconds=1)

    async def feed(*events: Event) -> tuple[str | None, bool] | None:
        for event in events:
            await _apply(sessions, event)
        return await _row(sessions)

    # Disassociated (revision 3) before the association (revision 2) arrives.
    assert await feed(_event("update", 3, None, t0), _event("update", 2, "pA", t0)) == (
        None,
        False,
    )
    # A newer revision applies; of the same revision, only a later event.
    assert await feed(_event("update", 4, "pA", t0)) == ("pA", False)
    assert await feed(_event("update", 4, "pB", later)) == ("pB", False)
    assert await feed(_event("update", 4, "pC", t0)) == ("pB", False)
    # Deleted is final: a late update does not bring it back; old rows are pruned.
    assert await feed(_event("delete", 4, "pB", t0)) == (None, True)
    assert await feed(_event("update", 9, "pA", later)) == (None, True)
    async with transaction(sessions) as session:
        assert await floating_ips.prune_deleted(session) == 0
    async with transaction(sessions) as session:
        assert await floating_ips.prune_deleted(session, keep=timedelta(0)) == 1
    # A delete seen before anything else of it leaves its row, deleted.
    assert await feed(_event("delete", 1, None, t0)) == (None, True)


async def test_replicas_applying_at_once_keep_the_newest(sessions: Any) -> None:
    """Events of one floating IP handled at the same time (replicas compete for them),
    in any order, the first ones racing to insert its row: the newest one stays."""
    t0 = datetime.now(UTC)
    for round_ in range(5):
        fip_id = f"fip-race-{round_}"
        events = [_event("update", n, f"p{n}", t0, fip_id=fip_id) for n in range(1, 9)]
        random.Random(round_).shuffle(events)
        await asyncio.gather(*(_apply(sessions, e) for e in events))
        assert await _row(sessions, fip_id) == ("p8", False)
