"""``metrify lake ...``: the lake's Delta tables against the store, and their upkeep.

The store (PostgreSQL) is the source of truth and the lake an export of every version
it committed (:mod:`metrify.pipeline.lakesync`). ``verify`` prints each day that differs
(row count or content checksum) and exits 1 if any does; ``repair`` replaces those days,
and the ones the lake outbox still names, from the store, so that ``verify`` passes.
``compact`` and ``vacuum`` keep the tables small (:mod:`metrify.pipeline.lake_upkeep`);
``history`` lists a table's versions and ``days --as-of`` reads the table as it was at
one of them (time travel); ``convert`` moves a lake of the old plain-Parquet layout into
Delta tables once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from typing import Annotated

import orjson
import typer
from deltalake.exceptions import DeltaError
from rich.markup import escape
from rich.progress import Progress, TaskID

from metrify.cli.apps import lake_app
from metrify.cli.common import (
    UserError,
    audit_act,
    console,
    err,
    friendly,
    load_settings,
    progress_bar,
)
from metrify.pipeline import lake_upkeep, lakesync
from metrify.pipeline.session import open_session
from metrify.settings.masking import mask_url
from metrify.stores.lake import Lake

__all__ = [
    "lake_compact",
    "lake_convert",
    "lake_days",
    "lake_history",
    "lake_repair",
    "lake_vacuum",
    "lake_verify",
]

KindOption = Annotated[
    str | None, typer.Option("--kind", help="readings, grid, weather or events (default: all four)")
]
FromOption = Annotated[
    str | None, typer.Option("--from", help="first UTC day, e.g. 2013-01-01 (default: the first)")
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="last UTC day, inclusive (default: the last)")
]


def _filters(
    kind: str | None, first: str | None, last: str | None
) -> tuple[list[str], dt.date | None, dt.date | None]:
    """The kinds and day range asked for, or a one-line error (exit 2)."""
    if kind is not None and kind not in lakesync.KINDS:
        raise UserError(f"--kind {kind}: expected one of {', '.join(lakesync.KINDS)}")
    days = []
    for option, text in (("--from", first), ("--to", last)):
        try:
            days.append(None if text is None else dt.date.fromisoformat(text))
        except ValueError:
            raise UserError(f"{option} {text}: expected a day like 2013-01-01") from None
    since, until = days
    if since is not None and until is not None and since > until:
        raise UserError(f"--from {since} is after --to {until}")
    return [kind] if kind else list(lakesync.KINDS), since, until


def _line(state: lakesync.DayState) -> str:
    pending = " (pending in the outbox)" if state.pending else ""
    return (
        f"{state.kind} {state.day}: store {state.store_rows:,} rows ({state.store_sum}),"
        f" lake {state.lake_rows:,} rows ({state.lake_sum}){pending}"
    )


def _lake(enabled: bool, url: str) -> Lake:
    if not enabled:
        raise UserError("the lake is disabled (METRIFY_LAKE_ENABLED=false): nothing to do")
    return Lake(url)


def _settings_lake() -> Lake:
    settings = load_settings()
    return _lake(settings.lake_enabled, settings.lake)


@contextlib.contextmanager
def _storage(lake: Lake) -> Iterator[None]:
    """A storage failure (bucket unreachable, a table damaged) as one line, exit 1."""
    try:
        yield
    except (DeltaError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(
            f"[red]error:[/red] lake {escape(mask_url(lake.url))}: {escape(first)}",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _emit(as_json: bool, data: dict[str, object], text: str) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
    else:
        console.print(escape(text), highlight=False)


@lake_app.command("verify")
@friendly
def lake_verify(
    kind: KindOption = None,
    first: FromOption = None,
    last: ToOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Compare the lake with the store per day; print each day that differs.

    Exit 0 when every day is equal, 1 when one differs, 2 on bad input."""
    kinds, since, until = _filters(kind, first, last)
    settings = load_settings()
    lake = _lake(settings.lake_enabled, settings.lake)
    checked = differing = 0
    with open_session(settings) as session, _storage(lake):
        for state in lakesync.compare(
            session.conn, lake, lakesync.plan(session.conn, lake, kinds, since, until)
        ):
            checked += 1
            if state.equal:
                continue
            differing += 1
            if as_json:
                sys.stdout.write(orjson.dumps(state.as_dict()).decode() + "\n")
            else:
                console.print(escape(_line(state)), highlight=False)
    verdict = f"{differing:,} differ" if differing else "all equal"
    err.print(f"{checked:,} day(s) checked, {verdict}", highlight=False)
    if differing:
        raise typer.Exit(1)


