"""``metrify quarantine``: the input the pipeline set aside, counted by reason, with the
latest raw rows.

Its two queries are still written here; they are the ones to replace with a read model
from :mod:`metrify.stores`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.table import Table

from metrify.cli.apps import app
from metrify.cli.common import console, friendly, load_settings
from metrify.pipeline.session import open_session

__all__ = ["quarantine_cmd"]


@app.command("quarantine")
@friendly
def quarantine_cmd(
    kind: Annotated[str | None, typer.Option(help="only this kind (readings, grid, ...)")] = None,
    reason: Annotated[str | None, typer.Option(help="only reasons containing this text")] = None,
    source: Annotated[str | None, typer.Option(help="only this source, e.g. file:x.csv")] = None,
    limit: Annotated[int, typer.Option(help="rows to show")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Show quarantined input: counts per reason, then the latest rows with raw payloads."""
    settings = load_settings()
    where, params = ["true"], []
    if kind:
        where.append("kind = %s")
        params.append(kind)
    if reason:
        where.append("reason ILIKE %s")
        params.append(f"%{reason}%")
    if source:
        where.append("source = %s")
        params.append(source)
    clause = " AND ".join(where)
    with open_session(settings) as session:
        counts = session.conn.execute(
            f"SELECT kind, reason, count(*) FROM quarantine WHERE {clause}"
            " GROUP BY 1, 2 ORDER BY 3 DESC",
            params,
        ).fetchall()
        rows = session.conn.execute(
            f"SELECT id, kind, source, line, reason, raw, received_at FROM quarantine"
            f" WHERE {clause} ORDER BY id DESC LIMIT %s",
            [*params, limit],
        ).fetchall()
    if as_json:
        for r in rows:
            record = dict(
                zip(("id", "kind", "source", "line", "reason", "raw"), r[:6], strict=True)
            )
            record["received_at"] = r[6].isoformat()  # type: ignore[attr-defined]
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
            str(r[0]), str(r[2]), "" if r[3] is None else str(r[3]), str(r[4]), str(r[5])
        )
    console.print(latest)
