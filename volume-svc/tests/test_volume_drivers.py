"""The file backend on a real directory, the tgt output parser, and drivers as plugins:
the built-in ones found by their entry points and chosen in the agent's settings."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from common_rpc.chassis.plugins import PluginError, load_driver
from common_rpc.chassis.settings import SettingsError
from volume_svc.agent.host import VolumeHost
from volume_svc.agent.main import build
from volume_svc.agent.settings import AgentSettings
from volume_svc.contracts import DesiredExport, HostState
from volume_svc.drivers import load_backend, load_target
from volume_svc.drivers.base import DriverConfig
from volume_svc.drivers.fake import FakeTarget
from volume_svc.drivers.filebackend import GIB, FileBackend
from volume_svc.drivers.tgt import TgtTarget, parse_show

SHOW = """Target 3: iqn.2010-10.org.stackling:volume-v1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
        LUN: 1
            Type: disk
            Backing store path: /srv/volume-v1.img
    Account information:
        vol-v1
    ACL information:
        iqn.1993-08.org.debian:01:c1
Target 4: iqn.2010-10.org.other:x
    System information:
        Driver: iscsi
    LUN information:
    Account information:
    ACL information:
"""


def test_file_backend_copies_data_and_keeps_holes(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, prefix="t-")
    path = backend.create("v1", 2)
    assert path.name == "t-volume-v1.img" and path.stat().st_size == 2 * GIB
    with open(path, "r+b") as f:
        f.seek(GIB + 4096)
        f.write(b"x" * 8192)
    snap = backend.snapshot("s1", "v1")
    clone = backend.clone("v2", snap, 3)
    assert clone.stat().st_size == 3 * GIB
    with open(clone, "rb") as f:
        f.seek(GIB + 4096)
        assert f.read(8192) == b"x" * 8192
    # Only the written extent is allocated in the copies (holes stay holes).
    assert os.stat(snap).st_blocks * 512 < 1 << 20
    assert os.stat(clone).st_blocks * 512 < 1 << 20
    backend.extend("v1", 4)
    assert path.stat().st_size == 4 * GIB
    with pytest.raises(RuntimeError):
        backend.extend("v1", 1)
    assert backend.list_volumes() == {"v1", "v2"} and backend.list_snapshots() == {"s1"}
    assert FileBackend(tmp_path).list_volumes() == frozenset()  # another prefix's files
    backend.delete("v1")
    backend.delete("v1")  # idempotent
    backend.delete_snapshot("s1")
    assert backend.list_volumes() == {"v2"} and backend.list_snapshots() == frozenset()


def test_tgt_show_parser_and_ownership() -> None:
    first, second = parse_show(SHOW)
    assert (first.tid, first.iqn) == (3, "iqn.2010-10.org.stackling:volume-v1")
    assert first.backing == ["/srv/volume-v1.img"]
    assert first.accounts == ["vol-v1"] and first.acl == ["iqn.1993-08.org.debian:01:c1"]
    assert second.backing == [] and second.accounts == [] and second.acl == []
    tgt = TgtTarget(iqn_prefix="iqn.2010-10.org.stackling", portal="127.0.0.1:3260")
    assert tgt.target_iqn("v1") == first.iqn
    exported = tgt._export_of(first)
    assert exported.volume_id == "v1" and exported.chap_user == "vol-v1"


def test_auto_picks_lio_only_where_configfs_has_a_target_dir(tmp_path: Path) -> None:
    config = DriverConfig(tmp_path, iqn_prefix="iqn.x", portal="p", lio_dir=tmp_path / "absent")
    assert load_target("auto", config).name == "tgt"
    try:
        lio = load_target("auto", DriverConfig(tmp_path, "iqn.x", "p", lio_dir=tmp_path))
    except ModuleNotFoundError as exc:  # rtslib-fb is not installed on this host
        assert "rtslib" in str(exc)
    else:
        assert lio.name == "lio"
    with pytest.raises(PluginError, match="installed: auto, fake, lio, tgt"):
        load_target("nope", config)


def test_the_built_in_drivers_are_entry_points() -> None:
    """Registered in volume-svc's pyproject exactly as a third party's driver would be."""
    assert load_driver("volume", "backend", "file") is FileBackend
    assert load_driver("volume", "target", "tgt") is TgtTarget
    assert load_driver("volume", "target", "fake") is FakeTarget
    assert load_driver("volume", "target", "lio").__name__ == "LioTarget"
    assert load_driver("volume", "target", "auto").__name__ == "AutoTarget"


def test_settings_choose_the_drivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """VOLUME_DRIVERS names them; VOLUME_AGENT_TARGET_HELPER still names the target; an
    unknown kind or name stops the agent before it starts."""
    monkeypatch.setenv("VOLUME_AGENT_TARGET_HELPER", "fake")
    settings = AgentSettings(data_dir=tmp_path, host="st-drivers", agent_name_prefix="d-")
    assert (settings.driver("backend"), settings.driver("target")) == ("file", "fake")
    agent = build(settings)
    assert isinstance(agent.host.target, FakeTarget)
    assert isinstance(agent.host.backend, FileBackend)
    assert agent.host.backend.storage_dir == tmp_path / "volumes"

    monkeypatch.setenv("VOLUME_DRIVERS", '{"target": "tgt", "backend": "file"}')
    settings = AgentSettings(data_dir=tmp_path, host="st-drivers", agent_tgt_control_port=7)
    target = build(settings).host.target
    assert isinstance(target, TgtTarget) and target.control_port == 7
    assert load_backend("file", settings.driver_config()).list_volumes() == frozenset()

    with pytest.raises(SettingsError, match="unknown kind"):
        AgentSettings(data_dir=tmp_path, drivers={"disk": "file"})
    with pytest.raises(PluginError, match="target driver 'nope' is not installed"):
        build(AgentSettings(data_dir=tmp_path, drivers={"target": "nope"}))


async def test_a_stale_reconcile_neither_revives_nor_removes_newer_exports(tmp_path: Path) -> None:
    """The fake target stands in for tgt: this is the agent's ordering logic only."""
    host = VolumeHost(
        FileBackend(tmp_path), FakeTarget(iqn_prefix="iqn.x", portal="p"), name_prefix="t-"
    )
    await host.create_volume("v1", 1)
    await host.create_volume("v2", 1)
    await host.export_volume("v1", "iqn.2010-10.x:c1", "s" * 16)
    wanted = DesiredExport(volume_id="v1", initiator="iqn.2010-10.x:c1", chap_secret="s")
    stale = HostState(host="h", volumes=["v1", "v2"], exports=[wanted])
    since = time.monotonic()
    await host.unexport_volume("v1")  # a detach after the state was read
    await host.export_volume("v2", "iqn.2010-10.x:c2", "s" * 16)  # an attach, likewise
    assert await host.converge(stale, since) == {"exports": 0, "removed": 0}
    assert set(host.target.list_exports()) == {"v2"}
    fresh = HostState(host="h", volumes=["v1", "v2"])
    assert await host.converge(fresh, time.monotonic()) == {"exports": 0, "removed": 1}
    assert host.target.list_exports() == {}
