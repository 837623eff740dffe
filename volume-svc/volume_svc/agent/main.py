"""The volume-agent process: the chassis' agent shell around this host's ``VolumeHost``.

It serves ``volume.<host>`` (``agent.handlers``), reconciles the host's exports with the
API's ``host_state`` at start and every ``agent_reconcile_interval`` (tgtd keeps no
target across a restart), and heartbeats to the API.

volume-agent                                      # settings from VOLUME_*
agent = build(AgentSettings(host="st1", agent_target_helper="tgt", ...))
await agent.start(); ...; await agent.stop()      # what the tests run in-process
await agent.reconciler.run_once()                 # {"exports": 2, "removed": 0}
"""

from __future__ import annotations

import shutil
from typing import Any

from common_rpc.chassis.agent import AgentShell
from common_rpc.chassis.agent_process import run_agent

from ..contracts import HOST_STATE
from ..drivers import load_backend, load_backup, load_target
from .handlers import rpc as commands
from .host import VolumeHost
from .settings import AgentSettings

BINARY = "volume-agent"

# The agent process is the chassis' shell (its host object is ``.host``).
VolumeAgent = AgentShell


def build(settings: AgentSettings) -> AgentShell:
    """The shell around the drivers the settings name (PluginError if one is missing)."""
    config = settings.driver_config()
    backend = load_backend(settings.driver("backend"), config)
    target = load_target(settings.driver("target"), config)
    backups = load_backup(settings.driver("backup"), config)
    host = VolumeHost(backend, target, name_prefix=settings.agent_name_prefix, backups=backups)
    storage = config.storage_dir

    def capabilities() -> dict[str, Any]:
        # Free-form by design: the heartbeat's capabilities, shown to admins as is.
        usage = shutil.disk_usage(storage)
        return {
            "backend": settings.driver("backend"),
            "backup": settings.driver("backup"),
            "target_helper": target.name,
            "portal": settings.agent_portal,
            "total_gb": usage.total >> 30,
            "free_gb": usage.free >> 30,
        }

    return AgentShell.build(
        settings,
        binary=BINARY,
        host_object=host,
        commands=commands,
        host_state=HOST_STATE,
        converge=host.converge,
        capabilities=capabilities,
    )


def main() -> None:
    run_agent(BINARY, AgentSettings(), build)
