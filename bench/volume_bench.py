"""Volume benchmark: create->available and delete times, and writes through iSCSI.

In one run, in-process: volume-api (SQLite in a temporary directory) and a volume-agent
with the file backend and tgt on a private tgtd (its own control port and portal, killed
at the end). For 1 GiB and 10 GiB empty volumes: seconds from POST /volumes to
``available`` and from DELETE to 404 (median of ``--repeat``). Then one volume is
attached to a test initiator and QEMU's initiator (qemu-io, CHAP) writes ``--write-mib``
sequentially through the export; the same write goes straight to a file in the same
directory. Both through qemu-io with the same cache mode, so the ratio is the iSCSI
export's cost. Prints a table and one JSON line; exit 1 if a step failed.

    python -m bench.volume_bench [--repeat 3] [--write-mib 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika

from common_rpc import RequestContext, use_context
from common_rpc.chassis.identity import IDENTITY_HEADER
from common_rpc.rpc import queue_name
from common_rpc.testing import free_port, running_app, signing_keys
from volume_svc.agent.main import build
from volume_svc.agent.settings import AgentSettings
from volume_svc.app import create_app
from volume_svc.settings import VolumeSettings

_RATE = re.compile(r"\(([\d.]+) MiB/sec")


class Tgtd:
    """A tgtd of the bench's own, so the machine's targets are never touched."""

    def __init__(self, log: Path) -> None:
        self.control = random.randint(20000, 32000)
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["tgtd", "-f", "-C", str(self.control), "--iscsi", f"portal=127.0.0.1:{self.port}"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out, start_new_session=True)
        show = ["tgtadm", "-C", str(self.control), "--lld", "iscsi", "--mode", "target"]
        for _ in range(150):
            if subprocess.run([*show, "--op", "show"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("tgtd did not answer")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # tgtd ignores SIGTERM
            self.proc.wait(timeout=10)
        for name in (f"socket.{self.control}", f"socket.{self.control}.lock"):
            Path("/var/run/tgtd", name).unlink(missing_ok=True)


def qemu_write(argv_target: list[str], mib: int) -> float:
    """MiB/s of one sequential write of ``mib`` MiB, as qemu-io reports it."""
    argv = ["qemu-io", *argv_target, "-c", f"write -P 0x5a 0 {mib}M", "-c", "flush"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    match = _RATE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"qemu-io failed: {done.stdout}{done.stderr}")
    return float(match.group(1))


async def _wait(http: Any, headers: dict, path: str, status: str | None) -> None:
    while True:
        resp = await http.get(path, headers=headers)
        if status is None and resp.status_code == 404:
            return
        body = resp.json().get("volume", {})
        if body.get("status") == status:
            return
        if str(body.get("status", "")).startswith("error"):
            raise RuntimeError(f"volume went to {body['status']}")
        await asyncio.sleep(0.01)


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    tag = "b" + uuid.uuid4().hex[:8]
    tgtd = Tgtd(work / "tgtd.log")
    tgtd.start()
    signer, _ = signing_keys(work / "keys")
    settings = VolumeSettings(
        data_dir=work, host=f"api-{tag}", backend_host=f"bench-{tag}", rpc_topic=f"volume-{tag}",
        quota_gigabytes=-1, log_json=False,
    )  # fmt: skip
    agent_settings = AgentSettings(
        data_dir=work, host=f"bench-{tag}", agent_api_topic=f"volume-{tag}",
        agent_target_helper="tgt", agent_tgt_control_port=tgtd.control,
        agent_portal=f"127.0.0.1:{tgtd.port}", agent_name_prefix=f"{tag}-",
        agent_iqn_prefix=f"iqn.2010-10.org.stackling.{tag}", agent_reconcile_interval=3600,
        log_json=False,
    )  # fmt: skip
    app = create_app(settings)
    project = "bench"
    headers = {IDENTITY_HEADER: signer.sign(RequestContext(project_id=project, roles={"member"}))}
    base = f"/v3/{project}/volumes"
    results: dict[str, Any] = {}
    try:
        async with running_app(app) as http:
            agent = build(agent_settings)
            await agent.start()
            try:
                for size in (1, 10):
                    creates, deletes = [], []
                    for _ in range(args.repeat):
                        started = time.perf_counter()
                        resp = await http.post(
                            base, json={"volume": {"size": size}}, headers=headers
                        )
                        vid = resp.json()["volume"]["id"]
                        await _wait(http, headers, f"{base}/{vid}", "available")
                        creates.append(time.perf_counter() - started)
                        started = time.perf_counter()
                        await http.delete(f"{base}/{vid}", headers=headers)
                        await _wait(http, headers, f"{base}/{vid}", None)
                        deletes.append(time.perf_counter() - started)
                    results[f"create_{size}g_s"] = statistics.median(creates)
                    results[f"delete_{size}g_s"] = statistics.median(deletes)
                results |= await _throughput(app, http, headers, base, work, tag, args.write_mib)
            finally:
                await app.state.deps.tasks.drain()
                await agent.stop()
    finally:
        tgtd.stop()
        await _delete_queues(settings.amqp_url, f"volume-{tag}", f"volume.bench-{tag}")
    return results


async def _delete_queues(url: str, *topics: str) -> None:
    """The bench's RPC queues are durable and named for this run: remove them."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for topic in topics:
            await channel.queue_delete(queue_name(topic))


