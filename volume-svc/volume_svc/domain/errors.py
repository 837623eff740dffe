"""Cinder's faults as common-rpc errors; the chassis renders them as Cinder error bodies.

raise not_found("Volume", volume_id)    # 404 {"itemNotFound": {"code": 404, ...}}
raise invalid_state("Volume", volume_id, "in-use", "delete")   # 400 badRequest
"""

from __future__ import annotations

from common_rpc.errors import Forbidden, Invalid, NotFound, QuotaExceeded


def not_found(kind: str, resource_id: str) -> NotFound:
    """What another project's resource answers too (404, never 403)."""
    return NotFound(f"{kind} {resource_id} could not be found.")


def invalid(message: str) -> Invalid:
    return Invalid(message)


def invalid_state(kind: str, resource_id: str, status: str, action: str) -> Invalid:
    return Invalid(f"Invalid {kind.lower()}: {kind} {resource_id} is {status}; cannot {action}.")


def forbidden(message: str = "Policy doesn't allow this operation.") -> Forbidden:
    return Forbidden(message)


def over_quota(resource: str, requested: int, in_use: int, limit: int) -> QuotaExceeded:
    """Cinder's 413 texts: VolumeSizeExceedsAvailableQuota, SnapshotLimitExceeded,
    VolumeLimitExceeded, BackupLimitExceeded and VolumeBackupSizeExceedsAvailableQuota."""
    if resource == "gigabytes":
        return QuotaExceeded(
            "Requested volume or snapshot exceeds allowed gigabytes quota. "
            f"Requested {requested}G, quota is {limit}G and {in_use}G has been consumed."
        )
    if resource == "backup_gigabytes":
        return QuotaExceeded(
            "Requested backup exceeds allowed Backup gigabytes quota. "
            f"Requested {requested}G, quota is {limit}G and {in_use}G has been consumed."
        )
    if resource == "backups":
        return QuotaExceeded(f"Maximum number of backups allowed ({limit}) exceeded")
    if resource == "snapshots":
        return QuotaExceeded(f"Maximum number of snapshots allowed ({limit}) exceeded")
    return QuotaExceeded(
        f"Maximum number of {resource} allowed ({limit}) exceeded for quota '{resource}'."
    )
