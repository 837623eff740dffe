"""The operator's command line, ``stackling``.

Built-in commands live here; services add their own groups through ``stackling.cli`` entry
points (see ``plugins``), loaded when this module is imported.

    $ stackling doctor
    $ stackling audit network
    $ stackling --help        # also lists the installed services' command groups
"""

from __future__ import annotations

import typer

from .audit import audit
from .doctor import doctor
from .plugins import add_plugins


def build_app() -> typer.Typer:
    """A fresh ``stackling`` application with the built-in commands and every plugin."""
    app = typer.Typer(name="stackling", no_args_is_help=True, add_completion=False)

    @app.callback()
    def stackling() -> None:
        """Operate a Stackling cloud and the hosts it runs on."""

    app.command()(doctor)
    app.command()(audit)
    add_plugins(app)
    return app


app = build_app()
