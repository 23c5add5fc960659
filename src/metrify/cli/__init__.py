"""The ``metrify`` command: one module per command group.

:mod:`~metrify.cli.apps` holds the Typer app and its sub-apps, :mod:`~metrify.cli.common`
what every command shares, :mod:`~metrify.cli.options` the file-reading options; each
command module adds its commands to an app when imported, and imports nothing but those
three; :func:`main` imports only the module of the command asked for. Every command
opens the store through :mod:`metrify.pipeline.session` and hands data to the one
pipeline; errors a user can cause print one line, never a traceback.
"""

import atexit
import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import Final, NoReturn

import typer
from rich.markup import escape

#: the command modules, in the order ``metrify --help`` lists their top-level commands
#: (the groups' order is set in apps.py)
MODULES: Final = (
    "config",
    "ingest",
    "simulate",
    "quarantine",
    "stream",
    "mqtt",
    "serve",
    "users",
    "audit",
    "db",
    "readings",
    "anomalies",
    "lake",
    "energy",
    "batch",
    "warehouse",
    "grid",
    "patterns",
    "baseline",
    "forecast",
    "report",
    "backup",
)
#: the modules that declare each top-level command or group (a test checks this against
#: what the modules declare): a command imports only its own module, not the twenty
#: others (analytics, reports, the API), which was a fifth of a short command's start
COMMANDS: Final = {
    "config": ("config",),
    "ingest": ("ingest",),
    "simulate": ("simulate",),
    "demo": ("simulate",),
    "quarantine": ("quarantine",),
    "worker": ("stream",),
    "produce": ("stream",),
    "mqtt": ("mqtt",),
    "serve": ("serve",),
    "energy": ("energy",),
    "backup": ("backup",),
    "restore": ("backup",),
    "db": ("db",),
    "vee": ("readings",),
    "readings": ("readings",),
    "quality": ("readings",),
    "users": ("users",),
    "keys": ("users",),
    "audit": ("audit",),
    "anomalies": ("anomalies",),
    "lake": ("lake",),
    "batch": ("batch",),
    "warehouse": ("warehouse",),
    "grid": ("grid",),
    "patterns": ("patterns",),
    "baseline": ("baseline",),
    "forecast": ("forecast",),
    "report": ("report",),
}

__all__ = ["COMMANDS", "MODULES", "app", "load_commands", "main"]


def load_commands(args: Sequence[str] | None = None) -> typer.Typer:
    """The ``metrify`` app with the commands ``args`` (a command line without the program
    name) can reach: those of its first word's module, or every command when the first
    word names none (``--help``, nothing, a typo: Typer lists them or suggests one)."""
    first = args[0] if args else None
    names = COMMANDS.get(first, MODULES) if first is not None else MODULES
    for name in names:
        importlib.import_module(f"metrify.cli.{name}")
    from metrify.cli.apps import app as built

    return built


def __getattr__(name: str) -> typer.Typer:
    """``metrify.cli.app``: the app with every command (tests, docs, ``python -c``)."""
    if name == "app":
        return load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``metrify`` script."""
    try:
        load_commands(sys.argv[1:])()
    except SystemExit as done:
        _leave(done.code)
    except Exception as exc:  # last resort: one line, never a traceback
        from metrify.cli.common import err

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
