"""RPC methods on ``compute.<host>``, served by that host's compute-agent: ``contracts.AGENT``.

``deps`` is the host's ``ComputeHost``. Every method is idempotent: a repeat or a late
copy changes nothing. Host failures cross as typed errors: ``NotFound`` when the server
has no domain here, ``Invalid`` for a malformed payload (the models refuse most before a
handler runs), ``InternalError`` with the host's message (fit for the server's fault)
otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from common_rpc import RpcRouter
from common_rpc.errors import InternalError, Invalid, NotFound
from common_rpc.methods import Empty

from ..contracts import (
    ATTACH_INTERFACE,
    ATTACH_VOLUME,
    CONSOLE_OUTPUT,
    DESTROY,
    DETACH_INTERFACE,
    DETACH_VOLUME,
    FINISH_RESIZE,
    INVENTORY,
    POWER,
    REBUILD,
    RESIZE,
    SHELVE_OFFLOAD,
    SNAPSHOT,
    SPAWN,
    AttachInterface,
    AttachVolume,
    ConsoleOutput,
    ConsoleRequest,
    Destroyed,
    DetachInterface,
    DetachVolume,
    DomainState,
    FinishResize,
    InterfaceAttached,
    InterfaceDetached,
    Inventory,
    Power,
    Resize,
    ServerRef,
    Snapshot,
    Spawn,
    Spawned,
    VolumeAttached,
    VolumeDetached,
)
from ..drivers.base import DomainNotFound, VirtError
from .host import ComputeHost

rpc = RpcRouter()
T = TypeVar("T")


async def _checked(result: Awaitable[T]) -> T:
    try:
        return await result
    except DomainNotFound as exc:
        raise NotFound(str(exc)) from exc
    except VirtError as exc:
        raise InternalError(str(exc)) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise Invalid(f"malformed request: {exc!r}") from exc


@rpc.implement(SPAWN)
async def spawn(host: ComputeHost, request: Spawn) -> Spawned:
    """Disks, config drive, volumes and a running domain for the server."""
    return await _checked(host.spawn(request.server))


@rpc.implement(DESTROY)
async def destroy(host: ComputeHost, request: ServerRef) -> Destroyed:
    return await _checked(host.destroy(request.server_id))


@rpc.implement(POWER)
async def power(host: ComputeHost, request: Power) -> DomainState:
    return await _checked(host.power(request.server_id, request.action))


@rpc.implement(REBUILD)
async def rebuild(host: ComputeHost, request: Spawn) -> Spawned:
    """The domain and disk made again from the server's (new) image."""
    return await _checked(host.rebuild(request.server))


@rpc.implement(RESIZE)
async def resize(host: ComputeHost, request: Resize) -> DomainState:
    """A resize on this host: the old files kept aside until finish_resize."""
    return await _checked(host.resize(request.server, request.running))


@rpc.implement(FINISH_RESIZE)
async def finish_resize(host: ComputeHost, request: FinishResize) -> DomainState:
    return await _checked(host.finish_resize(request.server_id, request.revert, request.running))


@rpc.implement(SNAPSHOT)
async def snapshot(host: ComputeHost, request: Snapshot) -> DomainState:
    """The root disk copied to the image store's staging file ``target``."""
    return await _checked(host.snapshot(request.server_id, request.target))


@rpc.implement(SHELVE_OFFLOAD)
async def shelve_offload(host: ComputeHost, request: ServerRef) -> Destroyed:
    """Domain and files gone; the server lives on (shelved), so a later spawn counts."""
    return await _checked(host.shelve_offload(request.server_id))


@rpc.implement(CONSOLE_OUTPUT)
async def console_output(host: ComputeHost, request: ConsoleRequest) -> ConsoleOutput:
    return await _checked(host.console_output(request.server_id, request.length))


@rpc.implement(ATTACH_VOLUME)
async def attach_volume(host: ComputeHost, request: AttachVolume) -> VolumeAttached:
    return await _checked(
        host.attach_volume(request.server_id, request.volume_id, request.connection)
    )


@rpc.implement(DETACH_VOLUME)
async def detach_volume(host: ComputeHost, request: DetachVolume) -> VolumeDetached:
    """Unplug the volume's disk, asking the guest up to ``attempts`` times, waiting
    ``wait_s`` seconds after each, none begun past ``until`` (epoch seconds); the host's
    defaults for what is not given. Failed for good: the disk stays (in the definition
    too), InternalError."""
    return await _checked(
        host.detach_volume(
            request.server_id, request.volume_id, request.attempts, request.wait_s, request.until
        )
    )


@rpc.implement(ATTACH_INTERFACE)
async def attach_interface(host: ComputeHost, request: AttachInterface) -> InterfaceAttached:
    """Hot-plug the port's NIC; ``attached`` is False when it was there already."""
    return await _checked(host.attach_interface(request.server_id, request.nic))


@rpc.implement(DETACH_INTERFACE)
async def detach_interface(host: ComputeHost, request: DetachInterface) -> InterfaceDetached:
    """Unplug the port's NIC, asked again as ``detach_volume`` does."""
    return await _checked(
        host.detach_interface(
            request.server_id, request.nic, request.attempts, request.wait_s, request.until
        )
    )


@rpc.implement(INVENTORY)
async def inventory(host: ComputeHost, request: Empty) -> Inventory:
    return await _checked(host.inventory())
