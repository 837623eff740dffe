"""``stackling audit``: ask each service whether its hosts match its database.

Prints every finding (or JSON with ``--json``); exits 0 when every service answered with
zero findings, 1 when there are findings, 2 when a service did not answer.

    $ stackling audit                  # network, volume and compute
    $ stackling audit network --json
    $ STACKLING_AMQP_URL=amqp://... stackling audit volume

The services are reached over the broker in ``STACKLING_AMQP_URL`` (and
``STACKLING_AMQP_TOPIC_URLS``), the same settings the services read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..audit import SERVICES, AuditReport, request_audit
from ..broker import Broker
from ..chassis.settings import ServiceSettings
from ..errors import RpcError
from ..rpc import RpcClient


class AuditSettings(ServiceSettings):
    """Only the broker settings matter here; they come from ``STACKLING_*``."""

    service_name = "audit"
    shared_settings_only = True


async def collect(
    services: list[str], *, timeout: float, settings: ServiceSettings | None = None
) -> tuple[list[AuditReport], dict[str, str]]:
    """Every service's report, and the error of each that did not answer."""
    settings = settings or AuditSettings()
    broker = Broker(settings.messaging(), name="stackling-audit")
    rpc = RpcClient(broker)
    reports: list[AuditReport] = []
    errors: dict[str, str] = {}
    try:
        for service in services:
            try:
                reports.append(await request_audit(rpc, service, timeout=timeout))
            except RpcError as exc:
                errors[service] = str(exc)
    finally:
        await broker.close()
    return reports, errors


def _print(reports: list[AuditReport], errors: dict[str, str]) -> None:
    console = Console()
    for report in reports:
        checked = ", ".join(f"{n} {what}" for what, n in sorted(report.checked.items()))
        verdict = (
            "[green]clean[/]" if report.clean else f"[red]{len(report.findings)} finding(s)[/]"
        )
        console.print(f"[bold]{report.service}[/]: {verdict} (checked {checked or 'nothing'})")
        if report.findings:
            table = Table("kind", "resource", "id", "host", "detail")
            for f in report.findings:
                table.add_row(f.kind, f.resource, f.id, f.host or "", f.detail)
            console.print(table)
    for service, error in errors.items():
        console.print(f"[bold]{service}[/]: [red]did not answer[/] ({error})")


def audit(
    services: Annotated[
        list[str] | None, typer.Argument(help=f"services to audit (default: {' '.join(SERVICES)})")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each service")] = 60.0,
) -> None:
    """Compare each service's database with its hosts; list orphans, gaps, stuck resources."""
    reports, errors = asyncio.run(collect(list(services or SERVICES), timeout=timeout))
    if as_json:
        out = {
            "reports": [r.to_wire() for r in reports],
            "unanswered": errors,
            "findings": sum(len(r.findings) for r in reports),
        }
        typer.echo(json.dumps(out))
    else:
        _print(reports, errors)
    if errors:
        raise typer.Exit(2)
    if any(not r.clean for r in reports):
        raise typer.Exit(1)
