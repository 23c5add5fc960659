"""What every ``metrify`` command shares: the consoles, one-line errors, settings, progress
bars, the ingest summary and time parsing.

Errors a user can cause (bad options, unreadable files, an unreachable database) print
one line and set the exit status through :func:`friendly`; they never print a traceback.
One place for these, so every command fails, reports and parses alike.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import orjson
import psycopg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from metrify.contracts.summary import Summary
from metrify.ops import tracing
from metrify.ops.logging import configure
from metrify.settings import Settings, get_settings
from metrify.settings.kafka import KafkaSettings
from metrify.sources.mapping import MappingError
from metrify.stores import database

__all__ = [
    "UserError",
    "audit_act",
    "cli_actor",
    "console",
    "err",
    "friendly",
    "kafka_settings",
    "load_settings",
    "parse_time",
    "piped_width",
    "print_summary",
    "progress_bar",
    "settings_error",
]


# emoji=False: user data such as an API key name "api:key:north" must print as typed,
# not with ":key:" turned into an emoji. Messages that carry user data (file names,
# column names, ids) are escaped before they meet the markup: "[/x].csv" is a file name,
# not a closing tag (rich would raise on it)
def piped_width(stream: Any, environ: Mapping[str, str]) -> int | None:
    """The width of stdout's tables when it is not a terminal (a log, a file, cron, CI).

    Rich falls back to 80 columns there, and a table of eight columns then cuts its
    first one to "2013-…": the dates were lost exactly where output is kept. 200 fits
    every table the commands print. ``COLUMNS`` still wins, and a terminal keeps its own
    width (None lets Rich measure it)."""
    if environ.get("COLUMNS"):
        return None
    try:
        if stream.isatty():
            return None
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        pass
    return PIPED_WIDTH


PIPED_WIDTH = 200
console = Console(stderr=False, emoji=False, width=piped_width(sys.stdout, os.environ))
err = Console(stderr=True, emoji=False)

P = ParamSpec("P")
R = TypeVar("R")


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn known failures into one-line messages and exit codes instead of tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (UserError, MappingError, database.DatabaseError, ValueError) as exc:
            # soft_wrap: one line, as promised, whatever the width (a log grep finds it)
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def load_settings() -> Settings:
    """The effective settings, or a one-line error naming the bad ``METRIFY_*`` value.

    Logging is configured here so a command stays quiet at the default level: only
    warnings reach the terminal unless ``METRIFY_LOG_LEVEL`` asks for more.
    """
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic ValidationError: bad METRIFY_* value
        raise UserError(f"invalid configuration: {settings_error(exc)}") from None
    configure(settings.log_level if settings.log_level != "INFO" else "WARNING")
    # off (no endpoint): nothing is loaded; on: this command's spans go to the endpoint
    tracing.configure(settings.tracing)
    return settings


def settings_error(exc: Exception) -> str:
    """A settings failure on one line: ``key: problem`` per bad key, never the bad value.

    Pydantic's own text spans lines and repeats each input, which for a rejected secret
    (a short JWT secret, a malformed database URL) would print the secret itself.
    """
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: "
            + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        )
    return str(exc)


def kafka_settings() -> KafkaSettings:
    """``METRIFY_KAFKA_*`` settings of a configured cluster, or a one-line ValueError."""
    from metrify.pipeline.worker import NOT_CONFIGURED, KafkaNotConfigured

    try:
        kafka = KafkaSettings()
    except Exception as exc:  # pydantic ValidationError: a bad METRIFY_KAFKA_* value
        raise ValueError(f"invalid Kafka configuration: {settings_error(exc)}") from None
    if not kafka.configured:
        raise KafkaNotConfigured(NOT_CONFIGURED)
    return kafka


def progress_bar(total: int | None, *, unit: str) -> Progress:
    """A transient bar on stderr, counting ``bytes`` or rows; silent when not a terminal."""
    columns: list[Any] = [TextColumn("[progress.description]{task.description}"), BarColumn()]
    columns += [DownloadColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def print_summary(summary: Summary, *, as_json: bool) -> None:
    """One load's counts as a table (or one JSON object), then its warnings and errors."""
    data = summary.as_dict()
    if as_json:
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
        return
    table = Table(title=f"{summary.kind}", show_header=False, box=None)
    for key in (
        "read",
        "accepted",
        "rejected",
        "quarantined",
        "inserted",
        "updated",
        "unchanged",
        "duplicates",
        "files",
        "lake_files",
    ):
        table.add_row(key, f"{data[key]:,}")
    table.add_row("seconds", f"{summary.seconds:.2f}")
    if data["rate_per_s"]:
        table.add_row("rate", f"{data['rate_per_s']:,} records/s")
    for seconds, meters in summary.intervals.items():
        table.add_row(
            "interval", f"{seconds} s detected for {meters:,} meter{'s' if meters != 1 else ''}"
        )
    console.print(table)
    if summary.reasons:
        reasons = Table(title="rejections by reason", show_header=True)
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, count in summary.reasons.most_common():
            reasons.add_row(Text(reason), f"{count:,}")
        console.print(reasons)
    for warning in summary.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    for error in summary.errors:
        err.print(f"[red]error:[/red] {escape(error)}", highlight=False, soft_wrap=True)


def parse_time(text: str, option: str) -> dt.datetime:
    """Parse an ISO time from the command line; naive times are UTC."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{option} {text}: expected an ISO time like 2013-01-01T00:30Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def cli_actor() -> str:
    """Who acts from the command line, for the audit log: ``cli:<OS user>``.

    The OS account is what the host authenticated; an ``--operator`` name is the user's
    own claim, so it goes into the row's details, never into its actor.
    """
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def audit_act(
    conn: psycopg.Connection[Any],
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record one operator act in the audit log, shaped as the API records the same act
    (same ``action``), with ``actor_kind="cli"``. Call it on the connection (and inside
    the transaction) of the change itself, so the act and its row commit together."""
    from metrify.stores import audit  # only the commands that change something load it

    audit.record(
        conn,
        audit.Event(
            actor=cli_actor(), actor_kind="cli", action=action, target=target, details=details
        ),
    )
