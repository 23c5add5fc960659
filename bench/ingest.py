"""Ingest benchmark: simulated readings from Parquet into PostgreSQL + lake, end to end.

Measures ``metrify ingest readings`` (a fresh process per run: read, decode, validate,
detect anomalies, COPY + upsert, lake) against the physical limit of the store: a raw
``COPY`` (binary, and CSV for reference) of the same rows into an identical partitioned
table with the same primary key and index, on the same server. ``--detectors compare``
adds a run with VEE on and the anomaly detectors off, so the detection cost is measured;
the VEE-off runs have neither.
Each is run several times on a fresh table; the median is quoted with min and max,
after one uncounted warm-up round of Metrify and the raw COPY.

    .venv/bin/python bench/ingest.py [--meters 1800] [--days 30] [--runs 3]
        [--detectors on|off|compare] [--warmup 0|1]

Uses ``METRIFY_DATABASE_URL`` if set, else a private embedded PostgreSQL in a temp folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pgpq
import polars as pl
import psycopg

from common import byte_compiled, machine, stats
from metrify.contracts.records import READING
from metrify.simulation import Fleet, FleetSpec, write_fleet
from metrify.stores import database, embedded
from metrify.stores.partitions import Partitions, months_of

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
#: everything a load writes (files, the Kafka worker's three topics, the detectors)
TABLES = (
    "readings, reading_history, grid_measurements, weather_observations, meters, grid_nodes,"
    " weather_stations, quarantine, quality_daily, quality_dirty, anomalies, anomaly_state,"
    " anomaly_profile"
)


def reset(url: str) -> None:
    """Empty the store and drop its partitions, so each run is a fresh load."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES}")
        parts = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname IN ('readings', 'bench_copy')"
        ).fetchall()
        for (name,) in parts:
            conn.execute(f'DROP TABLE "{name}"')
        conn.execute("CHECKPOINT")


