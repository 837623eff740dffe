"""What compute's handlers get: the runtime and the clients built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from common_rpc.chassis.runtime import ServiceRuntime

from .clients import NetworkClient, VolumeClient
from .port_events import PortEvents


@dataclass
class Deps:
    runtime: ServiceRuntime
    network: NetworkClient
    volume: VolumeClient
    ports: PortEvents

    @classmethod
    def build(cls, runtime: ServiceRuntime) -> Deps:
        return cls(runtime, NetworkClient(runtime.rpc), VolumeClient(runtime.rpc), PortEvents())
