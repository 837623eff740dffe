"""The volume data plane: a backend that holds the bytes and an iSCSI target helper, each
loaded by name from the entry points of group ``stackling.volume.drivers``.

config = DriverConfig(storage_dir=Path("/var/lib/stackling/volumes"),
                      iqn_prefix="iqn.2010-10.org.stackling", portal="10.0.0.5:3260")
backend = load_backend("file", config)
target = load_target("auto", config)   # LIO where /sys/kernel/config/target exists, else tgt

Built in: ``backend.file``, ``backup.file``, ``target.tgt``, ``target.lio``, ``target.fake``
(in memory, for tests) and ``target.auto``; another package adds one by declaring the same
kind of entry point. A name nobody installed raises ``PluginError`` (a start-up error)
listing those that are.
"""

from __future__ import annotations

from common_rpc.chassis.plugins import load_driver

from .base import (
    Backend,
    BackendDriver,
    BackupDriver,
    BackupStore,
    DriverConfig,
    TargetDriver,
    TargetHelper,
)

SERVICE = "volume"
KINDS = ("backend", "target", "backup")


def load_backend(name: str, config: DriverConfig) -> Backend:
    driver: BackendDriver = load_driver(SERVICE, "backend", name)
    return driver.from_config(config)


def load_target(name: str, config: DriverConfig) -> TargetHelper:
    driver: TargetDriver = load_driver(SERVICE, "target", name)
    return driver.from_config(config)


def load_backup(name: str, config: DriverConfig) -> BackupStore:
    driver: BackupDriver = load_driver(SERVICE, "backup", name)
    return driver.from_config(config)
