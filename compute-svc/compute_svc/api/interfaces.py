"""``/v2.1/servers/{id}/os-interface``: a server's ports, attached and detached live.

The network service is asked as the server's project (an admin acting on another
project's server makes and sees that project's ports, as a boot does): see
``domain.interfaces``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from common_rpc.context import current_context

from ..domain import interfaces, locking
from ..domain.common import envelope

router = APIRouter(prefix="/v2.1/servers", tags=["servers"])


@router.get("/{server_id}/os-interface")
async def list_interfaces(request: Request, server_id: str) -> dict[str, Any]:
    found = await interfaces.shown(request.app.state.deps, current_context(), server_id)
    return {"interfaceAttachments": found}


@router.get("/{server_id}/os-interface/{port_id}")
async def show_interface(request: Request, server_id: str, port_id: str) -> dict[str, Any]:
    deps = request.app.state.deps
    found = await interfaces.shown(deps, current_context(), server_id, port_id)
    return {"interfaceAttachment": found[0]}


@router.post("/{server_id}/os-interface")
async def attach_interface(request: Request, server_id: str, body: Any = Body(None)) -> Any:
    wanted = interfaces.requested(envelope(body, "interfaceAttachment"))
    deps = request.app.state.deps
    await locking.check_id(deps, current_context(), server_id)
    attachment = await interfaces.attach_to(deps, current_context(), server_id, wanted)
    return {"interfaceAttachment": attachment}


@router.delete("/{server_id}/os-interface/{port_id}", status_code=202, response_class=Response)
async def detach_interface(request: Request, server_id: str, port_id: str) -> Response:
    """202 once the NIC is marked detaching; the host unplugs it after (asking the guest
    again while it holds it), and a failure shows in ``os-instance-actions``."""
    await locking.check_id(request.app.state.deps, current_context(), server_id)
    await interfaces.detach(request.app.state.deps, current_context(), server_id, port_id)
    return Response(status_code=202)
