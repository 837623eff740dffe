"""The Cinder extensions this service implements, as ``GET /v3/{project}/extensions`` and
``/v3/extensions`` list them (clients and Tempest look for aliases and names here)."""

from __future__ import annotations

from common_rpc.chassis.plugins import Extension

_UPDATED = "2023-01-01T00:00:00+00:00"

_ALIASES = {
    "os-volume-actions": ("VolumeActions", "Enable volume actions."),
    "os-snapshot-actions": ("SnapshotActions", "Enable snapshot manager actions."),
    "os-admin-actions": ("AdminActions", "Enable admin actions."),
    "os-types-manage": ("TypesManage", "Types manage support."),
    "os-types-extra-specs": ("TypesExtraSpecs", "Type extra specs support."),
    "os-volume-type-access": ("VolumeTypeAccess", "Volume type access support."),
    "os-quota-sets": ("Quotas", "Quota management support."),
    "os-availability-zone": ("AvailabilityZones", "Describe Availability Zones."),
    "os-volume-transfer": ("VolumeTransfer", "Volume transfer management support."),
    "backups": ("Backups", "Backups support."),
    "os-extended-snapshot-attributes": (
        "ExtendedSnapshotAttributes",
        "Extended SnapshotAttributes support.",
    ),
    "os-vol-tenant-attr": ("VolumeTenantAttribute", "Expose the internal project_id."),
    "os-vol-host-attr": ("VolumeHostAttribute", "Expose host as an attribute of a volume."),
    "os-vol-mig-status-attr": ("VolumeMigStatusAttribute", "Expose migration_status."),
    "os-vol-image-meta": ("VolumeImageMetadata", "Show image metadata of volumes."),
    "os-services": ("Services", "Services support."),
}

BUILTIN = [
    Extension(alias, name, description, _UPDATED) for alias, (name, description) in _ALIASES.items()
]
