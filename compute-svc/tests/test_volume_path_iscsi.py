"""A volume from volume-svc moves between two real guests through compute's attach path.

Everything real on one machine, on a private RabbitMQ vhost: the volume API and a
volume-agent exporting over its own tgtd (own control port and portal), the compute API
and two compute-agents (hosts A and B, each with its own initiator IQN) on
qemu:///system running the stackling-tiny guest. Attach and detach go through the
compute API's ``os-volume_attachments`` (domain/volumes.py and its RPC clients), so the
connector carries the initiator the agent reports in its heartbeat and QEMU logs in as.

Guest 1 (host A) writes a pattern to the disk whose serial is the volume's; after the
detach the target is gone (tgtadm); guest 2 (host B) reads the pattern back. The
volume exported to B's initiator is refused to A's QEMU. Every domain, secret, file,
target and queue carries the test's prefix or vhost and is removed afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Api, private_vhost
from virt_fixtures import (
    URI,
    instances_dir,
    leftovers,
    owned_secrets,
    prepare_guest,
    server,
    sweep,
    tiny_image,
    unique_prefix,
)

from common_rpc import RequestContext
from common_rpc.context import use_context
from common_rpc.contracts.volume import Connector
from common_rpc.errors import InternalError
from common_rpc.testing import free_port, running_app, signing_keys, wait_for
from compute_svc.agent.main import ComputeAgent
from compute_svc.agent.main import build as build_compute_agent
from compute_svc.agent.settings import AgentSettings as ComputeAgentSettings
from compute_svc.app import create_app as create_compute_app
from compute_svc.contracts import ServerState, VolumeConnection
from compute_svc.db.models import Server, VolumeAttachment
from compute_svc.drivers.libvirt import domain_xml as dx
from compute_svc.settings import ComputeSettings
from volume_svc.agent.main import VolumeAgent
from volume_svc.agent.main import build as build_volume_agent
from volume_svc.agent.settings import AgentSettings as VolumeAgentSettings
from volume_svc.app import create_app as create_volume_app
from volume_svc.drivers.tgt import parse_show
from volume_svc.settings import VolumeSettings

TGT_SOCKETS = Path("/var/run/tgtd")
P1 = RequestContext(project_id="p1", user_id="user-p1", roles=frozenset({"member", "reader"}))
ADMIN = RequestContext(project_id="admin", roles=frozenset({"admin"}))


@pytest.fixture(scope="module", name="guest_dir")
def guest_dir_fixture() -> Path:
    """The tiny guest, built (or found up to date) by the project's own script."""
    return prepare_guest(("tgtd", "tgtadm", "rabbitmqctl"))


class Tgtd:
    """A tgtd of the test's own (control port, portal): killed with all it exported."""

    def __init__(self, log: Path) -> None:
        self.control_port = secrets.randbelow(12000) + 20000  # tgtd takes at most 32767
        while (TGT_SOCKETS / f"socket.{self.control_port}").exists():
            self.control_port = secrets.randbelow(12000) + 20000
        self.portal = f"127.0.0.1:{free_port()}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["tgtd", "-f", "-C", str(self.control_port), "--iscsi", f"portal={self.portal}"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + 15
        while self._show(check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"tgtd on control port {self.control_port} did not answer")
            time.sleep(0.1)

    def _show(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["tgtadm", "-C", str(self.control_port), "--lld", "iscsi", "--mode", "target",
                "--op", "show"]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=check)

    def targets(self) -> dict[str, list[str]]:
        """{target IQN: its ACL} as tgtadm shows them."""
        return {t.iqn: t.acl for t in parse_show(self._show().stdout)}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # tgtd ignores SIGTERM
            self.proc.wait(timeout=10)
            self.proc = None
        for name in (f"socket.{self.control_port}", f"socket.{self.control_port}.lock"):
            (TGT_SOCKETS / name).unlink(missing_ok=True)


@dataclass
class Cloud:
    prefix: str
    tag: str
    compute: Api
    volume: Api
    volume_agent: VolumeAgent
    agents: dict[str, ComputeAgent]  # "a", "b" -> agent
    tgtd: Tgtd
    image: dict[str, Any]

    @property
    def deps(self) -> Any:
        return self.compute.app.state.deps

    def host(self, which: str) -> str:
        return self.agents[which].settings.host

    def initiator(self, which: str) -> str:
        return self.agents[which].settings.initiator_iqn()

    def driver(self, which: str) -> Any:
        return self.agents[which].host.driver


