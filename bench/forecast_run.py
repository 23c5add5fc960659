"""How long the forecast service takes: day-ahead forecasts with P10/P50/P90 for a fleet
of meters, and for the fleet and every grid node (issue 22's targets: 3,500 meters,
every node and the fleet in under 5 minutes; the fleet and the nodes alone in under 10 s).

The store is seeded straight in SQL (``generate_series``, as ``bench/batch.py`` does),
not through the pipeline: what is measured is the forecast, not a load. ``--meters``
meters (default 3,500) over 40 feeders, 4 regions and 2 tariffs, each with ``--days``
(default 56) of 30-minute readings shaped like households (a morning and an evening
peak, weekends higher, a scale per meter, noise); the aggregates are then built once.
GB national demand over the same weeks is loaded for node ``GB`` from
``../shared/data/gb-national-demand/`` (a real series among the nodes). Then timed, each
as its own process (``--runs`` times, median with min and max):

* ``metrify forecast run --all-nodes --issue T``: the fleet and the 41 nodes, one model
  trained across them (the batch job's way);
* ``metrify forecast run --all-meters --issue T``: every meter, one model across them;
* ``metrify batch run --date D --job forecast``: the job, both of the above and the
  run log, issued at the end of day D (= T);
* with ``--per-node``, once: each node and the fleet forecast on its own (a model fit
  per subject, as ``metrify forecast run --node X`` does), for comparison.

Each run is checked: 48 targets per subject, P10 <= P50 <= P90, one issue.

    .venv/bin/python bench/forecast_run.py [--meters 3500] [--days 56] [--runs 1]
        [--per-node] [--home DIR]

Uses a private embedded PostgreSQL in a temp folder (``--home`` keeps it, and a store
seeded to the same size is reused). Results: ``bench/results/forecast-run.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

from common import machine, run_child, server_home, stats

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS = ROOT / "results" / "forecast-run.json"
#: the seeded weeks end where the issue is: a real GB demand stretch, GMT (London = UTC)
START = dt.date(2013, 1, 7)
FEEDERS = 40


def _shared_data() -> Path:
    return Path(os.environ.get("METRIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def _seed(url: str, meters: int, days: int) -> dict[str, Any]:
    """Meters, their readings and GB demand; the aggregates built. Reuses a store seeded
    to the same size."""
    from metrify.stores import aggregates

    end = START + dt.timedelta(days=days)
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM meters").fetchone()
        rows = conn.execute("SELECT count(*) FROM agg_meter_30m").fetchone()
        if have and rows and have[0] == meters and rows[0] == meters * days * 48:
            print("reusing the seeded store", file=sys.stderr)
            return {"reused": True}
        conn.execute(
            "TRUNCATE readings, reading_history, meters, grid_nodes, grid_measurements,"
            " agg_meter_30m, agg_group_30m, agg_dirty, agg_group_dirty, quality_daily,"
            " lake_outbox, forecasts"
        )
        conn.execute(
            "INSERT INTO grid_nodes (node_id, kind) SELECT 'F' || i, 'feeder'"
            " FROM generate_series(1, %s) i",
            (FEEDERS,),
        )
        conn.execute(
            "INSERT INTO meters (meter_id, region, node_id, tariff, interval_s, timezone)"
            " SELECT 'M' || lpad(i::text, 5, '0'), 'R' || (i %% 4), 'F' || (1 + i %% %s),"
            " CASE WHEN i %% 3 = 0 THEN 'tou' ELSE 'std' END, 1800, 'Europe/London'"
            " FROM generate_series(1, %s) i",
            (FEEDERS, meters),
        )
        month = dt.date(START.year, START.month, 1)
        while month < end:
            for table in ("readings", "grid_measurements"):
                conn.execute("SELECT metrify_ensure_partition(%s, %s)", (table, month))
            month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        print(f"seeding {meters * days * 48:,} readings ...", file=sys.stderr)
        t0 = time.perf_counter()
        for d in range(days):
            day = START + dt.timedelta(days=d)
            weekend = 1.25 if day.weekday() >= 5 else 1.0
            # a household's half-hour: base load, a morning and an evening bump, a scale
            # per meter (from its number) and noise
            conn.execute(
                "INSERT INTO readings (meter_id, ts, interval_s, import_kwh, quality, status,"
                " source, ingested_at)"
                " SELECT m.meter_id, %s + make_interval(secs => s * 1800), 1800,"
                " round(((0.08 + 0.25 * exp(-((s - 16) ^ 2) / 8.0) + 0.45 * exp(-((s - 37) ^ 2)"
                " / 12.0)) * %s * (0.5 + (hashtext(m.meter_id) & 1023) / 1023.0)"
                " * (0.85 + random() * 0.3))::numeric, 3), 0, 'valid', 'bench', now()"
                " FROM meters m CROSS JOIN generate_series(0, 47) s",
                (dt.datetime.combine(day, dt.time(), dt.UTC), weekend),
            )
        seeded = time.perf_counter() - t0
        _load_gb(conn, end)
        print(f"seeded in {seeded:.0f} s; building the aggregates ...", file=sys.stderr)
        t0 = time.perf_counter()
        aggregates.refresh(conn)
        built = time.perf_counter() - t0
        for table in ("readings", "agg_meter_30m", "agg_group_30m", "grid_measurements"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return {"reused": False, "seed_s": round(seeded, 1), "aggregates_s": round(built, 1)}


def _load_gb(conn: psycopg.Connection[Any], end: dt.date) -> None:
    """GB national demand ND (MW) for node GB over the seeded weeks, by COPY."""
    (source,) = sorted((_shared_data() / "gb-national-demand").glob("*.csv"))
    start = dt.datetime.combine(START, dt.time(), dt.UTC)
    stop = dt.datetime.combine(end, dt.time(), dt.UTC)
    frame = (
        pl.read_csv(source, columns=["TIMESTAMP", "ND"])
        .select(
            pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC").alias("ts"),
            pl.col("ND").alias("load_mw"),
        )
        .filter(pl.col("ts").is_between(start, stop, closed="left"))
        .unique("ts")
        .select(
            pl.lit("GB").alias("node_id"),
            "ts",
            pl.lit(1800).alias("interval_s"),
            "load_mw",
            pl.lit("bench").alias("source"),
        )
    )
    conn.execute("INSERT INTO grid_nodes (node_id, kind) VALUES ('GB', 'national')")
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY grid_measurements (node_id, ts, interval_s, load_mw, source)"
            " FROM STDIN (FORMAT csv)"
        ) as copy,
    ):
        copy.write(buffer.getvalue())


def _env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRIFY_")}
    env.update(
        METRIFY_DATABASE_URL=url,
        METRIFY_HOME=str(home / "home"),
        METRIFY_LAKE_URL=str(home / "lake"),
        METRIFY_FLEET_TIMEZONE="Europe/London",
        METRIFY_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO / "src"),
    )
    return env


def _metrify(*args: str) -> list[str]:
    return [sys.executable, "-W", "ignore", "-c", "from metrify.cli import main; main()", *args]


def _check(url: str, issue: dt.datetime, subjects: int, kinds: tuple[str, ...]) -> None:
    """Every subject of ``kinds`` forecast at ``issue`` by metrify: 48 ordered targets."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT (subject_type, subject_id)), count(*),"
            " bool_and(p10 <= p50 AND p50 <= p90) FROM forecasts"
            " WHERE issued_at = %s AND model = 'metrify' AND subject_type = ANY(%s)",
            (issue, list(kinds)),
        ).fetchone()
    assert row is not None
    found, rows, ordered = row
    assert (found, rows, ordered) == (subjects, subjects * 48, True), (row, subjects)


