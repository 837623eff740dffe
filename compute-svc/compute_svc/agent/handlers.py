"""RPC methods on ``compute.<host>``, served by that host's compute-agent.

``deps`` is the host's ``ComputeHost``. Every method is idempotent: a repeat or a late
copy changes nothing. Host failures cross as typed errors: ``NotFound`` when the server
has no domain here, ``Invalid`` for a malformed payload, ``InternalError`` with the
host's message (fit for the server's fault) otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal

from common_rpc import RpcRouter
from common_rpc.errors import InternalError, Invalid, NotFound
from compute_svc.drivers.libvirt.driver import DomainNotFound, VirtError

rpc = RpcRouter()


def topic(host: str) -> str:
    return f"compute.{host}"


async def _checked(result: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await result
    except DomainNotFound as exc:
        raise NotFound(str(exc)) from exc
    except VirtError as exc:
        raise InternalError(str(exc)) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise Invalid(f"malformed request: {exc!r}") from exc


@rpc.handler()
async def spawn(deps: Any, server: dict[str, Any]) -> dict[str, Any]:
    """Disks, config drive, volumes and a running domain for ``server``."""
    return await _checked(deps.spawn(server))


@rpc.handler()
async def destroy(deps: Any, server_id: str) -> dict[str, Any]:
    return await _checked(deps.destroy(server_id))


@rpc.handler()
async def power(
    deps: Any, server_id: str, action: Literal["start", "stop", "reboot"]
) -> dict[str, Any]:
    return await _checked(deps.power(server_id, action))


@rpc.handler()
async def console_output(deps: Any, server_id: str, length: int | None = None) -> dict[str, Any]:
    return await _checked(deps.console_output(server_id, length))


@rpc.handler()
async def attach_volume(
    deps: Any, server_id: str, volume_id: str, connection: dict[str, Any]
) -> dict[str, Any]:
    return await _checked(deps.attach_volume(server_id, volume_id, connection))


@rpc.handler()
async def detach_volume(
    deps: Any,
    server_id: str,
    volume_id: str,
    attempts: int | None = None,
    wait_s: float | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """Unplug the volume's disk, asking the guest up to ``attempts`` times, waiting
    ``wait_s`` seconds after each, none begun past ``until`` (epoch seconds); the host's
    defaults for what is not given. Failed for good: the disk stays (in the definition
    too), InternalError."""
    return await _checked(deps.detach_volume(server_id, volume_id, attempts, wait_s, until))


@rpc.handler()
async def attach_interface(deps: Any, server_id: str, nic: dict[str, Any]) -> dict[str, Any]:
    """Hot-plug the port's NIC (``{"port_id", "mac", "bridge", "mtu"}``); ``attached``
    is False when it was there already."""
    return await _checked(deps.attach_interface(server_id, nic))


@rpc.handler()
async def detach_interface(
    deps: Any,
    server_id: str,
    nic: dict[str, Any],
    attempts: int | None = None,
    wait_s: float | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """Unplug the port's NIC, asked again as ``detach_volume`` does."""
    return await _checked(deps.detach_interface(server_id, nic, attempts, wait_s, until))


@rpc.handler()
async def host_state(deps: Any) -> dict[str, Any]:
    return await _checked(deps.host_state())
