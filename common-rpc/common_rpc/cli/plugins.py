"""Subcommand groups that services add to ``stackling`` through entry points.

A service declares, in its ``pyproject.toml``::

    [project.entry-points."stackling.cli"]
    network = "network_svc.cli:app"      # a typer.Typer -> `stackling network ...`

A plugin that fails to load is skipped with a warning on stderr.
"""

from __future__ import annotations

from importlib import metadata

import typer

GROUP = "stackling.cli"


def add_plugins(app: typer.Typer) -> None:
    """Add each ``stackling.cli`` entry point's Typer to ``app`` under the entry point's name."""
    for entry_point in metadata.entry_points(group=GROUP):
        try:
            sub = entry_point.load()
            if not isinstance(sub, typer.Typer):
                raise TypeError(f"{entry_point.value} is a {type(sub).__name__}, not a typer.Typer")
        except Exception as exc:
            typer.echo(f"warning: CLI plugin {entry_point.name!r} skipped: {exc}", err=True)
            continue
        app.add_typer(sub, name=entry_point.name)
