"""Batch-layer benchmarks: the aggregates after late data, and lake bytes per hour.

``incremental``: a store of ``--meters`` x ``--days`` 15-minute readings (default 1,042
x 100 = 10.0M readings, 104,200 meter-days), its aggregates built; then a late batch
corrects every reading of ``--share`` (default 1 %) of the meter-days, picked at random
across meters and days, as one UPDATE (the same marks a pipeline write leaves: the
statement triggers of migration 0013). Measured: the time of
:func:`metrify.stores.aggregates.refresh` until the aggregates are right again, over
``--runs`` late batches, median with min and max; each run is then checked against a
recomputation from the readings (fleet and every node, day totals and interval counts).
The target (issue 21) is under 10 s.

The store is seeded straight in SQL (``generate_series``), not through the pipeline:
what is measured is the refresh, and a 10M-reading load through VEE would take longer
than the whole measurement. Meters are spread over 40 feeders, 4 regions and 2 tariffs.

    .venv/bin/python bench/batch.py incremental [--meters 1042] [--days 100]
        [--share 0.01] [--runs 3] [--home DIR]

``throughput``: a Delta lake of at least ``--gb`` GB of readings (default 2; 30-minute
readings of ``--meters`` meters with import, export for one in five, and voltage, one
Delta commit per day) is built in the benchmark's own process, the meters registered in
PostgreSQL; then timed, ``--runs`` times each, alternating:

* ``metrify batch run --date D --job dbt`` on a new warehouse file: the dbt project on
  DuckDB over the whole lake (the current version of every reading, then every mart);
* plain DuckDB (the limit): one SQL statement over the lake's Parquet files, the current
  version per key and the daily energy per meter, into a table;
* pandas (in the peers' venv of ``bench/suite.py``), as a user would write it: each
  day's files read, ``drop_duplicates`` on the key keeping the latest version,
  ``groupby`` per meter.

The lake holds corrections as a store's lake does: on every tenth day, ``--corrected``
(default 1 %) of the meters have a second, later version of each of that day's readings,
and the versions they replaced are in the store's ``reading_history`` (the lake holds the
store's rows and history, nothing more: ``metrify lake verify``). So the current-version
step has real work on some days, as it would in production.

Reported: lake bytes (the Parquet files) per hour of each, and Metrify's share of plain
DuckDB's rate; the issue's targets are >= 100 GB/h and >= 0.5. Every tool's fleet total
is checked against the others.

    .venv/bin/python bench/batch.py throughput [--gb 2] [--meters 20000] [--runs 3]
        [--corrected 0.01] [--home DIR]

Uses ``METRIFY_DATABASE_URL`` if set, else a private embedded PostgreSQL in a temp
folder (``--home`` keeps it, and a store already seeded to the same size is reused).
Results: ``bench/results/batch.json`` (merged by part).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from common import machine, server_home, stats

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "batch.json"
START = dt.date(2025, 1, 1)
STEP_S = 900


def _seed(url: str, meters: int, days: int) -> float | None:
    """Meters and readings straight in SQL; the seconds of the first full build (None:
    a store seeded to the same size was reused)."""
    from metrify.stores import aggregates

    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM meters").fetchone()
        rows = conn.execute("SELECT count(*) FROM agg_meter_30m").fetchone()
        if have and have[0] == meters and rows and rows[0] == meters * days * 48:
            print(f"reusing the seeded store ({meters} meters x {days} days)", file=sys.stderr)
            return None
        conn.execute(
            "TRUNCATE readings, reading_history, meters, grid_nodes, agg_meter_30m,"
            " agg_group_30m, agg_dirty, agg_group_dirty, quality_daily, lake_outbox"
        )
        conn.execute(
            "INSERT INTO grid_nodes (node_id, kind) SELECT 'F' || i, 'feeder'"
            " FROM generate_series(1, 40) i"
        )
        conn.execute(
            "INSERT INTO meters (meter_id, region, node_id, tariff, interval_s, timezone)"
            " SELECT 'M' || lpad(i::text, 5, '0'), 'R' || (i %% 4), 'F' || (1 + i %% 40),"
            " CASE WHEN i %% 3 = 0 THEN 'tou' ELSE 'std' END, 900, 'Europe/London'"
            " FROM generate_series(1, %s) i",
            (meters,),
        )
        first = dt.date(START.year, START.month, 1)
        month = first
        end = START + dt.timedelta(days=days)
        while month < end:
            conn.execute("SELECT metrify_ensure_partition('readings', %s)", (month,))
            month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        print(f"seeding {meters * days * 96:,} readings ...", file=sys.stderr)
        t0 = time.perf_counter()
        # one statement per day keeps each transition table (and its marks) small
        for d in range(days):
            day = dt.datetime.combine(START + dt.timedelta(days=d), dt.time(), dt.UTC)
            conn.execute(
                "INSERT INTO readings (meter_id, ts, interval_s, import_kwh, quality, status,"
                " source, ingested_at)"
                " SELECT m.meter_id, %s + make_interval(secs => s * 900), 900,"
                " round((0.05 + random() * 0.4)::numeric, 3), 0, 'valid', 'bench', now()"
                " FROM meters m CROSS JOIN generate_series(0, 95) s",
                (day,),
            )
        print(f"seeded in {time.perf_counter() - t0:.0f} s; first build ...", file=sys.stderr)
        t0 = time.perf_counter()
        aggregates.refresh(conn)
        built = time.perf_counter() - t0
        conn.execute("VACUUM ANALYZE readings")
        conn.execute("VACUUM ANALYZE agg_meter_30m")
        conn.execute("VACUUM ANALYZE agg_group_30m")
        return built


def _late_batch(url: str, meters: int, days: int, share: float, seed: int) -> int:
    """Correct every reading of ``share`` of the meter-days; how many meter-days."""
    rng = random.Random(seed)
    total = meters * days
    picked = rng.sample(range(total), max(1, round(total * share)))
    ids = [f"M{1 + k % meters:05d}" for k in picked]
    starts = [
        dt.datetime.combine(START + dt.timedelta(days=k // meters), dt.time(), dt.UTC)
        for k in picked
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE readings r SET import_kwh = r.import_kwh + 0.001, source = 'late'"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS p(meter_id, day)"
            " WHERE r.meter_id = p.meter_id AND r.ts >= p.day"
            " AND r.ts < p.day + interval '1 day'",
            (ids, starts),
        )
    return len(picked)


def _check(url: str) -> dict[str, Any]:
    """The fleet's and every node's day totals and counts against the readings."""
    with psycopg.connect(url) as conn:
        wrong = conn.execute(
            """
            WITH raw AS (
                SELECT m.node_id AS key, date_trunc('day', r.ts, 'UTC') AS day,
                       sum(r.import_kwh) AS kwh, count(*) AS n
                FROM readings r JOIN meters m USING (meter_id) GROUP BY 1, 2
                UNION ALL
                SELECT 'all', date_trunc('day', r.ts, 'UTC'), sum(r.import_kwh), count(*)
                FROM readings r GROUP BY 2
            ), agg AS (
                SELECT key, date_trunc('day', bucket, 'UTC') AS day, sum(import_kwh) AS kwh,
                       sum(n_present) AS n
                FROM agg_group_30m WHERE dim IN ('node', 'fleet') GROUP BY 1, 2
            )
            SELECT count(*) FROM raw FULL JOIN agg USING (key, day)
            WHERE raw.n IS DISTINCT FROM agg.n OR abs(raw.kwh - agg.kwh) > 1e-6
            """
        ).fetchone()
    return {"group_days_wrong": int(wrong[0]) if wrong else -1}


def incremental(args: argparse.Namespace) -> dict[str, Any]:
    from metrify.stores import aggregates

    with server_home(args.home, "metrify-batch-") as (_, url):
        url = os.environ.get("METRIFY_DATABASE_URL", url)
        built = _seed(url, args.meters, args.days)
        times, checks, marked = [], [], 0
        for run in range(args.runs):
            marked = _late_batch(url, args.meters, args.days, args.share, seed=run)
            with psycopg.connect(url, autocommit=True) as conn:
                t0 = time.perf_counter()
                done = aggregates.refresh(conn)
                times.append(time.perf_counter() - t0)
            checks.append(_check(url))
            print(
                f"run {run + 1}: {marked} meter-days late -> refresh {times[-1]:.2f} s"
                f" ({done.meter_days} meter-days, {done.group_days} group-days); {checks[-1]}",
                file=sys.stderr,
            )
    return {
        "meters": args.meters,
        "days": args.days,
        "readings": args.meters * args.days * 96,
        "late_meter_days": marked,
        "first_build_s": built,
        "refresh_s": stats(times),
        "runs": times,
        "checks": checks,
        "target_s": 10.0,
        "median_s": statistics.median(times),
    }


def _lake_bytes(folder: Path) -> int:
    """The data files' bytes (the day partitions; not the Delta log's checkpoints)."""
    return sum(f.stat().st_size for f in folder.glob("date=*/*.parquet"))


def _build_lake(
    url: str,
    lake: Path,
    gb: float,
    meters: int,
    corrected: float = 0.01,
    days_per_commit: int = 8,
) -> tuple[int, int, dt.date]:
    """(bytes, readings, last day) of a lake grown a day at a time to ``gb`` GB, with
    second versions of ``corrected`` of the meters' readings on every tenth day (the
    replaced versions recorded in the store's history, as the pipeline would)."""
    import numpy as np
    import polars as pl
    from deltalake import write_deltalake

    from metrify.contracts.records import READING
    from metrify.stores.lake.table import lake_schema

    uri = str(lake / "readings")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE meters CASCADE")
        conn.execute(
            "INSERT INTO meters (meter_id, region, node_id, tariff, interval_s, timezone)"
            " SELECT 'M' || lpad(i::text, 6, '0'), 'R' || (i %% 4), 'F' || (1 + i %% 40),"
            " 'std', 1800, 'Europe/London' FROM generate_series(1, %s) i",
            (meters,),
        )
    ids = pl.Series("meter_id", [f"M{i:06d}" for i in range(1, meters + 1)])
    schema = lake_schema(READING)
    rng = np.random.default_rng(7)
    ingested = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    exporter = np.repeat(np.arange(meters) % 5 == 0, 48)
    fixed = max(1, int(meters * corrected))
    day, total, rows = START, 0, 0
    history = psycopg.connect(url, autocommit=True)
    history.execute("TRUNCATE reading_history")
    while total < gb * 1e9:
        frames = []
        for _ in range(days_per_commit):  # one Delta commit per few days, a file per day
            n = meters * 48
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            stamps = pl.datetime_range(
                start, start + dt.timedelta(minutes=30 * 47), "30m", eager=True, time_zone="UTC"
            )
            frames.append(
                pl.DataFrame(
                    {
                        "meter_id": ids.gather(np.repeat(np.arange(meters), 48)),
                        "ts": stamps.gather(np.tile(np.arange(48), meters)),
                        "import_kwh": np.round(rng.gamma(2.0, 0.12, n), 3),
                        "export_kwh": np.where(exporter, np.round(rng.random(n), 3), np.nan),
                        "voltage_v": np.round(rng.normal(236.0, 3.0, n), 1),
                    }
                ).with_columns(
                    pl.col("export_kwh").fill_nan(None),
                    interval_s=pl.lit(1800),
                    quality=pl.lit(0),
                    status=pl.lit("valid"),
                    source=pl.lit("bench"),
                    ingested_at=pl.lit(ingested),
                    date=pl.lit(day),
                )
            )
            rows += n
            if (day - START).days % 10 == 0:
                old = frames[-1].head(fixed * 48)  # the first meters' readings of the day
                frames.append(
                    old.with_columns(
                        pl.col("import_kwh") + 0.1,
                        ingested_at=pl.lit(ingested + dt.timedelta(days=1)),
                    )
                )
                _record_history(history, old)
            day += dt.timedelta(days=1)
        frame = pl.concat(frames).select(
            pl.col(c).cast(t) if c in frames[0].columns else pl.lit(None, t).alias(c)
            for c, t in schema.items()
        )
        write_deltalake(uri, frame.to_arrow(), mode="append", partition_by=["date"])
        total = _lake_bytes(lake / "readings")
        print(f"lake: {day} {total / 1e9:.2f} GB, {rows:,} readings", file=sys.stderr)
    history.close()
    return total, rows, day - dt.timedelta(days=1)


