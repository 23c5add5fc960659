"""Stored readings: ``metrify readings history`` and ``export``, ``metrify vee edit`` and
``metrify quality report``.

A reading's versions come from the read model the API uses too
(:func:`metrify.stores.reads.readings.versions`).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from metrify.cli.apps import quality_app, readings_app, vee_app
from metrify.cli.common import (
    UserError,
    audit_act,
    console,
    friendly,
    load_settings,
    parse_time,
)
from metrify.contracts.records import READING
from metrify.pipeline.session import open_session
from metrify.stores.reads import meters as meters_read
from metrify.stores.reads import readings as readings_read

__all__ = ["quality_report", "readings_export", "readings_history", "vee_edit"]


@vee_app.command("edit")
@friendly
def vee_edit(
    meter: Annotated[str, typer.Argument(help="meter id")],
    start: Annotated[str, typer.Option("--from", help="first interval start (ISO, UTC if naive)")],
    end: Annotated[str, typer.Option("--to", help="end of the range, exclusive")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept in history)")],
    value: Annotated[
        float | None, typer.Option("--set", help="new import_kwh for every interval")
    ] = None,
    reestimate: Annotated[
        bool, typer.Option("--estimate", help="re-estimate from history")
    ] = False,
    operator: Annotated[
        str, typer.Option("--operator", envvar="USER", help="who edits (default $USER)")
    ] = "operator",
) -> None:
    """Edit stored readings; old versions go to history with who, when and why."""
    from metrify.pipeline.edit import EditError, edit_readings

    settings = load_settings()
    first, last = parse_time(start, "--from"), parse_time(end, "--to")
    with open_session(settings) as session:
        try:
            result = edit_readings(
                session.pipeline(READING),
                meter,
                first,
                last,
                value=value,
                reestimate=reestimate,
                reason=reason,
                operator=operator,
            )
        except EditError as exc:
            raise UserError(str(exc)) from None
        # the row the API writes for an edit, right after the edit as the API does: the
        # edit's one write path also writes the lake, which a transaction could not undo
        audit_act(
            session.conn,
            "readings.edit",
            meter,
            {
                "from": first.isoformat(),
                "to": last.isoformat(),
                "value": value,
                "estimate": reestimate,
                "reason": reason,
                "rows": result.rows,
                "operator": operator,
            },
        )
    console.print(f"edited {result.rows} readings of {meter} ({result.updated} changed)")


@readings_app.command("history")
@friendly
def readings_history(
    meter: Annotated[str, typer.Argument(help="meter id")],
    ts: Annotated[str, typer.Option("--ts", help="interval start (ISO, UTC if naive)")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per version")] = False,
) -> None:
    """Every version of one reading, newest first: the current one, then history."""
    when = parse_time(ts, "--ts")
    with open_session(load_settings()) as session:
        versions = readings_read.versions(session.conn, meter, when)
    if not versions:
        raise UserError(f"no reading of {meter} at {when.isoformat()}")
    if as_json:
        for version in versions:
            sys.stdout.write(orjson.dumps(version).decode() + "\n")
        return
    table = Table(title=f"{meter} @ {when.isoformat()}")
    for name in readings_read.VERSION_COLUMNS:
        table.add_column(name)
    for version in versions:
        table.add_row(*["" if v is None else str(v) for v in version.values()])
    console.print(table)


@readings_app.command("export")
@friendly
def readings_export(
    meter: Annotated[list[str], typer.Argument(help="meter ids")],
    start: Annotated[str, typer.Option("--from", help="first interval start (ISO, UTC if naive)")],
    end: Annotated[str, typer.Option("--to", help="end of the range, exclusive")],
    out: Annotated[Path, typer.Option("--out", help="file to write (.csv, .parquet or .jsonl)")],
) -> None:
    """Export stored readings with their flags and the IEEE 2030.5 / MSCONS quality codes."""
    import polars as pl

    from metrify.quality.interop import ieee2030_5_expr, mscons_expr
    from metrify.stores.reads.export import TIME_FORMAT, for_text

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".jsonl"):
        raise UserError(f"--out {out}: use a .csv, .parquet or .jsonl file name")
    first, last = parse_time(start, "--from"), parse_time(end, "--to")
    # both wrote an empty file and said "wrote 0 readings", as if the meter had none then
    if last <= first:
        raise UserError("--to must be after --from")
    with open_session(load_settings()) as session:
        missing = meters_read.unknown(session.conn, list(meter))
        if missing:
            raise UserError(f"no meter {', '.join(missing)}")
        # recorded before the rows are read, as the API does: a failed or interrupted
        # export still shows who asked for which data
        audit_act(
            session.conn,
            "export.readings",
            ",".join(meter)[:500],
            {"from": first.isoformat(), "to": last.isoformat(), "format": suffix.lstrip(".")},
        )
        rows = session.store.load_context(READING, pl.Series(meter), first, last)
    rows = (
        rows.filter(pl.col("ts") < last)
        .sort("meter_id", "ts")
        .with_columns(ieee2030_5_quality_flags=ieee2030_5_expr(), mscons_status=mscons_expr())
    )
    # text as the API writes it (15 significant digits, formulas neutralised, ISO times);
    # Parquet keeps the stored doubles
    if suffix == ".csv":
        for_text(rows, csv=True).write_csv(out, datetime_format=TIME_FORMAT)
    elif suffix == ".parquet":
        rows.write_parquet(out, compression="zstd")
    else:
        for_text(rows, csv=False).write_ndjson(out)
    console.print(f"wrote {rows.height:,} readings to {out}")


def _day(text: str) -> dt.date:
    """``--date`` as a date; the error names the option and the text (it said only
    "day is out of range for month")."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"--date {text}: {exc}; expected a day like 2013-03-01") from None


@quality_app.command("report")
@friendly
def quality_report(
    day: Annotated[
        str | None,
        typer.Option("--date", help="local day YYYY-MM-DD (default: the latest complete day)"),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="worst meters to list")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print as one JSON object")] = False,
) -> None:
    """Fleet, feeder and worst-meter quality scores for one day."""
    from metrify.stores.quality_daily import quality_report as build

    with open_session(load_settings()) as session:
        session.store.refresh_quality_daily()  # days a running stream marked stale
        report = build(session.conn, _day(day) if day else None, limit)
    if report is None:
        raise UserError("no quality scores yet: ingest readings first")
    if as_json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
        return
    fleet = report["fleet"]
    console.print(
        f"[bold]{report['day']}[/bold]: {fleet['meters']} meters, completeness "
        f"{fleet['completeness']:.1%}, score {fleet['score']:.1f}, "
        f"valid {fleet['valid_share']:.1%}, "
        f"estimated {fleet['estimated_share']:.1%}, suspect {fleet['suspect_share']:.1%}"
    )
    for title, rows in (("feeders", report["feeders"]), ("worst meters", report["worst"])):
        table = Table(title=title)
        if rows:
            for column in rows[0]:
                table.add_column(column)
            for row in rows:
                table.add_row(
                    *[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
                )
        console.print(table)
