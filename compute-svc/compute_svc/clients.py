"""Typed clients of what compute calls over RPC; nothing else knows their topics.

- the volume service: ``common_rpc.contracts.volume.VolumeApi`` (``Deps.volume``);
- the network service: ``NetworkClient`` (network's shared topic);
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
    port = await network.create_port(network_id=net, device_id=sid, device_owner="compute:nova")
    agent = AgentClient(runtime.rpc, "cn1")
    await agent.spawn(server_state)         # contracts.ServerState: the whole server
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from common_rpc import RpcClient, RpcTimeout
from common_rpc.chassis.agent import agent_topic
from common_rpc.methods import Empty, Method, Rep, Req

from .contracts import (
    ATTACH_INTERFACE,
    ATTACH_VOLUME,
    CONSOLE_OUTPUT,
    DESTROY,
    DETACH_INTERFACE,
    DETACH_VOLUME,
    INVENTORY,
    POWER,
    SPAWN,
    AttachInterface,
    AttachVolume,
    ConsoleOutput,
    ConsoleRequest,
    Destroyed,
    DetachInterface,
    DetachVolume,
    DomainState,
    InterfaceAttached,
    InterfaceDetached,
    Inventory,
    Nic,
    Power,
    PowerAction,
    ServerRef,
    ServerState,
    Spawn,
    Spawned,
    VolumeAttached,
    VolumeConnection,
    VolumeDetached,
)

SERVICE = "compute"


class ServiceClient:
    """Calls to one service's shared topic, any replica, with a default deadline."""

    topic: ClassVar[str]

    def __init__(self, rpc: RpcClient, *, timeout: float = 10.0) -> None:
        self.rpc = rpc
        self.timeout = timeout

    async def ping(self) -> dict[str, Any]:
        return await self.rpc.call(self.topic, "ping", timeout=self.timeout)

    async def _call(self, method: str, op_id: str | None = None, **args: Any) -> Any:
        return await self.rpc.call(self.topic, method, timeout=self.timeout, op_id=op_id, **args)


class NetworkClient(ServiceClient):
    topic = "network"

    async def create_port(self, op_id: str, **args: Any) -> dict[str, Any]:
        """One port per ``op_id``: a retry after a timeout gets the port the first try made."""
        try:
            return await self._call("create_port", op_id=op_id, **args)
        except RpcTimeout:
            return await self._call("create_port", op_id=op_id, **args)

    async def get_port(self, port_id: str) -> dict[str, Any]:
        return await self._call("get_port", port_id=port_id)

    async def get_network(self, network_id: str) -> dict[str, Any]:
        """The network if the caller may use it (own, shared or external), else NotFound."""
        return await self._call("get_network", network_id=network_id)

    async def delete_port(self, port_id: str) -> dict[str, Any]:
        """Idempotent: a port already gone answers ``deleted: False``."""
        return await self._call("delete_port", port_id=port_id)

    async def delete_ports(self, device_id: str) -> dict[str, Any]:
        """Every port on ``device_id``, also those a create whose reply was lost made."""
        return await self._call("delete_ports", device_id=device_id)

    async def update_port(
        self,
        port_id: str,
        *,
        device_id: str | None = None,
        device_owner: str | None = None,
        unbind: bool = False,
    ) -> dict[str, Any]:
        """Claim a port for a server (its device id and owner), or give it back (``unbind``
        clears its host and has that host unwire it)."""
        return await self._call(
            "update_port",
            port_id=port_id,
            device_id=device_id,
            device_owner=device_owner,
            unbind=unbind,
        )

    async def update_port_binding(self, port_id: str, host: str) -> dict[str, Any]:
        """Wires the port on ``host``; answers ``bridge``, ``mtu``, ``mac_address``."""
        return await self._call("update_port_binding", port_id=port_id, host=host)

    async def find_security_groups(
        self, names_or_ids: list[str], *, missing_ok: bool = False
    ) -> list[dict[str, Any]]:
        """The caller's project's groups (Neutron's view) by name or id, in order, each
        once; NotFound / Conflict (a shared name) carry the entry as ``details["name"]``."""
        reply = await self._call(
            "find_security_groups", names_or_ids=names_or_ids, missing_ok=missing_ok
        )
        return list(reply["security_groups"])

    async def update_port_security_groups(
        self, port_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> dict[str, Any]:
        """Add and remove group ids on one port (idempotent); the port, with the ids it
        ``added`` and ``removed``."""
        return await self._call(
            "update_port_security_groups", port_id=port_id, add=add or [], remove=remove or []
        )


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