@lake_app.command("repair")
@friendly
def lake_repair(
    kind: KindOption = None,
    first: FromOption = None,
    last: ToOption = None,
) -> None:
    """Replace from the store every day the lake holds differently.

    Also the days the outbox still names; ``metrify lake verify`` passes afterwards."""
    kinds, since, until = _filters(kind, first, last)
    settings = load_settings()
    lake = _lake(settings.lake_enabled, settings.lake)
    with open_session(settings) as session, _storage(lake):
        days = lakesync.plan(session.conn, lake, kinds, since, until)
        with progress_bar(len(days), unit="days") as bar:
            task = bar.add_task("lake repair", total=len(days))

            def step(state: lakesync.DayState) -> None:
                bar.advance(task)
                if not state.equal:
                    console.print(escape("rewrote " + _line(state)), highlight=False)

            rewritten = lakesync.repair(session.conn, lake, days, step)
        audit_act(
            session.conn,
            "lake.repair",
            ",".join(kinds),
            {"from": since, "to": until, "checked": len(days), "rewritten": rewritten},
        )
    err.print(f"{len(days):,} day(s) checked, {rewritten:,} rewritten", highlight=False)


def _advance(bar: Progress, task: TaskID) -> Callable[..., None]:
    """A progress callback that moves ``task`` one step, whatever it is told."""

    def step(*_: object) -> None:
        bar.advance(task)

    return step


@lake_app.command("compact")
@friendly
def lake_compact(
    kind: KindOption = None,
    first: FromOption = None,
    last: ToOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per kind")] = False,
) -> None:
    """Merge each day's small files into few large ones; print files before and after.

    One commit per day; readers see the same rows throughout."""
    kinds, since, until = _filters(kind, first, last)
    lake = _settings_lake()
    with _storage(lake):
        for name in kinds:
            days = [
                d
                for d in lake.days(name)
                if (since is None or d >= since) and (until is None or d <= until)
            ]
            with progress_bar(len(days), unit="days") as bar:
                task = bar.add_task(f"compact {name}", total=len(days))
                result = lake_upkeep.compact(lake, name, days, _advance(bar, task))
            _emit(
                as_json,
                result.as_dict(),
                f"{name}: {result.days_checked:,} day(s), {len(result.days):,} compacted,"
                f" files {result.files_before:,} -> {result.files_after:,}"
                f" in {result.seconds:.1f} s",
            )


@lake_app.command("vacuum")
@friendly
def lake_vacuum(
    kind: KindOption = None,
    retain_hours: Annotated[
        float,
        typer.Option(
            "--retain-hours",
            help="keep every file a version of the last N hours reads (time travel reach)",
        ),
    ] = lake_upkeep.DEFAULT_RETAIN_HOURS,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be deleted, delete nothing")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help=f"allow a retention below {lake_upkeep.MIN_RETAIN_HOURS} h"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per kind")] = False,
) -> None:
    """Delete the data files no version within the retention reads.

    Those are files replaced by compaction or repair, or left by a failed write."""
    kinds = _filters(kind, None, None)[0]
    settings = load_settings()
    lake = _lake(settings.lake_enabled, settings.lake)
    deleted: dict[str, int] = {}
    with _storage(lake):
        for name in kinds:
            files = lake_upkeep.vacuum(lake, name, retain_hours, dry_run=dry_run, force=force)
            deleted[name] = len(files)
            verb = "would delete" if dry_run else "deleted"
            _emit(
                as_json,
                {
                    "kind": name,
                    "dry_run": dry_run,
                    "retain_hours": retain_hours,
                    "files": len(files),
                    "paths": files,
                },
                f"{name}: {verb} {len(files):,} file(s) (retention {retain_hours:g} h)",
            )
    if not dry_run:  # deleting files ends time travel before them: an operator's act
        with open_session(settings) as session:
            audit_act(
                session.conn,
                "lake.vacuum",
                ",".join(kinds),
                {"retain_hours": retain_hours, "forced": force, "deleted": deleted},
            )


