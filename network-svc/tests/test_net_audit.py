"""The network audit's own checks of the DB, with no agent running (see test_agent_wiring
for the host side on the real kernel)."""

from __future__ import annotations

import secrets

import pytest
from netapi_helpers import network_api
from sqlalchemy import delete

from common_rpc import RequestContext, RpcClient, use_context
from common_rpc.audit import AuditReport, request_audit
from common_rpc.errors import Forbidden
from network_svc.contracts import HostState, Inventory
from network_svc.db.models import IpAllocation
from network_svc.domain.audit import _compare_host
from network_svc.drivers.names import Names
from network_svc.rpc.handlers import rpc as network_rpc


async def test_audit_reports_stuck_ports_dead_hosts_and_missing_dhcp(tmp_path) -> None:
    async with network_api(tmp_path, port_bind_deadline_s=0) as api:
        runtime = api.app.state.runtime
        topic = f"netaudit-{secrets.token_hex(4)}"
        server = runtime.serve(topic, api.app.state.deps, network_rpc)
        await server.start()
        client = RpcClient(runtime.broker)
        try:
            assert (await request_audit(client, topic, timeout=10)).clean
            net = await api.network("pA")
            sub = await api.subnet("pA", net["id"], "10.0.0.0/24")
            port = await api.port("pA", net["id"])
            report = await request_audit(client, topic, timeout=10)
            assert report.clean, report.findings
            assert report.checked["ports"] == 2  # the guest's and the DHCP server's

            # Bound to a host with no agent: it stays DOWN, and nobody keeps that host.
            bind = {"port": {"binding:host_id": "ghost-host"}}
            path = f"/v2.0/ports/{port['id']}"
            assert (await api.put("pA", path, bind, "admin")).status_code == 200
            async with runtime.sessions() as session, session.begin():
                # A DHCP subnet whose server lost its address.
                await session.execute(
                    delete(IpAllocation).where(IpAllocation.port_id != port["id"])
                )
            report = await request_audit(client, topic, timeout=10)
            found = {(f.kind, f.resource, f.id) for f in report.findings}
            assert found == {
                ("stuck", "port", port["id"]),
                ("unreachable", "host", "ghost-host"),
                ("missing", "dhcp_port", sub["id"]),
            }

            # Operators only.
            with use_context(RequestContext(project_id="pA", roles=frozenset({"member"}))):
                with pytest.raises(Forbidden):
                    await client.call(topic, "audit", timeout=10)
        finally:
            await server.stop()


def test_member_sets_missing_and_orphan_are_findings() -> None:
    """A set a bound port's rule matches on but the host lacks; one nobody needs."""
    names = Names("zq")
    rule = {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "g1"}
    v6 = rule | {"ethertype": "IPv6"}  # IPv6 is dropped whole: no set
    port = {"port_id": "p1", "network_id": "n1", "mac": "fa:16:3e:00:00:01"}
    network = {"network_id": "n1"}
    state = HostState.model_validate(
        {
            "host": "h1",
            "ports": [
                {
                    "network": network,
                    "port": port | {"port_security": True},
                    "rules": [rule, v6],
                    "generation": 1,
                },
                {
                    "network": network,
                    "port": port | {"port_id": "p2", "port_security": False},
                    "rules": [rule | {"remote_group_id": "g2"}],
                    "generation": 1,
                },
            ],
        }
    )
    chains = [names.chain(k, p) for p in ("p1", "p2") for k in ("a", "i", "o", "s")]
    found = Inventory(prefix="zq", chains=chains)
    stray = names.ipset("g9", "IPv4")
    report = AuditReport(service="network")
    _compare_host(report, "h1", state, found.model_copy(update={"sets": [stray]}))
    assert {(f.kind, f.resource, f.id) for f in report.findings} == {
        ("missing", "member_set", names.ipset("g1", "IPv4")),
        ("orphan", "member_set", stray),
    }
    report = AuditReport(service="network")
    sets = [names.ipset("g1", "IPv4")]
    _compare_host(report, "h1", state, found.model_copy(update={"sets": sets}))
    assert report.clean and report.checked["member_sets"] == 1
