"""Network benchmark: port create with an empty network and with 10,000 ports on it.

In one run, against network-api's default database (SQLite): port create p50/p99 (one
at a time) and ports/s (16 in flight) on an empty /16 network, then again once 10,000
ports exist on it; and the same figures for a bare FastAPI insert+select route on the
same kind of database (``bench.bare_insert``), the floor for any create. Load comes from
wrk (POST via a small Lua script). Prints a table, the ratios against their targets and
one JSON line. Exit status 0 whatever the ratios; 1 if a system failed to run.

    python -m bench.network_bench [--seconds 4] [--existing 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

from bench.gateway_bench import Processes, _wait_http, run_wrk
from common_rpc import RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair
from common_rpc.testing import free_port

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--existing", type=int, default=10_000)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stackling-netbench-"))
    procs = Processes()
    try:
        private, _ = generate_keypair(tmp / "keys")
        ports = {"network": free_port(), "bare": free_port()}
        env = dict(os.environ, STACKLING_DATA_DIR=str(tmp), STACKLING_LOG_LEVEL="WARNING")
        net_proc = procs.start(
            [str(BIN / "network-api")],
            dict(env, NETWORK_PORT=str(ports["network"])),
            tmp / "network.log",
        )
        bare_proc = procs.start(
            [sys.executable, "-m", "bench.bare_insert", str(ports["bare"]), str(tmp / "bare.db")],
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
        results["ports@10k"] = measure(ports_url, headers, port_script, opts.seconds)
        results["bare@again"] = measure(f"{bare_url}/items", {}, bare_script, opts.seconds)
    finally:
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)

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
    print(f"{'case':<14}{'p50 ms':>10}{'p99 ms':>10}{'creates/s':>12}")
    for name, cell in results.items():
        print(
            f"{name:<14}{cell['p50_ms']:>10.3f}{cell['p99_ms']:>10.3f}{cell['ports_per_s']:>12.0f}"
        )
    for name, ratio in ratios.items():
        verdict = "PASS" if ratio["pass"] else "FAIL"
        print(f"{name:<22} {ratio['value']:>8}  target {ratio['target']:<6} {verdict}")
    print("port wiring time (create -> ACTIVE): not measured yet (needs the network agent)")
    print(json.dumps({"cells": results, "ratios": ratios, "existing_ports": opts.existing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