def _agent_settings(prefix: str, which: str, root: Path, amqp_url: str) -> ComputeAgentSettings:
    return ComputeAgentSettings(
        host=f"{prefix}cn-{which}",
        data_dir=root,
        amqp_url=amqp_url,
        agent_libvirt_uri=URI,
        agent_virt_type="qemu",
        agent_domain_prefix=f"{prefix}{which}-",
        agent_instances_dir=root / which,
        agent_reconcile_interval=3600,
        agent_heartbeat_interval=3600,  # the first report goes at start
        agent_shutdown_timeout=0,
        log_json=False,
    )


@pytest.fixture(name="cloud")
async def cloud_fixture(guest_dir: Path) -> AsyncIterator[Cloud]:
    prefix = unique_prefix()
    tag = prefix.rstrip("-")
    root = instances_dir(prefix)  # QEMU walks into the instances below it
    data = Path(tempfile.mkdtemp(prefix=f"stk-{prefix}data-"))
    tgtd = Tgtd(data / "tgtd.log")
    with private_vhost() as amqp_url:
        try:
            async with AsyncExitStack() as stack:
                tgtd.start()
                signer, public = signing_keys(data / "keys")
                shared = {"amqp_url": amqp_url, "identity_public_key_path": public}
                volume_app = create_volume_app(
                    VolumeSettings(
                        data_dir=data / "volume",
                        host=f"{prefix}vol-api",
                        backend_host=f"{prefix}vol",
                        agent_timeout=30.0,
                        log_json=False,
                        **shared,
                    )
                )
                volume_http = await stack.enter_async_context(running_app(volume_app))
                volume_agent = build_volume_agent(
                    VolumeAgentSettings(
                        data_dir=data / "volume",
                        host=f"{prefix}vol",
                        agent_target_helper="tgt",
                        agent_tgt_control_port=tgtd.control_port,
                        agent_portal=tgtd.portal,
                        agent_name_prefix=prefix,
                        agent_iqn_prefix=f"iqn.2010-10.org.stackling.{tag}",
                        agent_reconcile_interval=3600.0,
                        log_json=False,
                        **shared,
                    )
                )
                await volume_agent.start()
                stack.push_async_callback(volume_agent.stop)
                compute_app = create_compute_app(
                    ComputeSettings(
                        data_dir=data / "compute", host=f"{prefix}api", log_json=False, **shared
                    )
                )
                compute_http = await stack.enter_async_context(running_app(compute_app))
                agents: dict[str, ComputeAgent] = {}
                for which in ("a", "b"):
                    agent = build_compute_agent(_agent_settings(prefix, which, root, amqp_url))
                    await agent.start()
                    stack.push_async_callback(agent.stop)
                    agents[which] = agent
                registry = compute_app.state.deps.agents
                hosts = {a.settings.host for a in agents.values()}

                async def both_alive() -> bool:
                    return hosts <= set(await registry.alive_hosts("compute-agent"))

                await wait_for(both_alive, timeout=20)
                yield Cloud(
                    prefix,
                    tag,
                    Api(compute_app, compute_http, signer),
                    Api(volume_app, volume_http, signer),
                    volume_agent,
                    agents,
                    tgtd,
                    tiny_image(guest_dir),
                )
        finally:
            left = leftovers(URI, prefix, root / "a") | {"b": leftovers(URI, prefix, root / "b")}
            sweep(URI, prefix, root)
            tgtd.stop()
            shutil.rmtree(data, ignore_errors=True)
    assert left == {
        "domains": [],
        "secrets": [],
        "files": [],
        "b": {"domains": [], "secrets": [], "files": []},
    }, left


async def _server_row(cloud: Cloud, which: str, name: str) -> str:
    """An ACTIVE server of p1 on host ``which``, as a boot leaves it in compute's database."""
    sid = str(uuid.uuid4())
    async with cloud.compute.app.state.runtime.sessions.begin() as session:
        session.add(
            Server(
                id=sid, project_id="p1", user_id="user-p1", name=name, flavor_id="tiny",
                vcpus=1, ram_mb=128, disk_gb=0, host=cloud.host(which), vm_state="active",
                status="ACTIVE", power_state=1,
            )
        )  # fmt: skip
    return sid


