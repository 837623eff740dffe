"""The networks a server may be put on, checked before anything is made for it.

Nova's ``network:attach_external_network`` rule (admin only): a port on an external
network that is not shared is refused with ``ExternalNetworkAttachForbidden``. The
network service refuses such a port too (its ``create_port`` answers 403), but only once
the boot or the attach has begun; asking first answers the caller at once, with nothing
made (no server row, claim, quota, port or held port).

    network = await networks.find_network(deps, network_id)    # 400 when not seen
    networks.check_attach(current_context(), [network])        # 403 on an external one
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common_rpc.context import RequestContext, current_context
from common_rpc.contracts.network import NetworkInfo, Port
from common_rpc.errors import Forbidden, NotFound, RpcError, RpcTimeout

from ..wiring import Deps
from .errors import conflict, invalid, not_found
from .servers import requested_networks


def external_forbidden(network_id: str) -> Forbidden:
    """Nova's ``ExternalNetworkAttachForbidden`` (403), in its words."""
    return Forbidden(f"It is not allowed to create an interface on external network {network_id}")


def check_attach(ctx: RequestContext, found: Iterable[NetworkInfo | None]) -> None:
    """403 for the first external, not shared network unless the caller is an admin
    (None: a network the network service did not answer for, left to the flow)."""
    if ctx.is_admin:
        return
    for network in found:
        if network is not None and network.external and not network.shared:
            raise external_forbidden(network.id)


async def find_network(deps: Deps, network_id: str, *, status: int = 400) -> NetworkInfo | None:
    """The network as the caller sees it; not seen: Nova's ``NetworkNotFound`` (400 on a
    create, 404 on an interface attach). None when the network service did not answer:
    the flow then fails with a fault, as it would have without the check."""
    try:
        return await deps.network.get_network(network_id)
    except NotFound:
        if status == 404:
            raise not_found("Network", network_id) from None
        raise invalid(f"Network {network_id} could not be found.") from None
    except RpcTimeout:
        return None


async def network_of_port(deps: Deps, port: Port) -> NetworkInfo | None:
    """The network of a port the caller gave (None if it cannot be had now: the flow,
    which takes the port, answers for it)."""
    try:
        return await deps.network.get_network(port.network_id)
    except RpcError:
        return None


async def check_interface(deps: Deps, wanted: dict[str, Any]) -> None:
    """An ``os-interface`` attach (``{"network_id"}`` or ``{"port_id"}``, as
    ``interfaces.requested`` makes it), checked as the caller (``current_context()``, not
    yet the server's project the attach acts as) before anything is held:
    404 for a network not seen, 403 for an external one. A port not found is left to the
    attach, which answers for it."""
    ctx = current_context()
    if "network_id" in wanted:
        check_attach(ctx, [await find_network(deps, wanted["network_id"], status=404)])
        return
    try:
        port = await deps.network.get_port(wanted["port_id"])
    except RpcError:
        return
    check_attach(ctx, [await network_of_port(deps, port)])


async def check_requested(deps: Deps, spec: dict[str, Any]) -> None:
    """A create's ``networks``: given networks must be ones the caller may use, given
    ports the caller's and free, and none of their networks external unless the caller is
    an admin (400 / 409 / 403 now, as Nova answers, not an ERROR later). The network
    service away: the boot is taken, and fails with a fault."""
    found: list[NetworkInfo | None] = []
    for wanted in requested_networks(spec.get("networks")):
        if "port_id" not in wanted:
            found.append(await find_network(deps, wanted["network_id"]))
            continue
        try:
            port = await deps.network.get_port(wanted["port_id"])
        except NotFound:
            raise invalid(f"Port id {wanted['port_id']} could not be found.") from None
        if port.device_id:
            raise conflict(f"Port {wanted['port_id']} is still in use.")
        found.append(await network_of_port(deps, port))
    check_attach(current_context(), found)
