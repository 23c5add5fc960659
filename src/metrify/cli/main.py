"""The ``metrify`` command.

Every subcommand opens the store through :mod:`metrify.pipeline.session` and hands data to the one
pipeline. Errors a user can cause (bad options, unreadable files, an unreachable
database) print one line and set the exit status; they never print a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import orjson
import typer
from rich.console import Console
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

from metrify.cli import options as opts
from metrify.contracts.records import (
    CONTRACTS,
    GRID,
    METER,
    NODE,
    READING,
    STATION,
    WEATHER,
    contract,
)
from metrify.contracts.summary import Summary
from metrify.ops.logging import configure
from metrify.pipeline.session import Session, ingest_files, ingest_frames, open_session
from metrify.settings import Settings, get_settings
from metrify.sources.mapping import MappingError, build_mapping
from metrify.stores import database, embedded

app = typer.Typer(
    name="metrify",
    help="Smart-metering data platform: ingest, validate and store meter, grid and weather data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The operational PostgreSQL store.", no_args_is_help=True)
app.add_typer(db_app, name="db")
vee_app = typer.Typer(help="Validation, estimation and editing of readings.", no_args_is_help=True)
app.add_typer(vee_app, name="vee")
readings_app = typer.Typer(help="Stored meter readings.", no_args_is_help=True)
app.add_typer(readings_app, name="readings")
quality_app = typer.Typer(help="Data quality scores.", no_args_is_help=True)
app.add_typer(quality_app, name="quality")

console = Console(stderr=False)
err = Console(stderr=True)

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
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _settings() -> Settings:
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic ValidationError: bad METRIFY_* value
        raise UserError(f"invalid configuration: {exc}") from None
    configure(settings.log_level if settings.log_level != "INFO" else "WARNING")
    return settings


def _progress(total: int | None, *, unit: str) -> Progress:
    columns: list[Any] = [TextColumn("[progress.description]{task.description}"), BarColumn()]
    columns += [DownloadColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def _print_summary(summary: Summary, *, as_json: bool) -> None:
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
    console.print(table)
    if summary.reasons:
        reasons = Table(title="rejections by reason", show_header=True)
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, count in summary.reasons.most_common():
            reasons.add_row(reason, f"{count:,}")
        console.print(reasons)
    for warning in summary.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for error in summary.errors:
        err.print(f"[red]error:[/red] {error}", highlight=False)


KINDS = ", ".join(CONTRACTS)


@app.command("config")
@friendly
def config_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Print the effective settings (secrets masked)."""
    values = _settings().masked()
    if as_json:
        sys.stdout.write(orjson.dumps(values).decode() + "\n")
        return
    table = Table(show_header=True)
    table.add_column("setting")
    table.add_column("value")
    for key, value in values.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


@app.command("ingest")
@friendly
def ingest_cmd(
    kind: Annotated[str, typer.Argument(help=f"one of: {KINDS}")],
    paths: opts.Paths,
    maps: opts.Maps = [],  # noqa: B006
    sets: opts.Sets = [],  # noqa: B006
    scales: opts.Scales = [],  # noqa: B006
    interval: opts.Interval = None,
    tz: opts.Tz = None,
    ts_end: opts.TsEnd = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the summary as one JSON object")
    ] = False,
) -> None:
    """Load files into the store through the pipeline; bad rows go to quarantine."""
    try:
        spec = contract(kind)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    mapping = build_mapping(
        spec, maps=maps, sets=sets, scales=scales, interval_s=interval, tz=tz, ts_end=ts_end
    )
    settings = _settings()
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    with open_session(settings) as session, _progress(total, unit="bytes") as bar:
        task = bar.add_task(f"ingest {kind}", total=total or None)
        summary = ingest_files(
            session, spec, paths, mapping, progress=lambda n: bar.advance(task, n)
        )
    _print_summary(summary, as_json=as_json)
    if summary.errors:
        raise typer.Exit(1)


