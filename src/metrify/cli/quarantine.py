"""``metrify quarantine``: the input the pipeline set aside, counted by reason, with the
latest raw rows.

The rows come from the same read model the API's ``/quarantine`` pages use
(:mod:`metrify.stores.reads.quarantine`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.table import Table

from metrify.cli.apps import app
from metrify.cli.common import UserError, console, friendly, load_settings
from metrify.contracts.records import CONTRACTS
from metrify.pipeline.session import open_session
from metrify.stores.reads import quarantine as held

__all__ = ["quarantine_cmd"]


@app.command("quarantine")
@friendly
def quarantine_cmd(
    kind: Annotated[str | None, typer.Option(help="only this kind (readings, grid, ...)")] = None,
    reason: Annotated[str | None, typer.Option(help="only reasons containing this text")] = None,
    source: Annotated[str | None, typer.Option(help="only this source, e.g. file:x.csv")] = None,
    limit: Annotated[int, typer.Option(min=0, help="rows to show")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Show quarantined input: counts per reason, then the latest rows with raw payloads."""
    # A kind no record has matched nothing and looked like "no quarantined rows": a typo
    # (--kind reading) must not read as a clean load.
    if kind and kind not in CONTRACTS:
        raise UserError(f"--kind {kind}: use one of {', '.join(CONTRACTS)}")
    settings = load_settings()
    # An empty option filters nothing, as it always has.
    where = held.Filter(kind=kind or None, reason_part=reason or None, source=source or None)
    with open_session(settings) as session:
        counts = held.counts(session.conn, where)
        rows = held.newest(session.conn, where, limit=limit)
    if as_json:
        for r in rows:
            record = {name: r[name] for name in ("id", "kind", "source", "line", "reason", "raw")}
            record["received_at"] = r["received_at"].isoformat()
            sys.stdout.write(orjson.dumps(record).decode() + "\n")
        return
    summary = Table(title="quarantine by reason")
    for column in ("kind", "reason", "count"):
        summary.add_column(column, justify="right" if column == "count" else "left")
    for k, why, n in counts:
        summary.add_row(str(k), str(why), f"{n:,}")
    console.print(summary)
    latest = Table(title=f"latest {len(rows)}")
    for column in ("id", "source", "line", "reason", "raw"):
        latest.add_column(column, overflow="fold")
    for r in rows:
        latest.add_row(
            str(r["id"]),
            str(r["source"]),
            "" if r["line"] is None else str(r["line"]),
            str(r["reason"]),
            str(r["raw"]),
        )
    console.print(latest)
