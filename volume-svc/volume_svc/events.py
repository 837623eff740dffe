"""Event types the volume service emits, through the outbox in the changing transaction.

Payload contracts (``VolumePayload``, ``SnapshotPayload``) are registered in
``common_rpc.contracts.payloads``; ``docs/events.md`` lists them. Backups' are in
``common_rpc.contracts.volume_backup`` (registered when imported).
"""

from __future__ import annotations

VOLUME = "volume.volume.{action}.end"
SNAPSHOT = "volume.snapshot.{action}.end"
BACKUP = "volume.backup.{action}.end"

CREATE, UPDATE, DELETE = "create", "update", "delete"
EXTEND, ATTACH, DETACH = "extend", "attach", "detach"
RESTORE = "restore"
