"""compute-agent's virt driver is a plugin: the entry point of ``stackling.compute.drivers``
its settings name (``COMPUTE_DRIVERS``), loaded with the chassis' ``load_driver``; the
built-in libvirt driver is registered exactly as another package's driver would be.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from common_rpc.chassis import plugins
from common_rpc.chassis.plugins import PluginError
from common_rpc.chassis.settings import SettingsError
from compute_svc.agent.main import build
from compute_svc.agent.settings import AgentSettings
from compute_svc.drivers import load_virt
from compute_svc.drivers.base import VirtConfig
from compute_svc.drivers.libvirt.driver import LibvirtDriver

GROUP = "stackling.compute.drivers"


class RecordingDriver:
    """Another package's virt driver, as small as the agent lets it be (built only)."""

    def __init__(self, config: VirtConfig) -> None:
        self.config = config
        self.initiator = config.initiator
        self.detach_timeout = config.detach_timeout

    @classmethod
    def from_config(cls, config: VirtConfig) -> RecordingDriver:
        return cls(config)


def _settings(tmp_path: Path, **values: Any) -> AgentSettings:
    return AgentSettings(
        host="cn-drivers",
        data_dir=tmp_path,
        agent_libvirt_uri="test:///default",
        agent_virt_type="test",
        **values,
    )


@pytest.fixture
def another_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """``virt.recording`` installed, as its package's pyproject would declare it."""
    installed = plugins.entry_points
    extra = EntryPoint("virt.recording", f"{__name__}:RecordingDriver", GROUP)

    def entry_points(*, group: str) -> list[EntryPoint]:
        found = list(installed(group=group))
        return [*found, extra] if group == GROUP else found

    monkeypatch.setattr(plugins, "entry_points", entry_points)


def test_the_builtin_driver_is_an_entry_point(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.driver("virt") == "libvirt"
    driver = load_virt("libvirt", settings.virt_config())
    try:
        assert isinstance(driver, LibvirtDriver)
        assert (driver.uri, driver.initiator) == ("test:///default", settings.initiator_iqn())
    finally:
        driver.close()


def test_the_settings_choose_another_packages_driver(tmp_path: Path, another_package: None) -> None:
    agent = build(_settings(tmp_path, drivers={"virt": "recording"}, device_detach_timeout=7.0))
    driver = agent.host.driver
    assert isinstance(driver, RecordingDriver)
    assert driver.config.detach_timeout == 7.0 and driver.config.uri == "test:///default"
    # Left unset, the same settings load the built-in one.
    default = build(_settings(tmp_path))
    assert isinstance(default.host.driver, LibvirtDriver)
    default.host.driver.close()


def test_an_unknown_driver_or_kind_stops_the_agent(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"virt driver 'nope' is not installed.*libvirt"):
        build(_settings(tmp_path, drivers={"virt": "nope"}))
    with pytest.raises(SettingsError, match="unknown kind"):
        _settings(tmp_path, drivers={"disk": "raw"})
