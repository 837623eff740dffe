"""Detach from a real QEMU guest that does not answer the first unplug request.

Everything real on one machine, on a private RabbitMQ vhost: the volume API and a
volume-agent exporting over a tgtd of the test's own, the compute API and a compute-agent
on qemu:///system booting the stackling-tiny guest through ``POST /v2.1/servers``.

1. A volume attached as soon as the server is ACTIVE is detached one second after: the
   guest is still booting and ignores that unplug request; the host asks again until the
   booted guest lets the disk go, and the detach ends: no compute attachment, the volume
   ``available``, no tgt target.
2. A paused guest never answers: the detach is rolled back within its deadline (the
   volume ``in-use`` again, the attachment kept, the disk kept in the definition) with
   the fault in ``os-instance-actions``; resumed, the guest lets the disk go and a new
   detach ends.

Short unplug settings keep it quick. Every domain, secret, file, target and queue carries
the test's prefix or vhost and is removed afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
from api_helpers import Api, private_vhost
from sqlalchemy import select
from test_volume_path_iscsi import Tgtd
from virt_fixtures import URI, instances_dir, leftovers, prepare_guest, sweep, unique_prefix

from common_rpc.audit import AuditReport, request_audit
from common_rpc.testing import running_app, signing_keys, wait_for
from compute_svc.agent.main import ComputeAgent
from compute_svc.agent.main import build as build_compute_agent
from compute_svc.agent.settings import AgentSettings as ComputeAgentSettings
from compute_svc.app import create_app as create_compute_app
from compute_svc.db.models import InstanceActionEvent, VolumeAttachment
from compute_svc.drivers.libvirt import domain_xml as dx
from compute_svc.settings import ComputeSettings
from volume_svc.agent.main import build as build_volume_agent
from volume_svc.agent.settings import AgentSettings as VolumeAgentSettings
from volume_svc.app import create_app as create_volume_app
from volume_svc.db.models import Volume
from volume_svc.settings import VolumeSettings

# Enough requests to outlast the guest's boot (a few seconds under TCG), each with
# libvirt's own wait of about 5 s before our 2 s.
ATTEMPTS, WAIT_S = 8, 2.0


@pytest.fixture(scope="module", name="guest_dir")
def guest_dir_fixture() -> Path:
    return prepare_guest(("tgtd", "tgtadm", "rabbitmqctl"))


@dataclass
class Cloud:
    prefix: str
    compute: Api
    volume: Api
    agent: ComputeAgent
    tgtd: Tgtd

    @property
    def deps(self) -> Any:
        return self.compute.app.state.deps


@pytest.fixture(name="cloud")
async def cloud_fixture(guest_dir: Path) -> AsyncIterator[Cloud]:
    prefix = unique_prefix()
    tag = prefix.rstrip("-")
    root = instances_dir(prefix)
    data = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}data-"))
    tgtd = Tgtd(data / "tgtd.log")
    with private_vhost() as amqp_url:
        try:
            async with AsyncExitStack() as stack:
                tgtd.start()
                signer, public = signing_keys(data / "keys")
                shared = {"amqp_url": amqp_url, "identity_public_key_path": public}
                volume_app = create_volume_app(
                    VolumeSettings(data_dir=data / "volume", host=f"{prefix}vol-api",
                                   backend_host=f"{prefix}vol", agent_timeout=30.0,
                                   log_json=False, **shared)
                )  # fmt: skip
                volume_http = await stack.enter_async_context(running_app(volume_app))
                volume_agent = build_volume_agent(
                    VolumeAgentSettings(
                        data_dir=data / "volume", host=f"{prefix}vol",
                        agent_target_helper="tgt", agent_tgt_control_port=tgtd.control_port,
                        agent_portal=tgtd.portal, agent_name_prefix=prefix,
                        agent_iqn_prefix=f"iqn.2010-10.org.stackling.{tag}",
                        agent_reconcile_interval=3600.0, log_json=False, **shared,
                    )
                )  # fmt: skip
                await volume_agent.start()
                stack.push_async_callback(volume_agent.stop)
                compute_app = create_compute_app(
                    ComputeSettings(data_dir=data / "compute", host=f"{prefix}api",
                                    device_detach_attempts=ATTEMPTS,
                                    device_detach_timeout=WAIT_S, log_json=False, **shared)
                )  # fmt: skip
                compute_http = await stack.enter_async_context(running_app(compute_app))
                agent = build_compute_agent(
                    ComputeAgentSettings(
                        host=f"{prefix}cn", data_dir=root, amqp_url=amqp_url,
                        agent_libvirt_uri=URI, agent_virt_type="qemu",
                        agent_domain_prefix=prefix, agent_instances_dir=root / "inst",
                        agent_reconcile_interval=3600, agent_shutdown_timeout=0,
                        log_json=False,
                    )
                )  # fmt: skip
                await agent.start()
                stack.push_async_callback(agent.stop)
                registry = compute_app.state.deps.agents
                await wait_for(lambda: registry.alive_hosts("compute-agent"), timeout=20)
                yield Cloud(
                    prefix,
                    Api(compute_app, compute_http, signer),
                    Api(volume_app, volume_http, signer),
                    agent,
                    tgtd,
                )
        finally:
            left = leftovers(URI, prefix, root / "inst")
            sweep(URI, prefix, root)
            tgtd.stop()
            shutil.rmtree(data, ignore_errors=True)
    assert left == {"domains": [], "secrets": [], "files": []}, left


async def _image(api: Api, guest_dir: Path) -> str:
    """stackling-tiny as the project's kernel, ramdisk and machine images."""
    kernel = await api.image("p1", (guest_dir / "vmlinuz").read_bytes(), disk_format="aki",
                             container_format="aki")  # fmt: skip
    ramdisk = await api.image("p1", (guest_dir / "initramfs.gz").read_bytes(),
                              disk_format="ari", container_format="ari")  # fmt: skip
    machine = await api.image("p1", b"stackling-tiny", disk_format="ami", container_format="ami",
                              kernel_id=kernel["id"], ramdisk_id=ramdisk["id"],
                              os_command_line="console=ttyS0 quiet")  # fmt: skip
    return str(machine["id"])