def _simulate_into(session: Session, fleet: Any, bar: Progress) -> list[Summary]:
    """Feed a simulated fleet through the pipeline: reference data first, then series."""
    source = f"simulator:seed={fleet.spec.seed}"
    summaries = [
        ingest_frames(session, NODE, [fleet.nodes], source=source),
        ingest_frames(session, STATION, [fleet.stations], source=source),
        ingest_frames(session, METER, [fleet.meters], source=source),
        ingest_frames(session, WEATHER, [fleet.weather()], source=source),
    ]
    task = bar.add_task("simulate + ingest readings", total=fleet.expected_readings)
    readings = session.pipeline(READING)
    grid = session.pipeline(GRID)
    for reading_chunk, grid_chunk in fleet.chunks():
        readings.submit(reading_chunk, source=source)
        grid.submit(grid_chunk, source=source)
        bar.advance(task, reading_chunk.height)
    summaries += [readings.close(), grid.close()]
    return summaries


@app.command("simulate")
@friendly
def simulate_cmd(
    meters: Annotated[int, typer.Option(help="number of meters")] = 200,
    days: Annotated[int, typer.Option(help="days of data")] = 30,
    interval: Annotated[int, typer.Option(help="interval in seconds")] = 900,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same fleet)")] = 0,
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")] = "2025-01-01",
    fault_rate: Annotated[float, typer.Option(help="share of meters with injected faults")] = 0.05,
    out: Annotated[Path | None, typer.Option(help="write files here instead of ingesting")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv (with --out)")] = "parquet",
    as_json: Annotated[bool, typer.Option("--json", help="print summaries as JSON")] = False,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="'store' (the pipeline, in-process) or 'kafka' (topics for the workers)"
        ),
    ] = "store",
    rate: Annotated[
        float, typer.Option(help="with --to kafka: readings per second to stream")
    ] = 10_000.0,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime/--accelerated",
            help="with --to kafka: send each interval once it has ended on the wall clock",
        ),
    ] = False,
) -> None:
    """Generate a realistic fleet with labelled faults; write, ingest or stream it to Kafka."""
    from metrify.simulation.fleet import Fleet, FleetSpec, write_fleet

    try:
        first = dt.date.fromisoformat(start)
    except ValueError:
        raise UserError(f"--start {start}: expected YYYY-MM-DD") from None
    if fmt not in ("parquet", "csv"):
        raise UserError(f"--format {fmt}: expected parquet or csv")
    if to not in ("store", "kafka"):
        raise UserError(f"--to {to}: expected store or kafka")
    if to == "kafka" and out is not None:
        raise UserError("--out and --to kafka exclude each other")
    if rate <= 0:
        raise UserError(f"--rate {rate:g}: expected readings per second > 0")
    fleet = Fleet(
        FleetSpec(
            meters=meters,
            days=days,
            interval_s=interval,
            seed=seed,
            start=first,
            fault_rate=fault_rate,
        )
    )
    if out is not None:
        with _progress(fleet.expected_readings, unit="rows") as bar:
            task = bar.add_task("simulate", total=fleet.expected_readings)
            counts = write_fleet(fleet, out, fmt, progress=lambda n: bar.advance(task, n))  # type: ignore[arg-type]
        if as_json:
            sys.stdout.write(orjson.dumps({"out": str(out), **counts}).decode() + "\n")
        else:
            console.print(f"wrote {counts.get('readings', 0):,} readings to {out}")
        return
    settings = _settings()
    if to == "kafka":
        from metrify.cli.stream import simulate_to_kafka

        stats = simulate_to_kafka(fleet, settings, rate, realtime)
        sent = {
            "readings": stats.readings,
            "grid": stats.grid,
            "weather": stats.weather,
            "seconds": round(stats.seconds, 3),
        }
        if as_json:
            sys.stdout.write(orjson.dumps({"sent": sent}).decode() + "\n")
        else:
            console.print(
                f"sent {stats.readings:,} readings, {stats.grid:,} grid and {stats.weather:,}"
                f" weather records to Kafka in {stats.seconds:.1f} s"
            )
        return
    with open_session(settings) as session, _progress(None, unit="rows") as bar:
        summaries = _simulate_into(session, fleet, bar)
    for summary in summaries:
        _print_summary(summary, as_json=as_json)


