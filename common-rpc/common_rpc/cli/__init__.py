"""The ``stackling`` command line (typer + rich); the entry point is ``main.app``.

$ stackling doctor --json
"""
