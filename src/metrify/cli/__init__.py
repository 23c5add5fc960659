"""The ``metrify`` command: one module per command group.

:mod:`~metrify.cli.apps` holds the Typer app and its sub-apps, :mod:`~metrify.cli.common`
what every command shares, :mod:`~metrify.cli.options` the file-reading options; each
command module below adds its commands to an app when imported, and imports nothing but
those three. Every command opens the store through :mod:`metrify.pipeline.session` and
hands data to the one pipeline; errors a user can cause print one line, never a traceback.
"""

import sys

from rich.markup import escape

# Typer lists top-level commands in the order they are declared: these imports keep
# ``metrify --help`` in the order config, ingest, simulate, demo, quarantine, worker,
# produce, serve (the groups' order, ``audit`` among them, is set in apps.py).
# isort: off
from metrify.cli import config as config
from metrify.cli import ingest as ingest
from metrify.cli import simulate as simulate
from metrify.cli import quarantine as quarantine
from metrify.cli import stream as stream
from metrify.cli import mqtt as mqtt
from metrify.cli import serve as serve
from metrify.cli import users as users
from metrify.cli import audit as audit
from metrify.cli import db as db
from metrify.cli import readings as readings
from metrify.cli import anomalies as anomalies
from metrify.cli import lake as lake
from metrify.cli import energy as energy
from metrify.cli import batch as batch
from metrify.cli import warehouse as warehouse
from metrify.cli import grid as grid
from metrify.cli import patterns as patterns
from metrify.cli import baseline as baseline
from metrify.cli import forecast as forecast
from metrify.cli import report as report
from metrify.cli import backup as backup

# isort: on
from metrify.cli.apps import app
from metrify.cli.common import err

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``metrify`` script."""
    try:
        app()
    except Exception as exc:  # last resort: one line, never a traceback
        err.print(
            f"[red]error:[/red] {type(exc).__name__}: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(3)
