"""``metrify lake verify|repair``: the lake against the store, day by day.

The store (PostgreSQL) is the source of truth and the lake an export of every version
it committed (:mod:`metrify.pipeline.lakesync`). ``verify`` prints each day that differs
(row count or content checksum) and exits 1 if any does; ``repair`` rewrites those days,
and the ones the lake outbox still names, from the store, so that ``verify`` passes.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import orjson
import typer
from rich.markup import escape

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
from metrify.pipeline import lakesync
from metrify.pipeline.session import open_session
from metrify.stores.lake import Lake

__all__ = ["lake_repair", "lake_verify"]

KindOption = Annotated[
    str | None, typer.Option("--kind", help="readings, grid or weather (default: all three)")
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
        raise UserError("the lake is disabled (METRIFY_LAKE_ENABLED=false): nothing to compare")
    return Lake(url)


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
    with open_session(settings) as session:
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
    verdict = "differ" if differing else "equal"
    err.print(f"{checked:,} day(s) checked, {differing:,} {verdict}", highlight=False)
    if differing:
        raise typer.Exit(1)


@lake_app.command("repair")
@friendly
def lake_repair(
    kind: KindOption = None,
    first: FromOption = None,
    last: ToOption = None,
) -> None:
    """Rewrite from the store every day the lake holds differently (or the outbox still
    names), so that ``metrify lake verify`` passes."""
    kinds, since, until = _filters(kind, first, last)
    settings = load_settings()
    lake = _lake(settings.lake_enabled, settings.lake)
    with open_session(settings) as session:
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
