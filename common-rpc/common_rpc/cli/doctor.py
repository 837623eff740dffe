"""``stackling doctor``: check that this host can run the Stackling agents.

Runs every check in ``CHECKS``, prints a table (or JSON with ``--json``) and exits 1 when a
check of a required group is MISSING. WARN never fails the run.

    $ stackling doctor --require network,volume
    $ stackling doctor --json | jq '.[] | select(.status != "OK")'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import checks_compute as compute
from . import checks_network as network
from . import checks_volume as volume
from .probe import GROUPS, CheckResult, Status

CHECKS: list[Callable[[], CheckResult]] = [
    network.check_iproute2,
    network.check_netns,
    network.check_bridge,
    network.check_veth,
    network.check_vxlan,
    network.check_vlan,
    network.check_ip_forward,
    network.check_iptables,
    network.check_br_netfilter,
    network.check_physdev,
    network.check_dnsmasq,
    volume.check_iscsi_target,
    compute.check_libvirtd,
    compute.check_libvirt_answers,
    compute.check_qemu_system,
    compute.check_kvm,
    compute.check_qemu_img,
]

STYLES = {Status.OK: "green", Status.MISSING: "bold red", Status.WARN: "yellow"}


def parse_groups(text: str) -> frozenset[str]:
    """``"network,volume"`` -> that set; an empty text means every group."""
    groups = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = groups - set(GROUPS)
    if unknown:
        raise typer.BadParameter(
            f"unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}"
        )
    return groups or frozenset(GROUPS)


def failures(results: Sequence[CheckResult], required: frozenset[str]) -> list[CheckResult]:
    """The MISSING results that belong to a required group."""
    return [r for r in results if r.status is Status.MISSING and r.group in required]


def render_table(results: Sequence[CheckResult], required: frozenset[str]) -> Table:
    table = Table(title="Stackling host check")
    for column in ("check", "group", "status", "detail", "how to fix"):
        table.add_column(column, overflow="fold")
    for r in results:
        group = r.group if r.group in required else f"{r.group} (not required)"
        status = f"[{STYLES[r.status]}]{r.status}[/]"
        table.add_row(r.name, group, status, r.detail, r.fix)
    return table


def doctor(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of a table.")
    ] = False,
    require: Annotated[
        str,
        typer.Option(
            "--require",
            help=f"Comma-separated groups that must pass ({', '.join(GROUPS)}); default: all.",
        ),
    ] = "",
) -> None:
    """Check this host for what the network, volume and compute agents need."""
    required = parse_groups(require)
    results = [check() for check in CHECKS]
    failed = failures(results, required)
    if json_output:
        rows = [asdict(r) | {"required": r.group in required} for r in results]
        typer.echo(json.dumps(rows, indent=2))
    else:
        console = Console()
        console.print(render_table(results, required))
        groups = ", ".join(sorted(required))
        if failed:
            names = ", ".join(r.name for r in failed)
            console.print(f"[bold red]FAIL[/]: required ({groups}) checks missing: {names}")
        else:
            console.print(f"[green]PASS[/]: every required check ({groups}) is OK")
    raise typer.Exit(1 if failed else 0)
