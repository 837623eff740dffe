"""Typed clients of what compute calls over RPC; nothing else knows their topics.

- the volume service: ``common_rpc.contracts.volume.VolumeApi`` (``Deps.volume``);
- the network service: ``NetworkClient``, ``common_rpc.contracts.network.NetworkApi``
  with compute's retry of a port's create (``Deps.network``);
- one host's compute-agent: ``AgentClient`` (``contracts.AGENT`` on ``compute.<host>``).

API version history (what each side may rely on; compute's own in ``contracts``):
    1.0  ping
    1.1  network: create_port, get_port, delete_port, update_port_binding
         volume: reserve, initialize_connection, attach, begin_detaching,
                 terminate_connection, detach, unreserve
    1.2  network: delete_ports
    1.3  network: find_security_groups, update_port_security_groups
    1.4  network: update_port (device_id, device_owner, unbind)
    1.5  volume: roll_detaching

    network = NetworkClient(runtime.rpc)
    port = await network.create_port(CreatePort(network_id=net, device_id=sid), op_id=op)
    agent = AgentClient(runtime.rpc, "cn1")
    await agent.spawn(server_state)         # contracts.ServerState: the whole server
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from common_rpc import RpcClient, RpcTimeout
from common_rpc.chassis.agent import agent_topic
from common_rpc.contracts.network import CreatePort, NetworkApi, Port
from common_rpc.methods import Empty, Method, Rep, Req

from .contracts import (
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
    Nic,
    Power,
    PowerAction,
    Resize,
    ServerRef,
    ServerState,
    Snapshot,
    Spawn,
    Spawned,
    VolumeAttached,
    VolumeConnection,
    VolumeDetached,
)

SERVICE = "compute"


class NetworkClient(NetworkApi):
    """The network topic's typed client (``common_rpc.contracts.network``), with compute's
    one retry of a port's create."""

    async def create_port(self, request: CreatePort, *, op_id: str | None = None) -> Port:
        """One port per ``op_id``: a retry after a timeout gets the port the first try made."""
        try:
            return await super().create_port(request, op_id=op_id)
        except RpcTimeout:
            return await super().create_port(request, op_id=op_id)


@dataclass(frozen=True)
class Unplug:
    """How a host asks a guest to let a device go: ``attempts`` requests of ``timeout``
    seconds each, none begun past ``until`` (epoch seconds, as RPC deadlines are)."""

    attempts: int
    timeout: float
    until: float

    @classmethod
    def within(cls, attempts: int, timeout: float, budget_s: float) -> Unplug:
        return cls(attempts, timeout, time.time() + budget_s)

    def call_timeout(self, margin: float) -> float:
        """The reply may come at ``until`` and ``margin`` later (the last request's own
        wait, the definition restored)."""
        return max(self.until - time.time(), 0.0) + margin


class AgentClient:
    """The compute-agent of one host (``contracts.AGENT``); every command carries desired
    state, never a delta."""

    def __init__(self, rpc: RpcClient, host: str, *, timeout: float = 30.0) -> None:
        self.rpc = rpc
        self.host = host
        self.timeout = timeout

    async def _invoke(
        self, method: Method[Req, Rep], request: Req, timeout: float | None = None
    ) -> Rep:
        topic = agent_topic(SERVICE, self.host)
        return await self.rpc.invoke(topic, method, request, timeout=timeout or self.timeout)

    async def spawn(self, server: ServerState, *, timeout: float | None = None) -> Spawned:
        return await self._invoke(SPAWN, Spawn(server=server), timeout)

    async def destroy(self, server_id: str) -> Destroyed:
        """Idempotent: no domain and no disk afterwards, whatever was there."""
        return await self._invoke(DESTROY, ServerRef(server_id=server_id))

    async def power(self, server_id: str, action: PowerAction) -> DomainState:
        """``start``, ``stop`` or ``reboot`` (a reboot is a hard one on this hypervisor)."""
        return await self._invoke(POWER, Power(server_id=server_id, action=action))

    async def rebuild(self, server: ServerState, *, timeout: float | None = None) -> Spawned:
        return await self._invoke(REBUILD, Spawn(server=server), timeout)

    async def resize(
        self, server: ServerState, running: bool, *, timeout: float | None = None
    ) -> DomainState:
        return await self._invoke(RESIZE, Resize(server=server, running=running), timeout)

    async def finish_resize(
        self, server_id: str, *, revert: bool, running: bool, timeout: float | None = None
    ) -> DomainState:
        request = FinishResize(server_id=server_id, revert=revert, running=running)
        return await self._invoke(FINISH_RESIZE, request, timeout)

    async def snapshot(
        self, server_id: str, target: str, *, timeout: float | None = None
    ) -> DomainState:
        """The root disk as one qcow2 at ``target`` (the image store's staging file)."""
        return await self._invoke(SNAPSHOT, Snapshot(server_id=server_id, target=target), timeout)

    async def shelve_offload(self, server_id: str) -> Destroyed:
        """Domain and files gone from the host; the server is not deleted."""
        return await self._invoke(SHELVE_OFFLOAD, ServerRef(server_id=server_id))

    async def console_output(self, server_id: str, length: int | None) -> ConsoleOutput:
        return await self._invoke(
            CONSOLE_OUTPUT, ConsoleRequest(server_id=server_id, length=length)
        )

    async def attach_volume(
        self, server_id: str, volume_id: str, connection: VolumeConnection
    ) -> VolumeAttached:
        """Hot-plugs the volume; answers the ``device`` the guest sees it as."""
        request = AttachVolume(server_id=server_id, volume_id=volume_id, connection=connection)
        return await self._invoke(ATTACH_VOLUME, request)

    async def detach_volume(self, server_id: str, volume_id: str, unplug: Unplug) -> VolumeDetached:
        """Unplugs the volume's disk (asked again as ``unplug`` says); answers how many
        requests it took as ``attempts``. A guest that keeps it: InternalError."""
        request = DetachVolume(
            server_id=server_id,
            volume_id=volume_id,
            attempts=unplug.attempts,
            wait_s=unplug.timeout,
            until=unplug.until,
        )
        return await self._invoke(DETACH_VOLUME, request, unplug.call_timeout(self.timeout))

    async def attach_interface(self, server_id: str, nic: Nic) -> InterfaceAttached:
        """Hot-plugs the port's NIC (idempotent: ``attached`` is False when it was there)."""
        return await self._invoke(ATTACH_INTERFACE, AttachInterface(server_id=server_id, nic=nic))

    async def detach_interface(self, server_id: str, nic: Nic, unplug: Unplug) -> InterfaceDetached:
        """Unplugs the NIC with the port's MAC (asked again as ``unplug`` says); fine when
        it is already gone."""
        request = DetachInterface(
            server_id=server_id,
            nic=nic,
            attempts=unplug.attempts,
            wait_s=unplug.timeout,
            until=unplug.until,
        )
        return await self._invoke(DETACH_INTERFACE, request, unplug.call_timeout(self.timeout))

    async def inventory(self) -> Inventory:
        """The host's guests and their power states, and its capacity (the audit)."""
        return await self._invoke(INVENTORY, Empty())
