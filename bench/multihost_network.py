"""The multi-host figures of ``make bench-network``: three simulated hosts (network
namespaces on a fabric, each with its own network-agent; ``network_svc.hosts.fabric``)
and a network-api of their own (VXLAN networks, host3 the network node).

- wiring a port on a host that has no tunnel for the network yet (the first port of a
  new network there: bridge, VXLAN device, its FDB and ARP entries, firewall) against
  one on a host that has it (the second port): create -> ACTIVE, p50/p99;
- the FDB and ARP entries the hosts change for one port bound on host1, for a network
  that host1 alone serves, that host1 and host2 serve, and that all three serve: the
  count follows the hosts serving the network (and a host not serving it changes
  nothing), never the number of hosts. Counted by the agents themselves
  (``forwarding_updates`` in their heartbeat).

    results = run(tmp, private_key, public_key, rounds=10)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.gateway_bench import Processes, _wait_http
from common_rpc import Broker, MessagingConfig, RequestContext, RpcClient, use_context
from common_rpc.chassis.identity import IDENTITY_HEADER, IdentitySigner
from common_rpc.testing import free_port
from network_svc.drivers.linux.sweep import sweep
from network_svc.hosts.fabric import Fabric, FabricConfig

BIN = Path(sys.executable).parent


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
    }


class _Cloud:
    def __init__(self, url: str, topic: str, private: Path) -> None:
        signer = IdentitySigner.from_file(private)
        self.ctx = RequestContext(project_id="bench-hosts", roles=frozenset({"member"}))
        admin = RequestContext(project_id="bench-hosts", roles=frozenset({"admin"}))
        self.member = {IDENTITY_HEADER: signer.sign(self.ctx, ttl_s=3600)}
        self.admin = {IDENTITY_HEADER: signer.sign(admin, ttl_s=3600)}
        self.url, self.topic = url, topic
        self.http = httpx.AsyncClient(base_url=url, timeout=60)
        self.broker = Broker(MessagingConfig(), name="network-bench-hosts")
        self.rpc = RpcClient(self.broker)

    async def close(self) -> None:
        await self.http.aclose()
        await self.broker.close()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.http.post(path, json=body, headers=self.member)
        reply.raise_for_status()
        return dict(reply.json())

    async def network(self, dhcp: bool = True) -> str:
        net = (await self.post("/v2.0/networks", {"network": {"name": "hosts"}}))["network"]
        body = {"network_id": net["id"], "cidr": "10.98.0.0/24", "ip_version": 4}
        await self.post("/v2.0/subnets", {"subnet": {**body, "enable_dhcp": dhcp}})
        return str(net["id"])

    async def wire(self, network_id: str, host: str) -> float:
        """Seconds from the port's create to its binding answering ACTIVE."""
        started = time.perf_counter()
        port = (await self.post("/v2.0/ports", {"port": {"network_id": network_id}}))["port"]
        with use_context(self.ctx):
            bound = await self.rpc.call(
                self.topic, "update_port_binding", port_id=port["id"], host=host, timeout=30
            )
        if bound["status"] != "ACTIVE":
            raise RuntimeError(f"port not wired: {bound}")
        return time.perf_counter() - started

    async def agents(self) -> dict[str, dict[str, Any]]:
        reply = await self.http.get("/v2.0/agents", headers=self.admin)
        return {a["host"]: a for a in reply.json()["agents"]}

    async def forwarding(self, hosts: list[str]) -> dict[str, int]:
        """Each agent's FDB/ARP changes so far, once two heartbeats agree (casts landed)."""
        last: dict[str, int] | None = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(1.2)
            agents = await self.agents()
            now = {
                h: int(agents[h]["configurations"].get("forwarding_updates") or 0) for h in hosts
            }
            if now == last:
                return now
            last = now
        raise RuntimeError("the agents' counts did not settle")


