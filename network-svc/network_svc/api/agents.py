"""``/v2.0/agents`` (admin): the network agents, from their heartbeats, and their health.

As Neutron's policy (get_agent is admin only, applied to each listed item): a non-admin
lists none, and one agent is not found for them (404), whatever the method.

Each network-agent does the L2 wiring and DHCP of its host, so it is listed once per role
Neutron clients look for ("Linux bridge agent", "DHCP agent"), under its own id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from common_rpc.agents import AgentRegistry, AgentView
from common_rpc.context import current_context
from common_rpc.errors import NotFound

from ..domain.errors import invalid, not_found
from ..settings import NetworkSettings
from .deps import envelope
from .listing import render_list, select_fields

router = APIRouter(prefix="/v2.0/agents", tags=["agents"])
BINARY = "network-agent"


def _registry(request: Request) -> AgentRegistry:
    return request.app.state.deps.agents


def _admin(agent_id: str) -> None:
    """Agents are hidden from non-admins: Neutron answers 404, as for any resource its
    policy does not let the caller read."""
    if not current_context().is_admin:
        raise not_found("Agent", agent_id)


def view(agent: AgentView, settings: NetworkSettings) -> dict[str, Any]:
    stamp = agent.last_heartbeat.strftime("%Y-%m-%d %H:%M:%S")
    return {
        "id": agent.id,
        "agent_type": "Linux bridge agent",
        "binary": agent.binary,
        "host": agent.host,
        "topic": agent.topic,
        "alive": agent.alive,
        "admin_state_up": agent.admin_state_up,
        "availability_zone": settings.zone_of(agent.host),
        "configurations": agent.capabilities,
        "created_at": agent.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        "started_at": agent.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        "heartbeat_timestamp": stamp,
        "description": None,
        "resources_synced": None,
    }


async def _get(request: Request, agent_id: str) -> AgentView:
    try:
        agent = await _registry(request).get(agent_id)
    except NotFound:
        raise not_found("Agent", agent_id) from None
    if agent.binary != BINARY:
        raise not_found("Agent", agent_id)
    return agent


@router.get("")
async def list_agents(request: Request) -> dict[str, Any]:
    if not current_context().is_admin:
        return render_list(request, "agents", [])
    items = [
        view(a, request.app.state.settings) for a in await _registry(request).list(binary=BINARY)
    ]
    return render_list(request, "agents", items)


@router.get("/{agent_id}")
async def show_agent(request: Request, agent_id: str) -> dict[str, Any]:
    _admin(agent_id)
    item = view(await _get(request, agent_id), request.app.state.settings)
    return {"agent": select_fields(item, request.query_params.getlist("fields"))}


@router.put("/{agent_id}")
async def update_agent(request: Request, agent_id: str, body: Any = Body(None)) -> dict[str, Any]:
    _admin(agent_id)
    await _get(request, agent_id)
    change = envelope(body, "agent")
    unknown = set(change) - {"admin_state_up", "description"}
    if unknown:
        raise invalid(f"Cannot update agent attribute(s): {', '.join(sorted(unknown))}.")
    if "admin_state_up" in change:
        if not isinstance(change["admin_state_up"], bool):
            raise invalid("Invalid input for admin_state_up: expected a boolean.")
        agent = await _registry(request).set_admin_state(agent_id, change["admin_state_up"])
    else:
        agent = await _get(request, agent_id)
    return {"agent": view(agent, request.app.state.settings)}


@router.delete("/{agent_id}", status_code=204)
async def delete_agent(request: Request, agent_id: str) -> Response:
    _admin(agent_id)
    await _get(request, agent_id)
    await _registry(request).delete(agent_id)
    return Response(status_code=204)