@app.command("demo")
@friendly
def demo_cmd(
    meters: Annotated[int, typer.Option(help="meters in the demo fleet")] = 200,
    days: Annotated[int, typer.Option(help="days of data")] = 30,
) -> None:
    """Simulate a small fleet on the embedded default, ingest it, and show what is where."""
    from metrify.simulation.fleet import Fleet, FleetSpec

    settings = _settings()
    # The demo summarises its anomalies below instead of logging an alert line for each.
    alerts = settings.anomaly.alerts.model_copy(update={"log": False})
    settings = settings.model_copy(
        update={"anomaly": settings.anomaly.model_copy(update={"alerts": alerts})}
    )
    fleet = Fleet(FleetSpec(meters=meters, days=days, interval_s=900, seed=42))
    console.print(f"[bold]Metrify demo[/bold]: {meters} meters x {days} days at 15 min")
    with open_session(settings) as session:
        with _progress(None, unit="rows") as bar:
            summaries = _simulate_into(session, fleet, bar)
        stats = session.conn.execute(
            """
            SELECT (SELECT count(*) FROM readings), (SELECT count(DISTINCT meter_id) FROM readings),
                   (SELECT min(ts) FROM readings), (SELECT max(ts) FROM readings),
                   (SELECT round(sum(import_kwh)::numeric, 1) FROM readings),
                   (SELECT count(*) FROM grid_measurements), (SELECT count(*) FROM quarantine)
            """
        ).fetchone()
        incidents = session.conn.execute(
            "SELECT kind, severity, count(*) FROM anomalies GROUP BY 1, 2 ORDER BY 3 DESC"
        ).fetchall()
        url = database.database_url(settings)
    assert stats is not None
    table = Table(title="what was loaded", show_header=True)
    for column in ("dataset", "read", "accepted", "duplicates", "rejected", "seconds"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for s in summaries:
        table.add_row(
            s.kind,
            f"{s.read:,}",
            f"{s.accepted:,}",
            f"{s.duplicates:,}",
            f"{s.rejected:,}",
            f"{s.seconds:.1f}",
        )
    console.print(table)
    console.print(
        f"readings in store: {stats[0]:,} from {stats[1]} meters, {stats[2]} .. {stats[3]}; "
        f"total import {stats[4]} kWh; grid rows {stats[5]:,}; quarantine rows {stats[6]:,}"
    )
    if incidents:
        found = ", ".join(f"{n} {kind} ({severity})" for kind, severity, n in incidents)
        console.print(f"anomalies: {found}; see metrify anomalies list")
    console.print(f"database: {url}")
    console.print(f"lake:     {settings.lake}")
    console.print("try:      metrify ingest readings FILE --map meter_id=COL ... ; metrify db url")


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
    settings = _settings()
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


def _when(text: str, option: str) -> dt.datetime:
    """Parse an ISO time from the command line; naive times are UTC."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{option} {text}: expected an ISO time like 2013-01-01T00:30Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


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

    settings = _settings()
    with open_session(settings) as session:
        try:
            result = edit_readings(
                session.pipeline(READING),
                meter,
                _when(start, "--from"),
                _when(end, "--to"),
                value=value,
                reestimate=reestimate,
                reason=reason,
                operator=operator,
            )
        except EditError as exc:
            raise UserError(str(exc)) from None
    console.print(f"edited {result.rows} readings of {meter} ({result.updated} changed)")


@readings_app.command("history")
@friendly
def readings_history(
    meter: Annotated[str, typer.Argument(help="meter id")],
    ts: Annotated[str, typer.Option("--ts", help="interval start (ISO, UTC if naive)")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per version")] = False,
) -> None:
    """Every version of one reading, newest first: the current one, then history."""
    when = _when(ts, "--ts")
    cols = "import_kwh, export_kwh, register_kwh, quality, status, source, ingested_at"
    with open_session(_settings()) as session:
        current = session.conn.execute(
            f"SELECT {cols}, NULL::timestamptz, NULL, 'current' FROM readings"
            " WHERE meter_id = %s AND ts = %s",
            (meter, when),
        ).fetchall()
        older = session.conn.execute(
            f"SELECT {cols}, replaced_at, replaced_by, reason FROM reading_history"
            " WHERE meter_id = %s AND ts = %s ORDER BY replaced_at DESC, id DESC",
            (meter, when),
        ).fetchall()
    names = [
        "import_kwh",
        "export_kwh",
        "register_kwh",
        "quality",
        "status",
        "source",
        "ingested_at",
        "replaced_at",
        "replaced_by",
        "reason",
    ]
    versions = [dict(zip(names, row, strict=True)) for row in [*current, *older]]
    if not versions:
        raise UserError(f"no reading of {meter} at {when.isoformat()}")
    if as_json:
        for version in versions:
            sys.stdout.write(orjson.dumps(version).decode() + "\n")
        return
    table = Table(title=f"{meter} @ {when.isoformat()}")
    for name in names:
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

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".jsonl"):
        raise UserError(f"--out {out}: use a .csv, .parquet or .jsonl file name")
    first, last = _when(start, "--from"), _when(end, "--to")
    with open_session(_settings()) as session:
        rows = session.store.load_context(READING, pl.Series(meter), first, last)
    rows = (
        rows.filter(pl.col("ts") < last)
        .sort("meter_id", "ts")
        .with_columns(ieee2030_5_quality_flags=ieee2030_5_expr(), mscons_status=mscons_expr())
    )
    if suffix == ".csv":
        rows.write_csv(out)
    elif suffix == ".parquet":
        rows.write_parquet(out, compression="zstd")
    else:
        rows.write_ndjson(out)
    console.print(f"wrote {rows.height:,} readings to {out}")


@quality_app.command("report")
@friendly
def quality_report(
    day: Annotated[
        str | None, typer.Option("--date", help="local day YYYY-MM-DD (default: latest)")
    ] = None,
    limit: Annotated[int, typer.Option(help="worst meters to list")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print as one JSON object")] = False,
) -> None:
    """Fleet, feeder and worst-meter quality scores for one day."""
    from metrify.quality.scores import quality_report as build

    with open_session(_settings()) as session:
        session.store.refresh_quality_daily()  # days a running stream marked stale
        report = build(session.conn, dt.date.fromisoformat(day) if day else None, limit)
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


@db_app.command("upgrade")
@friendly
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create or upgrade the schema (runs automatically on first use)."""
    settings = _settings()
    url = database.database_url(settings)
    database.upgrade(url, revision)
    console.print(f"schema at {database.current_revision(url)}")


@db_app.command("url")
@friendly
def db_url() -> None:
    """Print the database URL in use (starts the embedded server if needed)."""
    sys.stdout.write(database.database_url(_settings()) + "\n")


@db_app.command("stop")
@friendly
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    settings = _settings()
    if settings.database_url is not None:
        raise UserError("METRIFY_DATABASE_URL is set: that server is not Metrify's to stop")
    stopped = embedded.stop(settings.home)
    console.print("stopped" if stopped else "not running")


from metrify.cli.stream import register as _register_stream  # noqa: E402

_register_stream(app)

from metrify.cli.api import register as _register_api  # noqa: E402

_register_api(app)

from metrify.cli.anomalies import register as _register_anomalies  # noqa: E402

_register_anomalies(app)


def main() -> None:
    """Entry point of the ``metrify`` script."""
    try:
        app()
    except Exception as exc:  # last resort: one line, never a traceback
        err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        sys.exit(3)
