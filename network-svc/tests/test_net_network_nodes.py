"""Network nodes and l2-population in the API's desired state, without a kernel: where
DHCP servers and routers are scheduled, and what each host is told of the others (see
test_multihost for the same on three real hosts)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from netapi_helpers import network_api
from sqlalchemy import update

from common_rpc.agents import record_heartbeat
from common_rpc.tables import agents
from network_svc.db.models import Router
from network_svc.domain import desired

# Host names of this run only: pushes to their (absent) agents reach nobody else's.
RUN = secrets.token_hex(3)
A, B, CN = f"nn-a-{RUN}", f"nn-b-{RUN}", f"cn-1-{RUN}"
NODES = [A, B]
VTEPS = {A: "198.19.9.1", B: "198.19.9.2", CN: "198.19.9.11"}


async def _heartbeats(api, hosts: dict[str, str]) -> None:
    async with api.app.state.deps.sessions() as session, session.begin():
        for host, vtep in hosts.items():
            await record_heartbeat(
                session,
                binary="network-agent",
                host=host,
                topic=f"network.{host}",
                started_at=datetime.now(UTC),
                capabilities={"tunneling_ip": vtep},
            )


async def _dhcp_host(api, network_id: str) -> str:
    query = f"/v2.0/ports?device_owner=network:dhcp&network_id={network_id}"
    [port] = (await api.get("pA", query, "admin")).json()["ports"]
    return str(port["binding:host_id"])


async def test_dhcp_and_routers_go_to_the_least_loaded_alive_node(tmp_path) -> None:
    async with network_api(tmp_path, network_nodes=NODES, default_network_type="vxlan") as api:
        await _heartbeats(api, VTEPS)
        first = await api.network("pA")
        await api.subnet("pA", first["id"], "10.0.1.0/24")
        assert await _dhcp_host(api, first["id"]) == A  # a tie: the settings' order
        second = await api.network("pA")
        await api.subnet("pA", second["id"], "10.0.2.0/24")
        assert await _dhcp_host(api, second["id"]) == B  # nn-a has one
        router = (await api.post("pA", "/v2.0/routers", {"router": {"name": "r"}})).json()
        async with api.app.state.deps.sessions() as session:
            assert (await session.get(Router, router["router"]["id"])).host == A
        # A falls silent: new DHCP servers go to the node still alive, whatever its load.
        async with api.app.state.deps.sessions() as session, session.begin():
            old = datetime(2000, 1, 1, tzinfo=UTC)
            await session.execute(
                update(agents).where(agents.c.host == A).values(last_heartbeat=old)
            )
        third = await api.network("pA")
        await api.subnet("pA", third["id"], "10.0.3.0/24")
        assert await _dhcp_host(api, third["id"]) == B


async def test_each_host_gets_the_other_hosts_of_its_networks_only(tmp_path) -> None:
    async with network_api(tmp_path, network_nodes=[A], default_network_type="vxlan") as api:
        await _heartbeats(api, VTEPS)
        net = await api.network("pA")
        await api.subnet("pA", net["id"], "10.0.1.0/24")
        other = await api.network("pA")
        await api.subnet("pA", other["id"], "10.0.9.0/24")
        port = await api.port("pA", net["id"])
        bound = await api.put(
            "pA", f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": CN}}, "admin"
        )
        assert bound.status_code == 200, bound.text
        dhcp = (
            await api.get("pA", f"/v2.0/ports?device_owner=network:dhcp&network_id={net['id']}")
        ).json()["ports"][0]
        async with api.app.state.deps.sessions() as session:
            compute = await desired.host_state(session, CN)
            node = await desired.host_state(session, A)
            nobody = await desired.host_state(session, B)
        # cn-1 serves the network of its port: no DHCP there, the node is its one peer.
        [served] = compute.networks
        assert served.network_id == net["id"] and not served.dhcp
        [peer] = served.peers or []
        assert (peer.host, peer.vtep) == (A, VTEPS[A])
        assert [(e.mac, e.ips) for e in peer.entries] == [
            (dhcp["mac_address"], [dhcp["fixed_ips"][0]["ip_address"]])
        ]
        # The node runs both networks' DHCP; it sees cn-1 only in the network cn-1 serves.
        states = {n.network_id: n for n in node.networks}
        assert set(states) == {net["id"], other["id"]} and all(n.dhcp for n in states.values())
        assert states[net["id"]].dhcp_mac == dhcp["mac_address"]
        [peer] = states[net["id"]].peers or []
        assert peer.host == CN and peer.entries[0].mac == port["mac_address"]
        assert states[other["id"]].peers == []
        assert node.ports == []  # the DHCP port is not a port the node wires
        # A host serving nothing is told nothing.
        assert nobody.networks == [] and nobody.ports == []
