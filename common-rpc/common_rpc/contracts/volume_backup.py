"""The payload of the volume service's backup events (``volume.backup.<action>.end``).

Registered with the rest when ``common_rpc.contracts`` is imported, so consumers, the
gateway's ``/v1/events/types`` and ``docs/events.md`` know them like every other event.

    BackupPayload(id=b, project_id=p, volume_id=v, status="available", size=1)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .registry import contract_for, register

ACTIONS = ("create", "delete", "restore")


class BackupPayload(BaseModel):
    # Newer producers may add fields; older consumers must not break on them.
    model_config = ConfigDict(extra="allow")

    id: str
    project_id: str
    volume_id: str
    status: str
    size: int
    # The volume a restore wrote (``restore`` only).
    restore_volume_id: str | None = None


def _register() -> None:
    for action in ACTIONS:
        event_type = f"volume.backup.{action}.end"
        try:
            contract_for(event_type)
        except KeyError:
            register(event_type, BackupPayload, f"A volume backup {action} finished.")


_register()