def _record_history(conn: psycopg.Connection[Any], replaced: Any) -> None:
    """The replaced versions into ``reading_history``, as a correction leaves them."""
    columns = ["meter_id", "ts", "interval_s", "import_kwh", "quality", "status", "source"]
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY reading_history (meter_id, ts, interval_s, import_kwh, quality, status, source,"
            " ingested_at, replaced_by, reason) FROM STDIN"
        ) as copy,
    ):
        for row in replaced.select([*columns, "ingested_at"]).iter_rows():
            copy.write_row([*row, "bench", "correction"])


_DUCKDB = """
CREATE TABLE daily AS
SELECT meter_id, date, sum(import_kwh) AS import_kwh
FROM (
    SELECT meter_id, ts, date, import_kwh, row_number() OVER (
        PARTITION BY date, meter_id, ts ORDER BY ingested_at DESC) AS newest
    FROM read_parquet('{glob}', hive_partitioning = true)
) WHERE newest = 1
GROUP BY 1, 2;
SELECT sum(import_kwh) FROM daily;
"""

_PANDAS = """
import glob, os, sys
import pandas as pd
parts = []
for folder in sorted(glob.glob(os.path.join(sys.argv[1], "date=*"))):
    frame = pd.concat(pd.read_parquet(f) for f in glob.glob(os.path.join(folder, "*.parquet")))
    frame = frame.sort_values("ingested_at").drop_duplicates(["meter_id", "ts"], keep="last")
    daily = frame.groupby("meter_id", as_index=False)["import_kwh"].sum()
    daily["date"] = folder.rsplit("=", 1)[1]
    parts.append(daily)
print(pd.concat(parts)["import_kwh"].sum())
"""