async def _measure(cloud: _Cloud, hosts: list[str], rounds: int) -> dict[str, Any]:
    cold, warm = [], []
    for _ in range(rounds):
        network_id = await cloud.network()
        cold.append(await cloud.wire(network_id, hosts[0]))  # no bridge or tunnel there yet
        warm.append(await cloud.wire(network_id, hosts[0]))
    updates: dict[str, Any] = {}
    for serving in (1, 2, 3):
        network_id = await cloud.network(dhcp=False)  # no DHCP port: only the ports count
        for host in hosts[:serving]:
            await cloud.wire(network_id, host)
        before = await cloud.forwarding(hosts)
        await cloud.wire(network_id, hosts[0])  # the measured port, on host1
        after = await cloud.forwarding(hosts)
        per_host = {h: after[h] - before[h] for h in hosts}
        updates[f"{serving}_hosts_serving"] = {
            "entries_changed": sum(per_host.values()),
            "hosts_changed": sum(1 for v in per_host.values() if v),
            "per_host": per_host,
        }
    return {"wire_no_tunnel": _percentiles(cold), "wire_with_tunnel": _percentiles(warm)} | {
        "forwarding_updates_per_port": updates
    }


def run(tmp: Path, private: Path, public: Path, rounds: int = 10) -> dict[str, Any]:
    """Bring up the fabric, three hosts and a network-api; measure; remove them all."""
    prefix = "v" + secrets.token_hex(1)
    octet = 100 + secrets.randbelow(100)
    config = FabricConfig(
        prefix=prefix,
        underlay=f"198.19.{octet}.0/24",
        external=f"10.{octet}.251.0/24",
        host_name=f"netbench-{prefix}-host{{i}}",
        state_dir=tmp / "hosts",
    )
    fabric = Fabric(config)
    hosts = [config.host(i).name for i in (1, 2, 3)]
    topic = f"netbench-{prefix}-{secrets.token_hex(3)}"
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NETWORK_", "STACKLING_"))}
    api_env = dict(
        base,
        STACKLING_DATA_DIR=str(tmp / "hosts-api"),
        STACKLING_IDENTITY_PUBLIC_KEY_PATH=str(public),
        STACKLING_LOG_LEVEL="WARNING",
        NETWORK_PORT=str(port),
        NETWORK_RPC_TOPIC=topic,
        NETWORK_DEFAULT_NETWORK_TYPE="vxlan",
        NETWORK_NETWORK_NODES=json.dumps([hosts[2]]),
    )
    agent_env = dict(
        base,
        STACKLING_LOG_LEVEL="WARNING",
        NETWORK_AGENT_API_TOPIC=topic,
        NETWORK_AGENT_HEARTBEAT_INTERVAL="1",
        NETWORK_AGENT_RECONCILE_INTERVAL="3600",
    )
    (tmp / "hosts-api").mkdir(parents=True, exist_ok=True)
    procs = Processes()
    agents: list[subprocess.Popen[bytes]] = []
    try:
        api = procs.start([str(BIN / "network-api")], api_env, tmp / "hosts-api.log")
        _wait_http(f"http://127.0.0.1:{port}/healthz", api)
        fabric.up()
        fabric.start_relay()
        for i in (1, 2, 3):
            agents.append(fabric.start_agent(fabric.host_up(i), "network-agent", agent_env))

        async def measure() -> dict[str, Any]:
            cloud = _Cloud(f"http://127.0.0.1:{port}", topic, private)
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    agents_seen = await cloud.agents()
                    if all(agents_seen.get(h, {}).get("alive") for h in hosts):
                        break
                    await asyncio.sleep(0.5)
                else:
                    raise RuntimeError("the hosts' network-agents never reported")
                return await _measure(cloud, hosts, rounds)
            finally:
                await cloud.close()

        return asyncio.run(measure())
    finally:
        for proc in agents:
            proc.terminate()
        for proc in agents:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        procs.stop()
        fabric.down()
        sweep(prefix, tmp)
