"""The network audit's own checks of the DB, with no agent running (see test_agent_wiring
for the host side on the real kernel)."""

from __future__ import annotations

import secrets

import pytest
from netapi_helpers import network_api
from sqlalchemy import delete

from common_rpc import RequestContext, RpcClient, use_context
from common_rpc.audit import request_audit
from common_rpc.errors import Forbidden
from network_svc.db.models import IpAllocation
from network_svc.rpc.handlers import rpc as network_rpc


async def test_audit_reports_stuck_ports_dead_hosts_and_missing_dhcp(tmp_path) -> None:
    async with network_api(tmp_path, port_bind_deadline_s=0) as api:
        runtime = api.app.state.runtime
        topic = f"netaudit-{secrets.token_hex(4)}"
        server = runtime.serve(topic, runtime, network_rpc)
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
