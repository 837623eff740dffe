"""The config drive: an ISO 9660 image labelled ``config-2`` in the OpenStack layout.

    openstack/latest/meta_data.json
    openstack/latest/network_data.json
    openstack/latest/user_data          (only when the server has user data)

It is built with genisoimage from a staging directory (the chassis' command runner: an
argument list, no shell, a timeout) and attached read-only to the guest, which mounts it
by looking for that layout.

    build_config_drive(ConfigDriveSpec({"uuid": "1f2e"}, {}, b"echo hi"), Path("disk.config"))
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from common_rpc.chassis import commands
from compute_svc.drivers.base import ConfigDriveSpec

LABEL = "config-2"


class ConfigDriveError(RuntimeError):
    pass


class CommandError(commands.CommandError, ConfigDriveError):
    """genisoimage failed, timed out or is missing (the chassis' runner): a ConfigDriveError."""


def _stage(spec: ConfigDriveSpec, root: Path) -> None:
    latest = root / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps(spec.meta_data, sort_keys=True))
    (latest / "network_data.json").write_text(json.dumps(spec.network_data, sort_keys=True))
    if spec.user_data is not None:
        (latest / "user_data").write_bytes(spec.user_data)


def build_config_drive(spec: ConfigDriveSpec, target: Path, *, timeout: float = 60) -> Path:
    """Write the ISO to ``target`` (replaced atomically)."""
    tmp = target.with_name(target.name + ".partial")
    with tempfile.TemporaryDirectory(prefix="config-drive-") as stage:
        _stage(spec, Path(stage))
        argv = [
            "genisoimage", "-o", str(tmp), "-ldots", "-allow-lowercase", "-allow-multidot",
            "-l", "-publisher", "Stackling", "-quiet", "-J", "-r", "-V", LABEL, stage,
        ]  # fmt: skip
        try:
            commands.run(argv, timeout=timeout, error=CommandError)
        except CommandError:
            tmp.unlink(missing_ok=True)
            raise
    tmp.chmod(0o644)
    os.replace(tmp, target)
    return target