def _find_disk(serial: str) -> str:
    """Shell that sets $d to the guest's disk with ``serial`` (waits up to ~3 minutes)."""
    return (
        "find_disk() {\n"
        "  for s in /sys/block/vd*/serial; do\n"
        f'    if [ "$(cat "$s" 2>/dev/null)" = "{serial}" ]; then\n'
        '      d="${s%/serial}"; d="/dev/${d##*/}"; return 0\n'
        "    fi\n"
        "  done\n"
        "  return 1\n"
        "}\n"
        "i=0\n"
        "until find_disk || [ $i -ge 900 ]; do sleep 0.2; i=$((i+1)); done\n"
        'echo "volume-disk $d"\n'
    )


async def _console(cloud: Cloud, which: str, sid: str, marker: str, timeout: float) -> str:
    agent = cloud.deps.agent(cloud.host(which))
    deadline = time.monotonic() + timeout
    while True:
        out = (await agent.console_output(sid, None)).output
        if marker in out or time.monotonic() > deadline:
            return out
        await asyncio.sleep(0.5)


def _live_disk(cloud: Cloud, which: str, sid: str, volume_id: str) -> Any:
    driver = cloud.driver(which)
    dom = driver.conn().lookupByName(driver.domain_name(sid))
    return dx.volume_disk(dom.XMLDesc(0), volume_id)


async def _volume(cloud: Cloud, vid: str) -> dict[str, Any]:
    resp = await cloud.volume.get("p1", f"/v3/p1/volumes/{vid}")
    assert resp.status_code == 200, resp.text
    return resp.json()["volume"]


async def _detached(cloud: Cloud, vid: str, path: str) -> None:
    """The detach runs after its 202: until compute forgot it and the volume is available."""

    async def done() -> bool:
        listed = (await cloud.compute.get("p1", path)).json()["volumeAttachments"]
        return not listed and (await _volume(cloud, vid))["status"] == "available"

    await wait_for(done, timeout=cloud.deps.settings.detach_deadline_s, interval=0.2)