async def _volume(cloud: Cloud, vid: str) -> dict[str, Any]:
    resp = await cloud.volume.get("p1", f"/v3/p1/volumes/{vid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["volume"])


async def _volume_becomes(cloud: Cloud, vid: str, status: str, timeout: float) -> None:
    async def reached() -> bool:
        return (await _volume(cloud, vid))["status"] == status

    await wait_for(reached, timeout=timeout, interval=0.2)


def _domain(cloud: Cloud, sid: str) -> libvirt.virDomain:
    driver = cloud.agent.host.driver
    return driver.conn().lookupByName(driver.domain_name(sid))


def _has_disk(cloud: Cloud, sid: str, vid: str, flags: int = 0) -> bool:
    return dx.volume_disk(_domain(cloud, sid).XMLDesc(flags), vid) is not None


async def _row(cloud: Cloud, sid: str, vid: str) -> VolumeAttachment | None:
    async with cloud.compute.app.state.runtime.sessions() as session:
        return await session.get(VolumeAttachment, (sid, vid))


async def _gone(cloud: Cloud, sid: str, vid: str, timeout: float) -> None:
    """The detach ended: no compute attachment, the volume available, no tgt target."""

    async def ended() -> bool:
        if await _row(cloud, sid, vid) is not None:
            return False
        return (await _volume(cloud, vid))["status"] == "available"

    await wait_for(ended, timeout=timeout, interval=0.2)
    assert cloud.tgtd.targets() == {}
    assert not _has_disk(cloud, sid, vid)


async def _attach(cloud: Cloud, sid: str, vid: str) -> None:
    path = f"/v2.1/servers/{sid}/os-volume_attachments"
    resp = await cloud.compute.post("p1", path, {"volumeAttachment": {"volumeId": vid}})
    assert resp.status_code == 200, resp.text
    assert (await _volume(cloud, vid))["status"] == "in-use"
    assert _has_disk(cloud, sid, vid)


@pytest.mark.timeout(420)
async def test_detach_while_the_guest_boots_and_one_it_refuses(
    cloud: Cloud, guest_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="compute_svc.agent.host")
    started = time.monotonic()
    marks: dict[str, float] = {}
    api = cloud.compute
    flavor = await api.flavor("m1.guest", ram=128, vcpus=1, disk=1)
    body = {"server": {"name": "boots", "flavorRef": flavor["id"],
                       "imageRef": await _image(api, guest_dir), "networks": "none"}}  # fmt: skip
    resp = await cloud.volume.post("p1", "/v3/p1/volumes", {"volume": {"size": 1}})
    assert resp.status_code == 202, resp.text
    vid = resp.json()["volume"]["id"]
    sid = (await api.post("p1", "/v2.1/servers", body)).json()["server"]["id"]

    async def active() -> bool:
        server = (await api.get("p1", f"/v2.1/servers/{sid}")).json()["server"]
        assert server["status"] != "ERROR", server
        return bool(server["status"] == "ACTIVE")

    await wait_for(active, timeout=120, interval=0.1)
    active_at = time.monotonic()
    marks["ACTIVE"] = active_at - started
    await _volume_becomes(cloud, vid, "available", timeout=30)

    # 1. Attached at once, detached one second after ACTIVE: the guest is still booting.
    await _attach(cloud, sid, vid)
    await asyncio.sleep(max(0.0, active_at + 1.0 - time.monotonic()))
    path = f"/v2.1/servers/{sid}/os-volume_attachments/{vid}"
    sent = time.monotonic()
    resp = await api.delete("p1", path)
    assert resp.status_code == 202, resp.text
    marks["detach asked (after ACTIVE)"] = sent - active_at
    assert time.monotonic() - sent < 2.0
    await _gone(cloud, sid, vid, timeout=cloud.deps.settings.detach_deadline_s)
    marks["detached"] = time.monotonic() - started
    unanswered = sum("not answered yet" in r.getMessage() for r in caplog.records)
    action = await _action(cloud, sid, resp.headers["x-openstack-request-id"])
    assert action["events"][0]["result"] == "Success", action
    # The guest let the disk go while booting; it goes on to come up (TCG on a busy host
    # may print its ready line well after the detach finished).
    console = await _console(cloud, sid, "stackling-guest: ready", timeout=120)
    assert "stackling-guest: ready" in console, console

    # 2. A paused guest never answers: rolled back within the deadline, with the fault.
    await _attach(cloud, sid, vid)
    cloud.deps.settings.device_detach_attempts = 2  # this detach is meant to fail: quicker
    _domain(cloud, sid).suspend()
    sent = time.monotonic()
    resp = await api.delete("p1", path)
    assert resp.status_code == 202, resp.text
    assert (await _volume(cloud, vid))["status"] == "detaching"
    deadline = cloud.deps.settings.detach_deadline_s
    await _volume_becomes(cloud, vid, "in-use", timeout=deadline)
    marks["rolled back (s after the request)"] = time.monotonic() - sent
    assert time.monotonic() - sent < deadline
    row = await _row(cloud, sid, vid)
    assert row is not None and row.status == "attached"
    assert _has_disk(cloud, sid, vid)
    assert _has_disk(cloud, sid, vid, libvirt.VIR_DOMAIN_XML_INACTIVE)  # kept for a restart
    assert len(cloud.tgtd.targets()) == 1
    action = await _action(cloud, sid, resp.headers["x-openstack-request-id"])
    assert action["events"][0]["result"] == "Error", action
    assert action["message"] == (
        f"Device detach failed for {row.device}: the guest still holds it after 2 unplug requests."
    )
    await _nothing_detaching(cloud, sid, vid)  # rolled back: no run left to sweep

    # Resumed, the guest lets the disk go; a new detach ends it everywhere.
    _domain(cloud, sid).resume()
    resp = await api.delete("p1", path)
    assert resp.status_code == 202, resp.text
    await _gone(cloud, sid, vid, timeout=deadline)
    marks["detached after resume"] = time.monotonic() - started
    # What `stackling audit` sees: the guest on its host with its claim, no detach stuck
    # past its deadline; the volume's file and no target, nothing detaching.
    await _nothing_detaching(cloud, sid, vid)
    compute, volume = await _audits(cloud)
    assert (compute.checked["servers"], compute.checked["domains"]) == (1, 1), compute
    assert (volume.checked["volumes"], volume.checked["targets"]) == (1, 0), volume

    assert (await api.delete("p1", f"/v2.1/servers/{sid}")).status_code == 204

    async def deleted() -> bool:
        return (await api.get("p1", f"/v2.1/servers/{sid}")).status_code == 404

    await wait_for(deleted, timeout=60)
    assert (await cloud.volume.delete("p1", f"/v3/p1/volumes/{vid}")).status_code == 202

    async def volume_deleted() -> bool:
        return (await cloud.volume.get("p1", f"/v3/p1/volumes/{vid}")).status_code == 404

    await wait_for(volume_deleted, timeout=30)
    compute, volume = await _audits(cloud)
    assert (compute.checked["servers"], compute.checked["domains"]) == (0, 0), compute
    assert (volume.checked["volumes"], volume.checked["files"]) == (0, 0), volume
    assert cloud.tgtd.targets() == {}
    print(
        f"unplug requests the booting guest did not answer: {unanswered}; timings (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in marks.items())
    )


async def _action(cloud: Cloud, sid: str, request_id: str) -> dict[str, Any]:
    resp = await cloud.compute.get("p1", f"/v2.1/servers/{sid}/os-instance-actions/{request_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["instanceAction"])


async def _nothing_detaching(cloud: Cloud, sid: str, vid: str) -> None:
    """Every detach ended (its event finished, no deadline left on the volume): the audit
    reports a detach only once past its deadline, minutes away, so this looks now."""
    async with cloud.compute.app.state.runtime.sessions() as session:
        events = await session.scalars(
            select(InstanceActionEvent).where(InstanceActionEvent.server_id == sid)
        )
        running = [(e.event, e.status) for e in events
                   if e.status != "finished" or e.task_deadline is not None]  # fmt: skip
    assert running == [], running
    async with cloud.volume.app.state.runtime.sessions() as session:
        row = await session.get(Volume, vid)
    assert row is not None and row.status != "detaching" and row.task_deadline is None, row


async def _audits(cloud: Cloud) -> tuple[AuditReport, AuditReport]:
    """The compute and volume audits, as `stackling audit` asks for them: both clean."""
    rpc = cloud.compute.app.state.runtime.rpc
    reports = (
        await request_audit(rpc, "compute", timeout=30),
        await request_audit(rpc, "volume", timeout=30),
    )
    for report in reports:
        assert report.findings == [], report
    return reports


async def _console(cloud: Cloud, sid: str, marker: str, timeout: float) -> str:
    """The guest's console once it shows ``marker`` (or what it shows at the deadline)."""
    agent = cloud.deps.agent(cloud.agent.settings.host)
    deadline = time.monotonic() + timeout
    while True:
        out = (await agent.console_output(sid, None)).output
        if marker in out or time.monotonic() > deadline:
            return out
        await asyncio.sleep(0.5)
