"""Gateway benchmark: the same authenticated, database-backed list GET sent three ways.

The GET is network-api's ``/v2.0/networks`` (its own SQLite database, filtered by the
caller's project), holding 20 networks of the project:

- direct: straight to the service, with a pre-signed identity header;
- minimal forwarder: through ``bench.min_forwarder`` (aiohttp, no checks): the floor;
- gateway: through ``stackling-gateway`` with an ``X-Auth-Token`` (token check, policy,
  identity signing, forwarding to a replica).

Every system runs in its own process on this machine, load comes from ``wrk`` (C, so the
load generator costs little), at concurrency 1 and 64, in interleaved rounds so that noise
hits every system alike. Also measured: token issue (``POST /identity/v3/auth/tokens``,
argon2id password check) p50. Prints a table, the ratios against their targets, and one
JSON line. Exit status 0 whatever the ratios; 1 if a system failed to run.

    python -m bench.gateway_bench [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common_rpc import RequestContext
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner, generate_keypair
from common_rpc.testing import free_port

BIN = Path(sys.executable).parent
PASSWORD = "bench-admin-password"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not match:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def run_wrk(
    url: str,
    headers: dict[str, str],
    conns: int,
    seconds: float,
    *,
    script: Path | None = None,
) -> dict[str, float]:
    args = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{max(int(seconds), 1)}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses\n{out}")
    return {"rate": rate, "p50_ms": p50, "p99_ms": p99}


class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell")
    parser.add_argument("--tokens", type=int, default=20, help="token issues to time")
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="stackling-gwbench-"))
    procs = Processes()
    try:
        private, _public = generate_keypair(tmp / "keys")
        ports = {name: free_port() for name in ("target", "gateway", "forwarder")}
        base_env = dict(os.environ, STACKLING_DATA_DIR=str(tmp), STACKLING_LOG_LEVEL="WARNING")
        target_url = f"http://127.0.0.1:{ports['target']}"
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        target = procs.start(
            [str(BIN / "network-api")],
            dict(base_env, NETWORK_PORT=str(ports["target"])),
            tmp / "network.log",
        )
        gateway_env = dict(
            base_env,
            GATEWAY_PORT=str(ports["gateway"]),
            GATEWAY_PUBLIC_URL=gateway_url,
            GATEWAY_NETWORK_URLS=json.dumps([target_url]),
            GATEWAY_ADMIN_PASSWORD=PASSWORD,
        )
        gateway = procs.start([str(BIN / "stackling-gateway")], gateway_env, tmp / "gateway.log")
        _wait_http(f"{target_url}/healthz", target)
        _wait_http(f"{gateway_url}/healthz", gateway)

        auth = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"name": "Default"},
                            "password": PASSWORD,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
            }
        }
        issue_ms: list[float] = []
        with httpx.Client(base_url=gateway_url, timeout=30) as http:
            for _ in range(opts.tokens + 1):
                started = time.perf_counter()
                reply = http.post("/identity/v3/auth/tokens", json=auth)
                issue_ms.append((time.perf_counter() - started) * 1000)
                reply.raise_for_status()
        issue_ms = issue_ms[1:]  # the first one warms the connection and the hasher
        token = reply.headers["X-Subject-Token"]
        project_id = reply.json()["token"]["project"]["id"]
        identity = IdentitySigner.from_file(private).sign(
            RequestContext(project_id=project_id, roles=frozenset({"admin", "member", "reader"})),
            ttl_s=3600,
        )
        with httpx.Client(base_url=target_url, headers={IDENTITY_HEADER: identity}) as http:
            for i in range(20):
                http.post(
                    "/v2.0/networks", json={"network": {"name": f"net{i}"}}
                ).raise_for_status()

        forwarder = procs.start(
            [
                sys.executable,
                "-m",
                "bench.min_forwarder",
                str(ports["forwarder"]),
                target_url,
                identity,
            ],
            base_env,
            tmp / "forwarder.log",
        )
        forwarder_url = f"http://127.0.0.1:{ports['forwarder']}"
        _wait_http(f"{forwarder_url}/healthz", forwarder)

        systems = {
            "direct": (f"{target_url}/v2.0/networks", {IDENTITY_HEADER: identity}),
            "forwarder": (f"{forwarder_url}/v2.0/networks", {}),
            "gateway": (f"{gateway_url}/network/v2.0/networks", {"X-Auth-Token": token}),
        }
        for name, (url, headers) in systems.items():  # the same answer three ways
            assert len(httpx.get(url, headers=headers).json()["networks"]) == 20, name
            run_wrk(url, headers, 4, 1.0)  # warm-up

        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for round_no in range(opts.rounds):
            order = list(systems) if round_no % 2 == 0 else list(reversed(systems))
            for conns in (1, 64):
                for name in order:
                    url, headers = systems[name]
                    results.setdefault((name, conns), []).append(
                        run_wrk(url, headers, conns, opts.seconds)
                    )
            print(f"round {round_no + 1}/{opts.rounds} done", file=sys.stderr)
    finally:
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    cells = {
        f"{name}@c{conns}": {
            "rate": round(statistics.median(r["rate"] for r in runs), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 3),
        }
        for (name, conns), runs in results.items()
    }
    # What each path adds, round by round against the direct p50 of the same round (the
    # machine drifts between rounds more than a proxy adds), then the median of those.
    added_gateway, added_forwarder = (
        statistics.median(
            hop["p50_ms"] - direct["p50_ms"]
            for hop, direct in zip(results[(name, 1)], results[("direct", 1)], strict=True)
        )
        for name in ("gateway", "forwarder")
    )
    ratios = {
        "gateway_added_p50_over_forwarder_added_c1": {
            "value": round(added_gateway / added_forwarder, 3) if added_forwarder > 0 else None,
            "target": "<=1.25",
        },
        "gateway_rate_over_direct_c64": {
            "value": round(cells["gateway@c64"]["rate"] / cells["direct@c64"]["rate"], 3),
            "target": ">=0.60",
        },
        "token_issue_p50_ms": {"value": round(statistics.median(issue_ms), 1), "target": "<70"},
    }
    checks = {
        "gateway_added_p50_over_forwarder_added_c1": lambda v: v is not None and v <= 1.25,
        "gateway_rate_over_direct_c64": lambda v: v >= 0.60,
        "token_issue_p50_ms": lambda v: v < 70,
    }
    for name, ratio in ratios.items():
        ratio["pass"] = checks[name](ratio["value"])

    print(f"{'system':<12}{'conc':>6}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for conns in (1, 64):
        for name in systems:
            cell = cells[f"{name}@c{conns}"]
            print(
                f"{name:<12}{conns:>6}{cell['rate']:>10.0f}{cell['p50_ms']:>10.3f}{cell['p99_ms']:>10.3f}"
            )
    print(
        f"p50 added at c=1: gateway {added_gateway:.3f} ms,"
        f" minimal forwarder {added_forwarder:.3f} ms"
    )
    for name, ratio in ratios.items():
        verdict = "PASS" if ratio["pass"] else "FAIL"
        print(f"{name:<45} {ratio['value']!s:>8}  target {ratio['target']:<7} {verdict}")
    print(
        json.dumps(
            {"cells": cells, "ratios": ratios, "token_issue_ms": [round(x, 1) for x in issue_ms]}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
