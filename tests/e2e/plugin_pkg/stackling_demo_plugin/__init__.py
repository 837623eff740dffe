"""A third party's additions to volume-svc: the ``demo-echo`` API and the ``demo`` target.

The target keeps exports in memory, as volume-svc's fake does, under its own IQN prefix,
and writes each export to ``demo-target.log`` in the agent's storage directory, so a test
can see that the agent ran this driver and not a built-in one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from common_rpc.chassis.plugins import Extension
from common_rpc.context import current_context
from volume_svc.drivers.base import DriverConfig, Export, ExportSpec

router = APIRouter()


@router.get("/{project_id}/demo-echo")
async def demo_echo(project_id: str) -> dict[str, Any]:
    ctx = current_context()
    return {"demo": {"project_id": project_id, "caller_project": ctx.project_id}}


extension = Extension(
    alias="demo-echo",
    name="DemoEcho",
    description="Echoes the caller's project (an out-of-tree extension).",
    updated="2026-12-01T00:00:00+00:00",
    router=router,
)


class DemoTarget:
    name = "demo"

    def __init__(self, storage_dir: Path, portal: str) -> None:
        self.journal = storage_dir / "demo-target.log"
        self.portal = portal
        self.exports: dict[str, Export] = {}

    @classmethod
    def from_config(cls, config: DriverConfig) -> DemoTarget:
        config.storage_dir.mkdir(parents=True, exist_ok=True)
        return cls(config.storage_dir, config.portal)

    def target_iqn(self, volume_id: str) -> str:
        return f"iqn.2026-12.example.demo:{volume_id}"

    def export(self, spec: ExportSpec) -> Export:
        export = Export(
            spec.volume_id,
            self.target_iqn(spec.volume_id),
            self.portal,
            1,
            (spec.initiator,),
            spec.chap_user,
        )
        self.exports[spec.volume_id] = export
        with self.journal.open("a") as log:
            log.write(json.dumps({"export": spec.volume_id, "initiator": spec.initiator}) + "\n")
        return export

    def unexport(self, volume_id: str) -> None:
        self.exports.pop(volume_id, None)

    def list_exports(self) -> dict[str, Export]:
        return dict(self.exports)
