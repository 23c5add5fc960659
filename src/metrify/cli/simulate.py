"""``metrify simulate`` and ``metrify demo``: a simulated fleet written to files, fed
through the pipeline, or streamed to Kafka for the workers.

Streaming to Kafka lives here, beside the command that offers it, and loads the Kafka
client only when ``--to kafka`` asks for it.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.progress import Progress
from rich.table import Table

from metrify.cli.apps import app
from metrify.cli.common import (
    UserError,
    console,
    friendly,
    kafka_settings,
    load_settings,
    print_summary,
    progress_bar,
)
from metrify.contracts.records import GRID, METER, NODE, READING, STATION, WEATHER
from metrify.contracts.summary import Summary
from metrify.pipeline.session import Session, ingest_frames, open_session
from metrify.settings import Settings
from metrify.stores import anomalies as anomaly_store
from metrify.stores import database
from metrify.stores.reads import fleet as fleet_read

if TYPE_CHECKING:
    from metrify.simulation import StreamStats

__all__ = ["demo_cmd", "simulate_cmd"]


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


def _simulate_to_kafka(fleet: Any, settings: Settings, rate: float, realtime: bool) -> StreamStats:
    """Stream a simulated fleet to Kafka at ``rate`` readings/s for the workers to load.

    Reference data (grid nodes, weather stations, meters) has no topic: it goes into the
    store through the pipeline, as ``metrify simulate`` does, so VEE knows each meter's
    limits. Weather goes to its topic at once; readings and grid are streamed in time
    order, on a real-time or accelerated clock (see :func:`~metrify.simulation.stream_fleet`).
    """
    from metrify.simulation import stream_fleet
    from metrify.sources.kafka import Sender

    kafka = kafka_settings()
    if rate <= 0:
        raise ValueError(f"--rate {rate}: expected readings per second > 0")
    source = f"simulator:seed={fleet.spec.seed}"
    with open_session(settings) as session:
        for contract, frame in (
            (NODE, fleet.nodes),
            (STATION, fleet.stations),
            (METER, fleet.meters),
        ):
            ingest_frames(session, contract, [frame], source=source)
    sender = Sender(kafka)
    weather = sender.send_frame("weather", fleet.weather())
    stats = stream_fleet(fleet, sender, rate, realtime)
    stats.weather = weather
    return stats


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
    from metrify.simulation import Fleet, FleetSpec, write_fleet

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
        with progress_bar(fleet.expected_readings, unit="rows") as bar:
            task = bar.add_task("simulate", total=fleet.expected_readings)
            counts = write_fleet(fleet, out, fmt, progress=lambda n: bar.advance(task, n))  # type: ignore[arg-type]
        if as_json:
            sys.stdout.write(orjson.dumps({"out": str(out), **counts}).decode() + "\n")
        else:
            console.print(f"wrote {counts.get('readings', 0):,} readings to {out}")
        return
    settings = load_settings()
    if to == "kafka":
        stats = _simulate_to_kafka(fleet, settings, rate, realtime)
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
    with open_session(settings) as session, progress_bar(None, unit="rows") as bar:
        summaries = _simulate_into(session, fleet, bar)
    for summary in summaries:
        print_summary(summary, as_json=as_json)


@app.command("demo")
@friendly
def demo_cmd(
    meters: Annotated[int, typer.Option(help="meters in the demo fleet")] = 200,
    days: Annotated[int, typer.Option(help="days of data")] = 30,
) -> None:
    """Simulate a small fleet on the embedded default, ingest it, and show what is where."""
    from metrify.simulation import Fleet, FleetSpec

    settings = load_settings()
    # The demo summarises its anomalies below instead of logging an alert line for each.
    alerts = settings.anomaly.alerts.model_copy(update={"log": False})
    settings = settings.model_copy(
        update={"anomaly": settings.anomaly.model_copy(update={"alerts": alerts})}
    )
    fleet = Fleet(FleetSpec(meters=meters, days=days, interval_s=900, seed=42))
    console.print(f"[bold]Metrify demo[/bold]: {meters} meters x {days} days at 15 min")
    with open_session(settings) as session:
        with progress_bar(None, unit="rows") as bar:
            summaries = _simulate_into(session, fleet, bar)
        stored = fleet_read.totals(session.conn)
        incidents = anomaly_store.counts(session.conn)
        url = database.database_url(settings)
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
        f"readings in store: {stored['readings']:,} from {stored['meters']} meters, "
        f"{stored['first_ts']} .. {stored['last_ts']}; total import {stored['import_kwh']} kWh; "
        f"grid rows {stored['grid']:,}; quarantine rows {stored['quarantined']:,}"
    )
    if incidents:
        found = ", ".join(f"{n} {kind} ({severity})" for kind, severity, n in incidents)
        console.print(f"anomalies: {found}; see metrify anomalies list")
    console.print(f"database: {url}")
    console.print(f"lake:     {settings.lake}")
    console.print("try:      metrify ingest readings FILE --map meter_id=COL ... ; metrify db url")
