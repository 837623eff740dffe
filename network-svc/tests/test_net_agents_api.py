"""``/v2.0/agents`` as Neutron's policy shapes it: admins see the agents, others none."""

from __future__ import annotations

from datetime import UTC, datetime

from netapi_helpers import fault_type, network_api

from common_rpc.agents import record_heartbeat
from network_svc.domain.common import transaction


async def test_a_non_admin_lists_no_agents_and_finds_none(tmp_path) -> None:
    async with network_api(tmp_path) as api:
        async with transaction(api.app.state.deps.sessions) as session:
            await record_heartbeat(
                session,
                binary="network-agent",
                host="agent-host-1",
                topic="network-agent.agent-host-1",
                started_at=datetime.now(UTC),
                capabilities={},
            )
        listed = await api.get("admin", "/v2.0/agents", "admin")
        assert listed.status_code == 200, listed.text
        (agent,) = listed.json()["agents"]
        assert agent["host"] == "agent-host-1"

        for roles in (("member",), ("reader",)):
            mine = await api.get("pA", "/v2.0/agents?limit=1", *roles)
            assert mine.status_code == 200, mine.text
            assert mine.json()["agents"] == []
        # One agent is not found for them, whatever the method (Neutron hides it).
        path = f"/v2.0/agents/{agent['id']}"
        for resp in (
            await api.get("pA", path),
            await api.put("pA", path, {"agent": {"admin_state_up": False}}),
            await api.delete("pA", path),
        ):
            assert resp.status_code == 404, resp.text
            assert fault_type(resp) == "AgentNotFound"
        # Nothing changed: the admin still sees it, up.
        again = await api.get("admin", path, "admin")
        assert again.status_code == 200 and again.json()["agent"]["admin_state_up"] is True