def _timed(label: str, command: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    seconds = []
    last: dict[str, Any] = {}
    for i in range(runs):
        print(f"{label}: run {i + 1} of {runs} ...", file=sys.stderr)
        last = run_child(command, env, quiet=True, timeout=1800)
        if last["status"] != 0:
            raise SystemExit(f"{label} failed: {last['stderr'][-3000:]}")
        seconds.append(last["seconds"])
        print(f"  {last['seconds']:.1f} s", file=sys.stderr)
    return {
        "seconds": stats(seconds),
        "runs": runs,
        "peak_rss_mib": round(last["peak_rss_mib"], 1),
        "stdout_tail": last["stdout"].strip().splitlines()[-1:] if last["stdout"] else [],
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=3500)
    parser.add_argument("--days", type=int, default=56)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--per-node", action="store_true", help="also each node on its own")
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    day = START + dt.timedelta(days=args.days - 1)  # the last seeded day: the job's interval
    issue = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    nodes = FEEDERS + 2  # the feeders, GB and the fleet
    out: dict[str, Any] = {
        "machine": machine(),
        "meters": args.meters,
        "days": args.days,
        "readings": args.meters * args.days * 48,
        "issue": issue.isoformat(),
        "horizon": "day-ahead",
        "quantiles": [0.1, 0.5, 0.9],
        "load_before": _load(),
    }
    with server_home(args.home, "mtfcr") as (folder, url):
        out["seed"] = _seed(url, args.meters, args.days)
        env = _env(url, folder)
        stamp = issue.isoformat()
        out["nodes_and_fleet"] = _timed(
            "forecast run --all-nodes",
            _metrify("forecast", "run", "--all-nodes", "--issue", stamp, "--json"),
            env,
            args.runs,
        )
        _check(url, issue, nodes, ("node", "fleet"))
        out["meters_run"] = _timed(
            "forecast run --all-meters",
            _metrify("forecast", "run", "--all-meters", "--issue", stamp, "--json"),
            env,
            args.runs,
        )
        _check(url, issue, args.meters, ("meter",))
        out["batch_job"] = _timed(
            "batch run --job forecast",
            _metrify("batch", "run", "--date", str(day), "--job", "forecast", "--json"),
            env,
            args.runs,
        )
        _check(url, issue, args.meters + nodes, ("meter", "node", "fleet"))
        if args.per_node:
            code = (
                "import datetime as dt, json, psycopg;"
                "from metrify.batch.forecasting import forecast_groups;"
                f"c = psycopg.connect({url!r}, autocommit=True);"
                f"b = forecast_groups(c, issue=dt.datetime.fromisoformat({stamp!r}),"
                " fleet_tz='Europe/London', pooled=False);"
                "print(json.dumps(b.as_dict()))"
            )
            out["nodes_and_fleet_per_node"] = _timed(
                "each node on its own",
                [sys.executable, "-W", "ignore", "-c", code],
                env,
                1,
            )
    out["load_after"] = _load()
    out["targets"] = {"all_s": 300, "nodes_and_fleet_s": 10}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
