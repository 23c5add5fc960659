"""Batch-layer benchmarks: how fast the aggregates are right again after late data.

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["incremental"])
    parser.add_argument("--meters", type=int, default=1042)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args(argv)
    result = incremental(args)
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