async def _throughput(
    app: Any, http: Any, headers: dict, base: str, work: Path, tag: str, mib: int
) -> dict[str, float]:
    size = max(1, (mib + 1023) // 1024)
    resp = await http.post(base, json={"volume": {"size": size}}, headers=headers)
    vid = resp.json()["volume"]["id"]
    await _wait(http, headers, f"{base}/{vid}", "available")
    rpc, topic = app.state.runtime.rpc, f"volume-{tag}"
    initiator = f"iqn.2010-10.org.stackling.{tag}:bench"
    connector = {"initiator": initiator, "host": "bench", "ip": "127.0.0.1"}
    with use_context(RequestContext(project_id="bench", roles=frozenset({"member"}))):
        await rpc.call(topic, "reserve", volume_id=vid, timeout=30)
        info = await rpc.call(
            topic, "initialize_connection", volume_id=vid, connector=connector, timeout=30
        )
        data = info["data"]
        secret = work / "chap"
        secret.write_text(data["auth_password"])
        opts = (
            f"driver=iscsi,transport=tcp,portal={data['target_portal']},"
            f"target={data['target_iqn']},lun={data['target_lun']},"
            f"user={data['auth_username']},password-secret=c0,initiator-name={initiator}"
        )
        target = ["--object", f"secret,id=c0,file={secret}", "--image-opts", opts]
        direct_file = work / "direct.img"
        direct_file.touch()
        os.truncate(direct_file, size << 30)
        try:
            iscsi = await asyncio.to_thread(qemu_write, target, mib)
            direct = await asyncio.to_thread(qemu_write, ["-f", "raw", str(direct_file)], mib)
        finally:
            direct_file.unlink(missing_ok=True)
            secret.unlink(missing_ok=True)
            await rpc.call(topic, "unreserve", volume_id=vid, timeout=30)
    await http.delete(f"{base}/{vid}", headers=headers)
    await _wait(http, headers, f"{base}/{vid}", None)
    return {
        "write_mib": mib,
        "iscsi_write_mib_s": iscsi,
        "direct_write_mib_s": direct,
        "iscsi_to_direct": iscsi / direct,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-mib", type=int, default=256)
    args = parser.parse_args()
    for tool in ("tgtd", "tgtadm", "qemu-io"):
        if shutil.which(tool) is None:
            print(f"volume_bench: {tool} is not installed", file=sys.stderr)
            sys.exit(1)
    work = Path(tempfile.mkdtemp(prefix="stackling-volbench-"))
    try:
        results = asyncio.run(run(args, work))
    except Exception as exc:
        print(f"volume_bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'measure':<34} {'value':>12}")
    for size in (1, 10):
        print(f"{f'create -> available, {size} GiB':<34} {results[f'create_{size}g_s']:>10.3f} s")
        print(f"{f'delete -> gone, {size} GiB':<34} {results[f'delete_{size}g_s']:>10.3f} s")
    mib = results["write_mib"]
    print(f"{f'seq write {mib} MiB via iSCSI':<34} {results['iscsi_write_mib_s']:>7.1f} MiB/s")
    print(f"{f'seq write {mib} MiB to file':<34} {results['direct_write_mib_s']:>7.1f} MiB/s")
    print(f"{'iSCSI / direct':<34} {results['iscsi_to_direct']:>12.2f}")
    print(json.dumps({"bench": "volume", **{k: round(v, 4) for k, v in results.items()}}))


if __name__ == "__main__":
    main()
