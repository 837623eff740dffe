"""The reconcile step on real QEMU domains: an orphan with our prefix (and a stray disk
directory) is removed, a known server is kept and its power state reported when it
differs from the service's. The service's list is injected (its RPC side is covered by
test_agent_rpc); every domain and file carries a random prefix and is removed at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_libvirt_guest import guest_dir_fixture  # noqa: F401  (the tiny guest, built once)
from virt_fixtures import instances_dir, leftovers, server, sweep, tiny_image, unique_prefix

from compute_svc.agent.host import ComputeHost
from compute_svc.contracts import DesiredServer, DomainPower, ServerState
from compute_svc.drivers.libvirt.driver import LibvirtDriver

URI = "qemu:///system"


@pytest.fixture(name="host")
async def host_fixture(guest_dir: Path) -> AsyncIterator[ComputeHost]:
    prefix = unique_prefix()
    root = instances_dir(prefix)
    driver = LibvirtDriver(
        uri=URI, virt_type="qemu", prefix=prefix, instances_dir=root / "inst", shutdown_timeout=0
    )
    try:
        yield ComputeHost(driver, "cn-" + prefix)
    finally:
        driver.close()
        left = leftovers(URI, prefix, root / "inst")
        sweep(URI, prefix, root)
        assert left == {"domains": [], "secrets": [], "files": []}, left


async def test_reconcile_removes_orphan_domain_and_disk(host: ComputeHost, guest_dir: Path) -> None:
    image = tiny_image(guest_dir)
    known = ServerState.model_validate(server(image))
    orphan = ServerState.model_validate(server(image))
    assert (await host.spawn(known)).power_state == "running"
    assert (await host.spawn(orphan)).power_state == "running"
    stray = host.driver.store.make_server_dir(str(uuid.uuid4()))
    (stray / "disk").write_bytes(b"left by a crashed spawn")
    host.touched.clear()  # the commands are older than the round

    desired = [DesiredServer(server_id=known.server_id, generation=1, power_state="shutdown")]
    result = await host.converge(desired, since=0.0)

    assert sorted(result.removed) == sorted([orphan.server_id, stray.name])
    assert result.power_changes == [(known.server_id, "running")]
    state = await host.inventory()
    assert state.domains == [DomainPower(server_id=known.server_id, power_state="running")]
    assert host.driver.list_disk_owners() == {known.server_id}
    # a late spawn of the removed orphan changes nothing
    assert (await host.spawn(orphan)).deleted is True
    assert [d.server_id for d in host.driver.list_domains()] == [known.server_id]

    # once the service agrees, a second round has nothing to do
    desired[0].power_state = "running"
    again = await host.converge(desired, since=0.0)
    assert again.removed == [] and again.power_changes == []
    await host.destroy(known.server_id)
    assert host.driver.list_domains() == []
