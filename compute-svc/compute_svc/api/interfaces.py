"""``/v2.1/servers/{id}/os-interface``: a server's ports, attached and detached live.

The network service is asked as the server's project (an admin acting on another
project's server makes and sees that project's ports, as a boot does).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from common_rpc.context import use_context
from common_rpc.errors import NotFound

from ..domain import actions, interfaces, servers
from ..domain.common import envelope
from ..domain.networks import check_interface
from ..domain.tasks import server_context
from .common import transaction

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])


@router.get("/{server_id}/os-interface")
async def list_interfaces(request: Request, server_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        nics = interfaces.attached(server)
    with use_context(server_context(server)):
        found = await interfaces.views(request.app.state.deps, nics)
    return {"interfaceAttachments": found}


@router.get("/{server_id}/os-interface/{port_id}")
async def show_interface(request: Request, server_id: str, port_id: str) -> dict[str, Any]:
    async with transaction(request, write=False) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        nics = interfaces.attached(server, port_id)
    with use_context(server_context(server)):
        found = await interfaces.views(request.app.state.deps, nics)
    if not found:
        raise NotFound(f"Port {port_id} is not attached to server {server_id}.")
    return {"interfaceAttachment": found[0]}


@router.post("/{server_id}/os-interface")
async def attach_interface(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    wanted = interfaces.requested(envelope(body, "interfaceAttachment"))
    async with transaction(request, write=False) as call:
        # Nova's order: the server (404), its state (409), then the network (404, 403),
        # all before anything is held or recorded.
        found = await servers.get(call.session, call.ctx, server_id)
        interfaces.check_state(found, "attach_interface")
    await check_interface(request.app.state.deps, wanted)
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        interfaces.check_state(server, "attach_interface")
        if "port_id" in wanted:
            await interfaces.hold_port(call.session, server, wanted["port_id"])
        await actions.record(call.session, server, actions.ATTACH_INTERFACE)
        call.session.expunge(server)
    with use_context(server_context(server)):
        attachment = await interfaces.attach(request.app.state.deps, server, wanted)
    return {"interfaceAttachment": attachment}


@router.delete("/{server_id}/os-interface/{port_id}", status_code=202)
async def detach_interface(request: Request, server_id: str, port_id: str) -> Response:
    """202 once the NIC is marked detaching; the host unplugs it after (asking the guest
    again while it holds it), and a failure shows in ``os-instance-actions``."""
    deps = request.app.state.deps
    async with transaction(request) as call:
        server = await servers.get(call.session, call.ctx, server_id)
        interfaces.check_state(server, "detach_interface")
        job, nic = await interfaces.request_detach(call.session, deps, server, port_id)
        call.session.expunge(server)
    interfaces.start_detach(deps, server, nic, job)
    return Response(status_code=202)