_DUCKDB_RUN = """
import sys, duckdb
con = duckdb.connect()
statements = sys.argv[1].split(";")
for sql in statements[:-2]:
    con.execute(sql)
print(con.execute(statements[-2]).fetchone()[0])
"""


def _warehouse_total(warehouse: Path) -> float:
    """The fleet's energy in the daily consumption mart Metrify built."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute("SELECT sum(import_kwh) FROM marts.fct_consumption_daily").fetchone()
    return float(row[0]) if row and row[0] is not None else -1.0


def _peers_python() -> str:
    """pandas lives in the peers' venv (bench/suite.py builds it), not in the project's."""
    from suite import ensure_peers_venv

    return str(ensure_peers_venv(lambda message: print(message, file=sys.stderr)))


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    import subprocess

    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took, done.stdout.strip()


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    with server_home(args.home, "metrify-batch-") as (home, url):
        url = os.environ.get("METRIFY_DATABASE_URL", url)
        lake = home / "lake"
        if not (lake / "readings" / "_delta_log").exists():
            size, readings, last = _build_lake(url, lake, args.gb, args.meters, args.corrected)
        else:
            size = _lake_bytes(lake / "readings")
            days = sorted((lake / "readings").glob("date=*"))
            last = dt.date.fromisoformat(days[-1].name.removeprefix("date="))
            readings = -1  # reused: not recounted
        env = {
            **os.environ,
            "METRIFY_DATABASE_URL": url,
            "METRIFY_HOME": str(home / "metrify"),
            "METRIFY_LAKE_URL": str(lake),
        }
        warehouse = home / "metrify" / "warehouse.duckdb"
        python = sys.executable
        metrify = [str(Path(python).parent / "metrify")]
        glob = str(lake / "readings" / "date=*" / "*.parquet")
        tools: dict[str, list[str]] = {
            "duckdb": [python, "-c", _DUCKDB_RUN, _DUCKDB.format(glob=glob)],
            "metrify": [*metrify, "batch", "run", "--date", last.isoformat(), "--job", "dbt"],
            "pandas": [_peers_python(), "-c", _PANDAS, str(lake / "readings")],
        }
        seconds: dict[str, list[float]] = {t: [] for t in tools}
        totals: dict[str, float] = {}
        for run in range(args.runs):
            for tool, command in tools.items():
                if tool == "pandas" and run >= args.pandas_runs:
                    continue
                warehouse.unlink(missing_ok=True)
                took, out = _timed(command, env)
                seconds[tool].append(took)
                totals[tool] = (
                    _warehouse_total(warehouse)
                    if tool == "metrify"
                    else float(out.splitlines()[-1])
                )
                print(f"run {run + 1}: {tool} {took:.1f} s", file=sys.stderr)
    rates = {t: size / 1e9 / (statistics.median(v) / 3600) for t, v in seconds.items() if v}
    return {
        "lake_bytes": size,
        "readings": readings,
        "meters": args.meters,
        "seconds": {t: stats(v) for t, v in seconds.items() if v},
        "gb_per_hour": rates,
        "share_of_duckdb": rates["metrify"] / rates["duckdb"],
        "fleet_kwh": totals,
        "targets": {"gb_per_hour": 100.0, "share_of_duckdb": 0.5},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["incremental", "throughput"])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--pandas-runs", type=int, default=1)
    parser.add_argument("--meters", type=int, default=None)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--corrected", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args(argv)
    if args.meters is None:
        args.meters = 1042 if args.part == "incremental" else 20_000
    result = incremental(args) if args.part == "incremental" else throughput(args)
    result["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["command"] = "bench/batch.py " + " ".join(argv or sys.argv[1:])
    result["machine"] = machine()
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    saved[args.part] = result
    RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
