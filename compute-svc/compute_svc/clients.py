"""Facades for the services and agents compute calls over RPC; nothing else knows their topics.

API version history (what each side may rely on):
    1.0  ping
    1.1  network: create_port, get_port, delete_port, update_port_binding
         volume: reserve, initialize_connection, attach, begin_detaching,
                 terminate_connection, detach, unreserve
         compute.<host>: spawn, destroy, power(action start|stop|reboot),
                 console_output, attach_volume, detach_volume, host_state
    1.2  network: delete_ports
    1.3  network: find_security_groups, update_port_security_groups
    1.4  network: update_port (device_id, device_owner, unbind)
         compute.<host>: attach_interface, detach_interface; host_servers lists ``nics``
    1.5  volume: roll_detaching
         compute.<host>: detach_volume, detach_interface take ``attempts``, ``wait_s``
                 and ``until`` (the unplug asked again) and answer ``attempts``

    The volume service's typed client is ``common_rpc.contracts.volume.VolumeApi``.

    network = NetworkClient(runtime.rpc)
    port = await network.create_port(network_id=net, device_id=sid, device_owner="compute:nova")
    agent = AgentClient(runtime.rpc, "cn1")
    await agent.spawn(desired_state)        # the whole server, with its generation
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from common_rpc import RpcClient, RpcTimeout


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

    def args(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "wait_s": self.timeout, "until": self.until}

    def call_timeout(self, margin: float) -> float:
        """The reply may come at ``until`` and ``margin`` later (the last request's own
        wait, the definition restored)."""
        return max(self.until - time.time(), 0.0) + margin


def agent_topic(host: str) -> str:
    return f"compute.{host}"


class AgentClient:
    """The compute-agent of one host; every command carries desired state, never a delta."""

    def __init__(self, rpc: RpcClient, host: str, *, timeout: float = 30.0) -> None:
        self.rpc = rpc
        self.host = host
        self.timeout = timeout

    async def _call(self, method: str, timeout: float | None = None, **args: Any) -> Any:
        return await self.rpc.call(
            agent_topic(self.host), method, timeout=timeout or self.timeout, **args
        )

    async def spawn(self, server: dict[str, Any], *, timeout: float | None = None) -> Any:
        return await self._call("spawn", timeout=timeout, server=server)

    async def destroy(self, server_id: str) -> Any:
        """Idempotent: no domain and no disk afterwards, whatever was there."""
        return await self._call("destroy", server_id=server_id)

    async def power(self, server_id: str, action: str) -> Any:
        """``start``, ``stop`` or ``reboot`` (a reboot is a hard one on this hypervisor)."""
        return await self._call("power", server_id=server_id, action=action)

    async def console_output(self, server_id: str, length: int | None) -> Any:
        return await self._call("console_output", server_id=server_id, length=length)

    async def attach_volume(
        self, server_id: str, volume_id: str, connection: dict[str, Any]
    ) -> Any:
        """Hot-plugs the volume; answers the ``device`` the guest sees it as."""
        return await self._call(
            "attach_volume", server_id=server_id, volume_id=volume_id, connection=connection
        )

    async def attach_interface(self, server_id: str, nic: dict[str, Any]) -> Any:
        """Hot-plugs the port's NIC ``{"port_id", "mac", "bridge", "mtu"}`` (idempotent)."""
        return await self._call("attach_interface", server_id=server_id, nic=nic)

    async def detach_interface(self, server_id: str, nic: dict[str, Any], unplug: Unplug) -> Any:
        """Unplugs the NIC with the port's MAC (asked again as ``unplug`` says); fine when
        it is already gone."""
        return await self._call(
            "detach_interface",
            timeout=unplug.call_timeout(self.timeout),
            server_id=server_id,
            nic=nic,
            **unplug.args(),
        )

    async def host_state(self) -> dict[str, Any]:
        """``{"host", "domains": [{"server_id", "power_state"}], "capacity"}``."""
        return await self._call("host_state")

    async def detach_volume(self, server_id: str, volume_id: str, unplug: Unplug) -> Any:
        """Unplugs the volume's disk (asked again as ``unplug`` says); answers how many
        requests it took as ``attempts``. A guest that keeps it: InternalError."""
        return await self._call(
            "detach_volume",
            timeout=unplug.call_timeout(self.timeout),
            server_id=server_id,
            volume_id=volume_id,
            **unplug.args(),
        )
