"""Network benchmark: port create with an empty network and with 10,000 ports on it.

In one run, against network-api's default database (SQLite): port create p50/p99 (one
at a time) and ports/s (16 in flight) on an empty /16 network, then again once 10,000
ports exist on it; and the same figures for a bare FastAPI insert+select route on the
same kind of database (``bench.bare_insert``), the floor for any create. Load comes from
wrk (POST via a small Lua script). Then the time to wire a port: create, then bind it to
a host whose network-agent (real Linux drivers, a random name prefix) wires it until it
is ACTIVE; the agent's reconcile then clears the host. Then, on three simulated hosts
(``bench.multihost_network``): wiring on a host with no tunnel for the network yet vs
one that has it, and the FDB/ARP entries one port bind changes as the network spans
1, 2 or 3 hosts. Prints a table, the ratios against their targets and one JSON line.
Exit status 0 whatever the ratios; 1 if a system failed.

    python -m bench.network_bench [--seconds 4] [--existing 10000] [--db sqlite|postgresql]
                                  [--host-rounds 10 | --no-hosts]

``--db postgresql``: network-api and the bare route each on a fresh database of the local
PostgreSQL (dropped afterwards), the production setup, instead of SQLite files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import multihost_network
from bench.gateway_bench import Processes, _wait_http, run_wrk
from common_rpc import Broker, MessagingConfig, RequestContext, RpcClient, use_context
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair
from common_rpc.testing import free_port
from network_svc.drivers.linux import netlink
from network_svc.drivers.linux.sweep import sweep

BIN = Path(sys.executable).parent


def _post_script(path: Path, body: dict) -> Path:
    script = path / f"post-{len(list(path.glob('post-*')))}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def measure(url: str, headers: dict[str, str], script: Path, seconds: float) -> dict[str, float]:
    one = run_wrk(url, headers, 1, seconds, script=script)
    many = run_wrk(url, headers, 16, seconds, script=script)
    return {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"], "ports_per_s": many["rate"]}


async def _wire_times(
    net_url: str, headers: dict[str, str], host: str, ctx: RequestContext, count: int
) -> list[float]:
    """Seconds from POST /v2.0/ports to the binding answering ACTIVE, port by port.

    The binding is what compute does once it picked a host: network-api asks that host's
    agent to wire the port (firewall, bridge, DHCP hosts) and marks it ACTIVE.
    """
    broker = Broker(MessagingConfig(), name="network-bench")
    rpc = RpcClient(broker)
    times: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=net_url, headers=headers, timeout=60) as http:
            body = {"network": {"name": "wire"}}
            net = (await http.post("/v2.0/networks", json=body)).json()["network"]
            body = {"subnet": {"network_id": net["id"], "cidr": "10.99.0.0/24", "ip_version": 4}}
            (await http.post("/v2.0/subnets", json=body)).raise_for_status()
            created = []
            for _ in range(count):
                started = time.perf_counter()
                reply = await http.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
                port = reply.json()["port"]
                with use_context(ctx):
                    bound = await rpc.call(
                        "network", "update_port_binding", port_id=port["id"], host=host, timeout=30
                    )
                if bound["status"] != "ACTIVE":
                    raise RuntimeError(f"port not wired: {bound}")
                times.append(time.perf_counter() - started)
                created.append(port["id"])
            for port_id in created:
                (await http.delete(f"/v2.0/ports/{port_id}")).raise_for_status()
            (await http.delete(f"/v2.0/networks/{net['id']}")).raise_for_status()
    finally:
        await broker.close()
    return times


def _wait_agent(
    net_url: str, private: Path, host: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Until the agent's heartbeat lists it alive (its command queue exists by then)."""
    admin = IdentitySigner.from_file(private).sign(
        RequestContext(project_id="bench", roles=frozenset({"admin"})), ttl_s=600
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"network-agent exited: {log.read_text()[-2000:]}")
        agents = httpx.get(f"{net_url}/v2.0/agents", headers={IDENTITY_HEADER: admin}).json()
        if any(a["host"] == host and a["alive"] for a in agents["agents"]):
            return
        time.sleep(0.3)
    raise RuntimeError(f"network-agent on {host} never reported")


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg(statement: str, dsn: str = PG_ADMIN) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    return asyncio.run(run())


def _outbox_pending(db: str) -> int:
    """Rows in network-api's outbox: ``db`` is its SQLite file or its PostgreSQL DSN."""
    if db.startswith("postgresql://"):
        return int(_pg("SELECT count(*) FROM outbox", db))
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


