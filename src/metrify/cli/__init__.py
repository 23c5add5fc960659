"""The ``metrify`` command: one module per command group.

:mod:`~metrify.cli.apps` holds the Typer app and its sub-apps, :mod:`~metrify.cli.common`
what every command shares, :mod:`~metrify.cli.options` the file-reading options; each
command module below adds its commands to an app when imported, and imports nothing but
those three. Every command opens the store through :mod:`metrify.pipeline.session` and
hands data to the one pipeline; errors a user can cause print one line, never a traceback.
"""

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

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
    except SystemExit as done:
        _leave(done.code)
    except Exception as exc:  # last resort: one line, never a traceback
        err.print(
            f"[red]error:[/red] {type(exc).__name__}: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        _leave(3)
    _leave(0)


def _leave(code: object) -> NoReturn:
    """End the process with ``code`` (``sys.exit``'s meaning) once the command is done.

    The interpreter's own teardown frees every object a command built one by one: after
    a load of a few million readings that took 0.2 s of a 9 s command, time in which
    nothing is left to do. So the exit handlers run (the embedded PostgreSQL's stop,
    the tracer's last export, logging's flush), the standard streams are flushed, and
    the process ends without the teardown. A thread still working (none is, once a
    command has returned) gets the ordinary exit, which waits for it."""
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    status = 0 if code is None else code if isinstance(code, int) else 1
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(not t.daemon for t in others):
        sys.exit(status)
    atexit._run_exitfuncs()
    for out in (sys.stdout, sys.stderr):
        # a closed pipe (``| head``): nothing more can be said
        with contextlib.suppress(OSError, ValueError):
            out.flush()
    os._exit(status)
