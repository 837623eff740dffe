"""``stackling hosts``: simulated hosts on this machine (network namespaces on a fabric).

    stackling hosts up 3                  # fabric, relay, host1..host3 with a network-agent
    stackling hosts up 3 --compute        # each also runs its own libvirtd and compute-agent
    stackling hosts up 3 --volume-host 1  # host1 also runs a volume-agent
    stackling hosts list
    stackling hosts exec 2 -- ip -br link # a command in host2's network namespace
    stackling hosts kill 2                # a host failure: its processes SIGKILLed, netns gone
    stackling hosts start 2               # host2 back, with the agents it had
    stackling hosts down                  # every host, the fabric and the relay

The agents get this shell's environment (the controller's API topics, intervals, ...)
with each host's own name, broker address, data directory and kernel name prefix over it
(``SimHost.agent_env``). What is up is kept in ``$STACKLING_DATA_DIR/hosts/fabric.json``.
See docs/multi-host.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from .fabric import MAX_HOSTS, Fabric, FabricConfig

app = typer.Typer(no_args_is_help=True, help="Simulated hosts on this machine (multi-host).")


def _data_dir() -> Path:
    return Path(os.environ.get("STACKLING_DATA_DIR") or "data").absolute()


def _state_file() -> Path:
    return _data_dir() / "hosts" / "fabric.json"


def _load() -> dict[str, Any]:
    path = _state_file()
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def _save(state: dict[str, Any]) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2, default=str) + "\n")


def _fabric(state: dict[str, Any]) -> Fabric:
    raw = dict(state.get("config") or {})
    if "state_dir" in raw:
        raw["state_dir"] = Path(raw["state_dir"])
    return Fabric(FabricConfig(**raw))


def _broker() -> str:
    """host:port of the controller's broker (STACKLING_AMQP_URL's), for the relay."""
    url = urlsplit(os.environ.get("STACKLING_AMQP_URL") or "amqp://127.0.0.1:5672/")
    return f"{url.hostname or '127.0.0.1'}:{url.port or 5672}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _start_host(fabric: Fabric, index: int, agents: list[str]) -> dict[str, int]:
    host = fabric.host_up(index)
    pids: dict[str, int] = {}
    if "compute-agent" in agents:
        fabric.start_libvirt(host)
    for binary in agents:
        pids[binary] = fabric.start_agent(host, binary).pid
    return pids


@app.command()
def up(
    count: Annotated[int, typer.Argument(help=f"how many hosts (1-{MAX_HOSTS})")] = 3,
    prefix: Annotated[str, typer.Option(help="the prefix of every name")] = "sk",
    underlay: Annotated[str, typer.Option(help="the fabric's subnet")] = "198.19.0.0/24",
    external: Annotated[str, typer.Option(help="physnet1's subnet")] = "203.0.113.0/24",
    compute: Annotated[bool, typer.Option(help="a libvirtd and compute-agent per host")] = False,
    volume_host: Annotated[int, typer.Option(help="the host running volume-agent (0: none)")] = 0,
) -> None:
    """Make COUNT hosts (idempotent: more hosts are added, running ones stay)."""
    if not 1 <= count <= MAX_HOSTS:
        raise typer.BadParameter(f"1-{MAX_HOSTS} hosts")
    state = _load()
    if not state:
        config = FabricConfig(
            prefix=prefix,
            underlay=underlay,
            external=external,
            state_dir=_data_dir() / "hosts",
            broker=_broker(),
        )
        state = {"config": asdict(config), "hosts": {}}
    fabric = _fabric(state)
    fabric.up()
    if not _alive(int(state.get("relay") or 0)):
        state["relay"] = fabric.start_relay().pid
    for index in range(1, count + 1):
        known = state["hosts"].get(str(index))
        if known and any(_alive(pid) for pid in known["agents"].values()):
            continue
        agents = ["network-agent"]
        if compute:
            agents.append("compute-agent")
        if volume_host == index:
            agents.append("volume-agent")
        state["hosts"][str(index)] = {"agents": _start_host(fabric, index, agents)}
        _save(state)
    _save(state)
    list_()


@app.command("list")
def list_() -> None:
    """The hosts, their addresses and agents."""
    state = _load()
    if not state:
        typer.echo("no simulated hosts (stackling hosts up N)")
        return
    fabric = _fabric(state)
    config = fabric.config
    typer.echo(f"controller {config.controller_ip} on {config.bridge}; outside {config.outside_ip}")
    present = {h.index for h in fabric.hosts()}
    for key, entry in sorted(state["hosts"].items()):
        host = config.host(int(key))
        agents = " ".join(
            f"{name}:{pid}{'' if _alive(pid) else '(dead)'}"
            for name, pid in entry["agents"].items()
        )
        where = host.netns if host.index in present else "(no namespace)"
        typer.echo(f"{host.name}  {host.underlay_ip}  {where}  prefix={host.prefix}  {agents}")


@app.command()
def kill(index: int) -> None:
    """A host failure: SIGKILL every process of the host, delete its namespace."""
    state = _load()
    killed = _fabric(state).kill_host(index)
    typer.echo(f"host {index}: killed {len(killed)} process(es), namespace deleted")


@app.command()
def start(index: int) -> None:
    """Bring a host back (a new namespace) with the agents it had."""
    state = _load()
    entry = state["hosts"][str(index)]
    entry["agents"] = _start_host(_fabric(state), index, list(entry["agents"]))
    _save(state)
    list_()


@app.command("exec", context_settings={"allow_extra_args": True})
def exec_(index: int, command: Annotated[list[str], typer.Argument()]) -> None:
    """Run COMMAND in the host's network namespace."""
    host = _fabric(_load()).config.host(index)
    raise typer.Exit(subprocess.call(host.in_host(command)))


@app.command()
def down() -> None:
    """Stop every host and remove the fabric and the relay."""
    state = _load()
    if not state:
        return
    fabric = _fabric(state)
    fabric.down()
    relay = int(state.get("relay") or 0)
    if relay and _alive(relay):
        os.kill(relay, signal.SIGTERM)
    _state_file().unlink(missing_ok=True)
    typer.echo("hosts down")
