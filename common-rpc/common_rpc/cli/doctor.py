"""``stackling doctor``: check that this host can run the Stackling agents.

Runs the checks every installed service registers (entry-point group ``stackling.doctor``,
one entry a group: ``network = "network_svc.checks:CHECKS"``), prints a table (or JSON with
``--json``) and exits 1 when a check of a required group is MISSING. WARN never fails the
run. A group whose checks do not load is itself a MISSING result.

    $ stackling doctor --require network,volume
    $ stackling doctor --json | jq '.[] | select(.status != "OK")'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib import metadata
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .probe import CheckResult, Status

GROUP = "stackling.doctor"
Check = Callable[[], CheckResult]


def load_checks() -> dict[str, list[Check]]:
    """Each installed service's checks by group name, in the order the entry points give."""
    found: dict[str, list[Check]] = {}
    for entry_point in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        try:
            checks = list(entry_point.load())
        except Exception as exc:
            failed = CheckResult(
                f"{entry_point.name}-checks",
                entry_point.name,
                Status.MISSING,
                f"the checks of {entry_point.value} do not load: {exc}",
                "reinstall the service's package (make setup)",
            )
            checks = [lambda failed=failed: failed]
        found[entry_point.name] = checks
    return found


STYLES = {Status.OK: "green", Status.MISSING: "bold red", Status.WARN: "yellow"}


def parse_groups(text: str, known: Sequence[str]) -> frozenset[str]:
    """``"network,volume"`` -> that set; an empty text means every known group."""
    groups = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = groups - set(known)
    if unknown:
        raise typer.BadParameter(
            f"unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(known)}"
        )
    return groups or frozenset(known)


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
            help="Comma-separated groups that must pass (network, volume, compute, or any"
            " other installed service's); default: all.",
        ),
    ] = "",
) -> None:
    """Check this host for what the network, volume and compute agents need."""
    checks = load_checks()
    required = parse_groups(require, list(checks))
    results = [check() for group in checks.values() for check in group]
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