def run_metrify(
    url: str, parts: list[Path], lake: Path, *, vee: bool, detectors: bool = True
) -> dict[str, float]:
    """One end-to-end CLI run in its own process; returns seconds, rows and peak RSS."""
    env = {
        **os.environ,
        "METRIFY_DATABASE_URL": url,
        "METRIFY_LAKE_URL": str(lake),
        "METRIFY_VEE__ENABLED": "true" if vee else "false",
        "METRIFY_ANOMALY__ENABLED": "true" if detectors else "false",
        # the alerts of the simulated faults would fill the bench's output
        "METRIFY_LOG_LEVEL": "ERROR",
    }
    byte_compiled(ROOT.parent / "src")
    cli = str(Path(sys.executable).with_name("metrify"))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [cli, "ingest", "readings", *map(str, parts), "--json"], env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"metrify ingest failed with status {status}")
    summary = json.loads(output)
    return {
        "seconds": seconds,
        "rows": summary["read"],
        "accepted": summary["accepted"],
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def copy_limit(url: str, frame: pl.DataFrame, *, binary: bool = True) -> float:
    """Seconds for a raw COPY of the same rows into an identical table (the physical limit).

    ``binary``: PostgreSQL's binary format, encoded beforehand (the fastest COPY there is,
    so the honest limit); else CSV, what most loaders send. Encoding is not timed.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(
            "CREATE TABLE bench_copy (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            " PARTITION BY RANGE (ts)"
        )
        conn.execute("ALTER TABLE bench_copy ADD PRIMARY KEY (meter_id, ts)")
        conn.execute("CREATE INDEX ON bench_copy USING brin (ts)")  # as readings has
        Partitions().ensure(conn, "bench_copy", months_of(frame["ts"]))
        columns = frame.columns
        buffers: list[list[bytes]] = []
        for chunk in frame.iter_slices(500_000):
            if binary:
                arrow = chunk.to_arrow()
                encoder = pgpq.ArrowToPostgresBinaryEncoder(arrow.schema)
                parts = [bytes(encoder.write_header())]
                parts += [bytes(encoder.write_batch(b)) for b in arrow.to_batches()]
                parts.append(bytes(encoder.finish()))
                buffers.append(parts)
            else:
                buffer = io.BytesIO()
                chunk.write_csv(buffer, include_header=False, null_value="")
                buffers.append([buffer.getvalue()])
        form = "binary" if binary else "csv, NULL ''"
        started = time.perf_counter()
        with conn.cursor() as cur:
            for parts in buffers:
                with (
                    conn.transaction(),
                    cur.copy(
                        f"COPY bench_copy ({', '.join(columns)}) FROM STDIN (FORMAT {form})"
                    ) as copy,
                ):
                    for data in parts:
                        copy.write(data)
        return time.perf_counter() - started


def vee_stage(parts: list[Path], runs: int) -> list[float]:
    """Readings/s through the quality stage alone (dedupe, rules, estimation), in memory.

    The batches are the pipeline's own: 500K records, empty stored history (a fresh load).
    """
    from metrify.quality import VeeConfig, dedupe_batch
    from metrify.quality.engine import run_vee

    frame = pl.concat([pl.read_parquet(p) for p in parts]).with_columns(source=pl.lit("bench"))
    batches = list(frame.iter_slices(500_000))
    meters = pl.DataFrame(
        schema={
            "meter_id": pl.String,
            "status": pl.String,
            "max_kw": pl.Float64,
            "rated_current_a": pl.Float64,
            "register_digits": pl.Int16,
            "timezone": pl.String,
            "nominal_voltage_v": pl.Float64,
        }
    )
    context = pl.DataFrame(
        schema={**READING.schema, "quality": pl.Int32, "status": pl.String, "source": pl.String}
    )
    cfg, now = VeeConfig(), dt.datetime.now(dt.UTC)
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for batch in batches:
            run_vee(dedupe_batch(READING, batch).records, context, meters, cfg, now)
        rates.append(frame.height / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1800)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=900)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--warmup",
        type=int,
        choices=[0, 1],
        default=1,
        help="one uncounted round of Metrify and the raw COPY first (default 1)",
    )
    parser.add_argument(
        "--detectors",
        choices=["on", "off", "compare"],
        default="on",
        help="anomaly detectors in the VEE-on runs; 'compare' adds a VEE-on run without them",
    )
    args = parser.parse_args()
    detectors = args.detectors != "off"

    work = Path(tempfile.mkdtemp(prefix="mb", dir="/tmp"))
    try:
        fleet = Fleet(
            FleetSpec(meters=args.meters, days=args.days, interval_s=args.interval, seed=7)
        )
        print(f"simulating {fleet.expected_readings:,} readings ...", file=sys.stderr)
        write_fleet(fleet, work / "sim", "parquet")
        parts = sorted((work / "sim" / "readings").glob("*.parquet"))
        url = os.environ.get("METRIFY_DATABASE_URL") or embedded.start(
            work / "home", keep_running=False
        )
        database.upgrade(url)

        frame = (
            pl.concat([pl.read_parquet(p) for p in parts])
            # In the files' order, as metrify reads them: a shuffled COPY into the primary
            # key runs at about half the rate, which would understate the limit.
            .unique(subset=["meter_id", "ts"], keep="last", maintain_order=True)
            .filter(pl.col("import_kwh") >= 0)
            .with_columns(
                quality=pl.lit(0, pl.Int32),
                status=pl.lit("valid"),
                source=pl.lit("bench"),
                ingested_at=pl.lit(dt.datetime.now(dt.UTC)),
            )
            .select([*READING.fields, "quality", "status", "source", "ingested_at"])
        )

        ours: list[dict[str, float]] = []
        plain: list[dict[str, float]] = []
        undetected: list[dict[str, float]] = []  # VEE on, anomaly detectors off
        copies: list[float] = []
        csv_copies: list[float] = []
        if args.warmup:
            # The first load after the server starts pays for cold caches (the file cache
            # of the libraries and of the new cluster's files): it would land on whichever
            # method runs first, always Metrify. One round of each, not counted.
            print("warm-up round (not counted) ...", file=sys.stderr)
            reset(url)
            run_metrify(url, parts, work / "warm", vee=True, detectors=detectors)
            shutil.rmtree(work / "warm", ignore_errors=True)
            reset(url)
            copy_limit(url, frame)
        for run in range(args.runs):
            reset(url)
            lake = work / f"lake{run}"
            ours.append(run_metrify(url, parts, lake, vee=True, detectors=detectors))
            if args.detectors == "compare":
                shutil.rmtree(lake, ignore_errors=True)
                reset(url)
                undetected.append(run_metrify(url, parts, lake, vee=True, detectors=False))
            shutil.rmtree(lake, ignore_errors=True)
            reset(url)
            plain.append(run_metrify(url, parts, lake, vee=False, detectors=False))
            shutil.rmtree(lake, ignore_errors=True)
            reset(url)
            copies.append(copy_limit(url, frame))
            reset(url)
            csv_copies.append(copy_limit(url, frame, binary=False))
            print(
                f"run {run + 1}/{args.runs}:"
                f" metrify (VEE) {ours[-1]['rows'] / ours[-1]['seconds']:,.0f}/s,"
                f" metrify (no VEE) {plain[-1]['rows'] / plain[-1]['seconds']:,.0f}/s,"
                f" raw COPY {frame.height / copies[-1]:,.0f}/s"
                f" (CSV {frame.height / csv_copies[-1]:,.0f}/s)",
                file=sys.stderr,
            )
        vee_rates = vee_stage(parts, args.runs)
        print(f"VEE stage alone: {statistics.median(vee_rates):,.0f}/s", file=sys.stderr)
        rows = ours[0]["rows"]
        metrify_rates = [r["rows"] / r["seconds"] for r in ours]
        plain_rates = [r["rows"] / r["seconds"] for r in plain]
        copy_rates = [frame.height / s for s in copies]
        result = {
            "workload": f"simulated fleet, {rows:,.0f} readings from Parquet -> PostgreSQL + lake",
            "machine": machine(),
            "runs": args.runs,
            "warmup_rounds": args.warmup,
            "metrify_readings_per_s": stats(metrify_rates),
            "metrify_readings_per_min": statistics.median(metrify_rates) * 60,
            "metrify_no_vee_readings_per_s": stats(plain_rates),
            "anomaly_detectors": args.detectors,
            "metrify_vee_no_detectors_readings_per_s": (
                stats([r["rows"] / r["seconds"] for r in undetected]) if undetected else None
            ),
            "vee_stage_readings_per_s": stats(vee_rates),
            "vee_stage_readings_per_min": statistics.median(vee_rates) * 60,
            "metrify_peak_rss_mib": stats([r["peak_rss_mib"] for r in ours]),
            "raw_copy_rows_per_s": stats(copy_rates),
            "raw_copy_format": "binary",
            "raw_copy_csv_rows_per_s": stats([frame.height / s for s in csv_copies]),
            "ratio_to_copy": statistics.median(metrify_rates) / statistics.median(copy_rates),
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
        m, c, p = stats(metrify_rates), stats(copy_rates), stats(plain_rates)
        rss = statistics.median([r["peak_rss_mib"] for r in ours])
        per_min = statistics.median(metrify_rates) * 60 / 1e6
        print(
            "| workload | metrify with VEE, readings/s | metrify without VEE"
            " | raw binary COPY rows/s"
            " | ratio (VEE) | peak RSS (VEE) |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        print(
            f"| {result['workload']} "
            f"| {m['median']:,.0f} ({m['min']:,.0f}..{m['max']:,.0f}) = {per_min:.1f}M/min "
            f"| {p['median']:,.0f} ({p['min']:,.0f}..{p['max']:,.0f}) "
            f"| {c['median']:,.0f} ({c['min']:,.0f}..{c['max']:,.0f}) "
            f"| {m['median'] / c['median']:.2f} | {rss:,.0f} MiB |"
        )
        if undetected:
            u = stats([r["rows"] / r["seconds"] for r in undetected])
            print(
                f"\nVEE on, anomaly detectors off: {u['median']:,.0f} readings/s"
                f" ({u['min']:,.0f}..{u['max']:,.0f}) = {u['median'] * 60 / 1e6:.1f}M/min;"
                f" with detectors: {m['median']:,.0f}/s = {m['median'] * 60 / 1e6:.1f}M/min"
            )
        v = stats(vee_rates)
        print(
            f"\nVEE stage alone (dedupe + rules + estimation, in memory): {v['median']:,.0f}"
            f" readings/s ({v['min']:,.0f}..{v['max']:,.0f})"
            f" = {v['median'] * 60 / 1e6:.1f}M readings/min"
        )
        if not os.environ.get("METRIFY_DATABASE_URL"):
            embedded.stop(work / "home")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