@lake_app.command("history")
@friendly
def lake_history(
    kind: KindOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="newest N")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per version")] = False,
) -> None:
    """List each table's versions, newest first: number, time (UTC), operation."""
    kinds = _filters(kind, None, None)[0]
    lake = _settings_lake()
    with _storage(lake):
        for name in kinds:
            for commit in lake.history(name, limit):
                data = {"kind": name, **commit.as_dict()}
                rows = commit.metrics.get("num_added_rows", commit.metrics.get("num_output_rows"))
                extra = f", {rows} row(s) written" if rows is not None else ""
                _emit(
                    as_json,
                    data,
                    f"{name} v{commit.version} {commit.timestamp:%Y-%m-%d %H:%M:%S}Z"
                    f" {commit.operation}{extra}",
                )


def _as_of(text: str | None) -> int | dt.datetime | None:
    """A version number or an ISO time (UTC if it names no zone), or a one-line error."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"--as-of {text}: expected a version number or a time like 2026-12-06T02:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@lake_app.command("days")
@friendly
def lake_days(
    kind: KindOption = None,
    first: FromOption = None,
    last: ToOption = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="a version (see `lake history`) or a UTC time"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per day")] = False,
) -> None:
    """Each day's rows and checksum, now or as of an earlier version (time travel).

    The checksum is the one `verify` compares."""
    kinds, since, until = _filters(kind, first, last)
    version = _as_of(as_of)
    lake = _settings_lake()
    with _storage(lake):
        for name in kinds:
            table = lake.table(name, version)
            if table is None:
                continue
            at = table.version()
            for day in lake.days(name, at):
                if (since is not None and day < since) or (until is not None and day > until):
                    continue
                held = lake.read_day(name, day, at)
                rows = 0 if held is None else held.height
                digest = lakesync.checksum(lakesync.KINDS[name], held)
                _emit(
                    as_json,
                    {
                        "kind": name,
                        "version": at,
                        "day": day.isoformat(),
                        "rows": rows,
                        "checksum": digest,
                    },
                    f"{name} v{at} {day}: {rows:,} rows ({digest})",
                )


@lake_app.command("convert")
@friendly
def lake_convert(kind: KindOption = None) -> None:
    """Move a lake of an earlier release (plain Parquet) into Delta tables, once.

    Day by day; safe to run again if cut short."""
    kinds = _filters(kind, None, None)[0]
    settings = load_settings()
    lake = _lake(settings.lake_enabled, settings.lake)
    converted: dict[str, int] = {}
    with _storage(lake):
        for name in kinds:
            days = lake_upkeep.legacy_days(lake, name)
            if not days:
                err.print(f"{name}: nothing in the old layout", highlight=False)
                continue
            with progress_bar(len(days), unit="days") as bar:
                task = bar.add_task(f"convert {name}", total=len(days))
                moved = lake_upkeep.convert(lake, name, _advance(bar, task))
            converted[name] = moved
            console.print(
                f"{name}: {len(days):,} day(s), {moved:,} rows moved into the Delta table",
                highlight=False,
            )
    if converted:
        with open_session(settings) as session:
            audit_act(session.conn, "lake.convert", ",".join(converted), {"rows": converted})