def _wait_outbox_empty(db: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _outbox_pending(db) == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("the outbox did not drain")


def _leftovers(prefix: str) -> list[str]:
    return sorted(n for n in [*netlink.links(), *netlink.list_netns()] if n.startswith(prefix))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--existing", type=int, default=10_000)
    parser.add_argument("--wire-ports", type=int, default=20)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--host-rounds", type=int, default=10, help="networks wired, per host case")
    parser.add_argument("--no-hosts", action="store_true", help="skip the simulated hosts")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stackling-netbench-"))
    procs = Processes()
    prefix = ""
    databases: list[str] = []
    try:
        private, public = generate_keypair(tmp / "keys")
        ports = {"network": free_port(), "bare": free_port()}
        env = dict(os.environ, STACKLING_DATA_DIR=str(tmp), STACKLING_LOG_LEVEL="WARNING")
        net_env = dict(env, NETWORK_PORT=str(ports["network"]))
        net_env["NETWORK_DEFAULT_NETWORK_TYPE"] = "local"
        outbox_db, bare_db = str(tmp / "network.db"), f"sqlite+aiosqlite:///{tmp / 'bare.db'}"
        if opts.db == "postgresql":
            suffix = secrets.token_hex(4)
            for name in (f"netbench_net_{suffix}", f"netbench_bare_{suffix}"):
                _pg(f'CREATE DATABASE "{name}"')
                databases.append(name)
            net_env["NETWORK_DB_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1/{databases[0]}"
            outbox_db = f"postgresql://postgres@127.0.0.1/{databases[0]}"
            bare_db = f"postgresql+asyncpg://postgres@127.0.0.1/{databases[1]}"
        net_proc = procs.start(
            # One host: "local" networks need no VXLAN underlay for the wiring figure.
            [str(BIN / "network-api")],
            net_env,
            tmp / "network.log",
        )
        bare_proc = procs.start(
            [sys.executable, "-m", "bench.bare_insert", str(ports["bare"]), bare_db],
            env,
            tmp / "bare.log",
        )
        net_url = f"http://127.0.0.1:{ports['network']}"
        bare_url = f"http://127.0.0.1:{ports['bare']}"
        _wait_http(f"{net_url}/healthz", net_proc)
        _wait_http(f"{bare_url}/healthz", bare_proc)
        identity = IdentitySigner.from_file(private).sign(
            RequestContext(project_id="bench", roles=frozenset({"member", "reader"})), ttl_s=3600
        )
        headers = {IDENTITY_HEADER: identity}
        # 10,000 ports is over Neutron's default quota (500): the operator lifts it first.
        admin = IdentitySigner.from_file(private).sign(
            RequestContext(project_id="bench-admin", roles=frozenset({"admin"})), ttl_s=600
        )
        httpx.put(
            f"{net_url}/v2.0/quotas/bench",
            json={"quota": {"port": -1}},
            headers={IDENTITY_HEADER: admin},
        ).raise_for_status()
        with httpx.Client(base_url=net_url, headers=headers, timeout=120) as http:
            net_id = http.post("/v2.0/networks", json={"network": {"name": "bench"}}).json()[
                "network"
            ]["id"]
            http.post(
                "/v2.0/subnets",
                json={"subnet": {"network_id": net_id, "cidr": "10.128.0.0/16", "ip_version": 4}},
            ).raise_for_status()
        port_script = _post_script(tmp, {"port": {"network_id": net_id}})
        bare_script = _post_script(tmp, {"network_id": net_id})
        ports_url = f"{net_url}/v2.0/ports"
        for url, hdrs, script in (
            (ports_url, headers, port_script),
            (f"{bare_url}/items", {}, bare_script),
        ):
            run_wrk(url, hdrs, 2, 1, script=script)  # warm-up

        results = {
            "bare@empty": measure(f"{bare_url}/items", {}, bare_script, opts.seconds),
            "ports@empty": measure(ports_url, headers, port_script, opts.seconds),
        }
        with httpx.Client(base_url=net_url, headers=headers, timeout=300) as http:
            count = len(http.get("/v2.0/ports", params={"network_id": net_id}).json()["ports"])
            while count < opts.existing:
                batch = min(500, opts.existing - count)
                reply = http.post("/v2.0/ports", json={"ports": [{"network_id": net_id}] * batch})
                reply.raise_for_status()
                count += batch
        print(f"network holds {count} ports", file=sys.stderr)
        # The steady state of a cloud with 10,000 ports, not one still publishing their
        # 10,000 create events: let the outbox relay drain first.
        _wait_outbox_empty(outbox_db)
        results["ports@10k"] = measure(ports_url, headers, port_script, opts.seconds)
        results["bare@again"] = measure(f"{bare_url}/items", {}, bare_script, opts.seconds)

        # Wiring: a real network-agent (Linux drivers, a random name prefix) on this host.
        prefix = "b" + secrets.token_hex(2)
        host = f"netbench-{prefix}"
        agent_env = dict(
            env,
            NETWORK_HOST=host,
            NETWORK_AGENT_NAME_PREFIX=prefix,
            NETWORK_AGENT_STATE_DIR=str(tmp / "agent"),
            NETWORK_AGENT_LOCAL_IP="127.0.0.1",
            NETWORK_AGENT_RECONCILE_INTERVAL="1",
        )
        (tmp / "agent").mkdir(mode=0o755)
        agent_proc = procs.start([str(BIN / "network-agent")], agent_env, tmp / "agent.log")
        # A project of its own: its default group holds only these ports, so the wiring
        # time is not that of refilling a 10,000-address member set on every bind.
        ctx = RequestContext(project_id="bench-wire", roles=frozenset({"member", "reader"}))
        wire_headers = {IDENTITY_HEADER: IdentitySigner.from_file(private).sign(ctx, ttl_s=3600)}
        _wait_agent(net_url, private, host, agent_proc, tmp / "agent.log")
        try:
            wire = asyncio.run(_wire_times(net_url, wire_headers, host, ctx, opts.wire_ports))
        except Exception:
            print((tmp / "agent.log").read_text()[-3000:], file=sys.stderr)
            raise
        wire_ms = sorted(t * 1000 for t in wire)
        wiring = {
            "ports": len(wire_ms),
            "p50_ms": round(statistics.median(wire_ms), 3),
            "p99_ms": round(wire_ms[min(len(wire_ms) - 1, int(len(wire_ms) * 0.99))], 3),
        }
        # The agent's reconcile removes what the deleted ports and network left on the host.
        deadline = time.monotonic() + 20
        while _leftovers(prefix) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _leftovers(prefix)
        wiring["left_on_host"] = len(left)
        if left:
            print(f"left on the host: {left}", file=sys.stderr)
            print((tmp / "agent.log").read_text()[-3000:], file=sys.stderr)
        hosts: dict[str, Any] | None = None
        if not opts.no_hosts:
            hosts = multihost_network.run(tmp, private, public, rounds=opts.host_rounds)
    finally:
        procs.stop()
        if prefix:  # whatever the agent could not clean (it died, or the run failed)
            sweep(prefix, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        for name in databases:
            _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    bare_p50 = min(results["bare@empty"]["p50_ms"], results["bare@again"]["p50_ms"])
    ratios = {
        "p50_10k_over_empty": {
            "value": round(results["ports@10k"]["p50_ms"] / results["ports@empty"]["p50_ms"], 3),
            "target": "<=1.3",
            "pass": results["ports@10k"]["p50_ms"] <= 1.3 * results["ports@empty"]["p50_ms"],
        },
        "p50_10k_over_bare": {
            "value": round(results["ports@10k"]["p50_ms"] / bare_p50, 3),
            "target": "<=3.0",
            "pass": results["ports@10k"]["p50_ms"] <= 3.0 * bare_p50,
        },
    }
    print(f"database: {opts.db}")
    print(f"{'case':<14}{'p50 ms':>10}{'p99 ms':>10}{'creates/s':>12}")
    for name, cell in results.items():
        print(
            f"{name:<14}{cell['p50_ms']:>10.3f}{cell['p99_ms']:>10.3f}{cell['ports_per_s']:>12.0f}"
        )
    for name, ratio in ratios.items():
        verdict = "PASS" if ratio["pass"] else "FAIL"
        print(f"{name:<22} {ratio['value']:>8}  target {ratio['target']:<6} {verdict}")
    print(
        f"port wiring (create -> ACTIVE through network-agent), {wiring['ports']} ports: "
        f"p50 {wiring['p50_ms']:.1f} ms, p99 {wiring['p99_ms']:.1f} ms; "
        f"left on the host afterwards: {wiring['left_on_host']}"
    )
    if hosts is not None:
        cold, warm = hosts["wire_no_tunnel"], hosts["wire_with_tunnel"]
        print(f"three simulated hosts, {cold['n']} networks: port wiring (create -> ACTIVE)")
        print(f"{'':<28}{'p50 ms':>10}{'p99 ms':>10}")
        print(f"{'host without the tunnel':<28}{cold['p50_ms']:>10.1f}{cold['p99_ms']:>10.1f}")
        print(f"{'host with the tunnel':<28}{warm['p50_ms']:>10.1f}{warm['p99_ms']:>10.1f}")
        print("FDB/ARP entries changed on the hosts by one port bound on host1 (3 hosts up):")
        print(f"{'network served by':<28}{'entries':>10}{'hosts':>10}")
        for case, cell in hosts["forwarding_updates_per_port"].items():
            label = case.replace("_hosts_serving", " host(s)")
            print(f"{label:<28}{cell['entries_changed']:>10}{cell['hosts_changed']:>10}")
    out = {
        "db": opts.db,
        "cells": results,
        "ratios": ratios,
        "existing_ports": opts.existing,
        "wiring": wiring,
        "hosts": hosts,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