@pytest.mark.timeout(300)
async def test_volume_moves_between_guests_through_compute_and_iscsi(
    cloud: Cloud,
) -> None:
    started = time.monotonic()
    marks: dict[str, float] = {}
    iqn_prefix = f"iqn.2010-10.org.stackling.{cloud.tag}"
    resp = await cloud.volume.post("p1", "/v3/p1/volumes", {"volume": {"size": 1}})
    assert resp.status_code == 202, resp.text
    vid = resp.json()["volume"]["id"]

    async def available() -> bool:
        return (await _volume(cloud, vid))["status"] == "available"

    await wait_for(available, timeout=30)
    serial = vid[:20]  # what libvirt gives the guest as the disk's serial
    pattern = "pattern-" + secrets.token_hex(8)

    # Both heartbeats named their host's initiator; compute's connector takes it from there.
    agents = {a.host: a for a in await cloud.deps.agents.list(binary="compute-agent")}
    for which in ("a", "b"):
        assert agents[cloud.host(which)].capabilities["initiator"] == cloud.initiator(which)
    assert cloud.initiator("a") == f"iqn.2010-10.org.stackling:{cloud.prefix}cn-a"
    assert cloud.initiator("a") != cloud.initiator("b")

    writer = _find_disk(serial) + (
        f'echo {pattern} | dd of="$d" bs=512 conv=sync,fsync 2>/dev/null && echo wrote-{pattern}\n'
    )
    reader = _find_disk(serial) + 'echo "read-back $(head -n 1 "$d")"\n'
    s1 = await _server_row(cloud, "a", "writer")
    s2 = await _server_row(cloud, "b", "reader")
    spawned = await asyncio.gather(
        cloud.deps.agent(cloud.host("a")).spawn(
            ServerState.model_validate(
                server(cloud.image, server_id=s1, user_data=writer.encode(), disk_gb=0)
            )
        ),
        cloud.deps.agent(cloud.host("b")).spawn(
            ServerState.model_validate(
                server(cloud.image, server_id=s2, user_data=reader.encode(), disk_gb=0)
            )
        ),
    )
    assert [s.power_state for s in spawned] == ["running", "running"]
    for which, sid in (("a", s1), ("b", s2)):
        out = await _console(cloud, which, sid, "stackling-guest: user-data start", 150)
        assert "user-data start" in out, out
    marks["guests up"] = time.monotonic() - started

    # The connector of another host: the export admits B's initiator, A's QEMU is refused.
    with use_context(P1):
        await cloud.deps.volume.reserve(vid)
        b_connector = Connector(host=cloud.host("b"), initiator=cloud.initiator("b"))
        info = await cloud.deps.volume.initialize_connection(vid, b_connector)
        assert cloud.tgtd.targets() == {info.data.target_iqn: [cloud.initiator("b")]}
        with pytest.raises(InternalError, match="Failed to log in to target"):
            connection = VolumeConnection.of(info)
            await cloud.deps.agent(cloud.host("a")).attach_volume(s1, vid, connection)
        assert _live_disk(cloud, "a", s1, vid) is None
        assert owned_secrets(URI, cloud.prefix) == []
        assert (await cloud.deps.volume.unreserve(vid)).status == "available"
    assert cloud.tgtd.targets() == {}
    marks["wrong initiator refused"] = time.monotonic() - started

    # Attach to guest 1 through the compute API; the guest writes the pattern.
    path1 = f"/v2.1/servers/{s1}/os-volume_attachments"
    resp = await cloud.compute.post("p1", path1, {"volumeAttachment": {"volumeId": vid}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["volumeAttachment"]["device"] == "/dev/vdb"  # vda is the config drive
    marks["attached to 1"] = time.monotonic() - started
    targets = cloud.tgtd.targets()
    assert list(targets.values()) == [[cloud.initiator("a")]], targets
    disk = _live_disk(cloud, "a", s1, vid)
    assert disk is not None
    assert disk.find("source/initiator/iqn").get("name") == cloud.initiator("a")
    async with cloud.compute.app.state.runtime.sessions() as session:
        row = await session.get(VolumeAttachment, (s1, vid))
        assert row is not None and row.status == "attached"
        # Kept for the detach, which then names the same initiator whatever A reports.
        assert row.connection["connector"]["initiator"] == cloud.initiator("a")
    shown = await _volume(cloud, vid)
    assert shown["status"] == "in-use"
    assert shown["attachments"][0]["server_id"] == s1
    assert shown["attachments"][0]["device"] == "/dev/vdb"  # sent as Cinder's mountpoint
    out = await _console(cloud, "a", s1, f"wrote-{pattern}", 60)
    assert f"wrote-{pattern}" in out, out
    backing = cloud.volume_agent.host.backend.volume_path(vid)
    assert backing.read_bytes()[:512].startswith(pattern.encode() + b"\n")
    marks["written by 1"] = time.monotonic() - started

    # Detach: the guest lets the disk go, the target is gone, the volume is available.
    assert (await cloud.compute.delete("p1", f"{path1}/{vid}")).status_code == 202
    await _detached(cloud, vid, path1)
    assert cloud.tgtd.targets() == {}
    assert _live_disk(cloud, "a", s1, vid) is None
    assert (await _volume(cloud, vid))["status"] == "available"
    assert (await cloud.compute.get("p1", path1)).json()["volumeAttachments"] == []
    assert owned_secrets(URI, cloud.prefix) == []
    marks["detached from 1"] = time.monotonic() - started

    # Attach to guest 2 (host B, its own initiator): the pattern is read back there.
    path2 = f"/v2.1/servers/{s2}/os-volume_attachments"
    resp = await cloud.compute.post("p1", path2, {"volumeAttachment": {"volumeId": vid}})
    assert resp.status_code == 200, resp.text
    assert list(cloud.tgtd.targets().values()) == [[cloud.initiator("b")]]
    out = await _console(cloud, "b", s2, f"read-back {pattern}", 60)
    assert f"read-back {pattern}" in out, out
    marks["read back by 2"] = time.monotonic() - started

    assert (await cloud.compute.delete("p1", f"{path2}/{vid}")).status_code == 202
    await _detached(cloud, vid, path2)
    assert not any(iqn.startswith(iqn_prefix) for iqn in cloud.tgtd.targets())
    assert (await _volume(cloud, vid))["status"] == "available"
    with use_context(ADMIN):
        audit = await cloud.volume.app.state.runtime.rpc.call("volume", "audit", timeout=30)
    assert audit["findings"] == [], audit
    marks["detached from 2"] = time.monotonic() - started

    for which, sid in (("a", s1), ("b", s2)):
        await cloud.deps.agent(cloud.host(which)).destroy(sid)
    assert (await cloud.volume.delete("p1", f"/v3/p1/volumes/{vid}")).status_code == 202

    async def deleted() -> bool:
        resp = await cloud.volume.get("p1", f"/v3/p1/volumes/{vid}")
        return resp.status_code == 404

    await wait_for(deleted, timeout=30)
    assert not backing.exists()
    print("timings (s since start): " + ", ".join(f"{k} {v:.1f}" for k, v in marks.items()))
