"""The cost of one HTTP ingest request's pipeline, in-process: what bounds ``POST /v1/readings``.

``bench/api.py`` measures the server under wrk, where the load generator, PostgreSQL and
two server workers share the two cores; its figure moves with everything else on the
machine. This script runs what an ingest request runs, one request at a time and without
HTTP: a CSV body of ``--meters-per-body`` meters x ``--intervals`` readings is parsed as
the endpoint parses it and sent through a fresh pipeline (VEE history and detector state
read from PostgreSQL, validated, judged, written, anomalies recorded), as
``metrify.api.routers.ingest`` does for every request. The fleet (``--meters`` x
``--days`` at 15 minutes) is stored first, so each body continues its meters' history.
Prints the median wall time and process CPU per request after the first ``--skip``.

    .venv/bin/python bench/request.py [--meters 200] [--days 14] [--requests 40]
        [--skip 5] [--home DIR]

``--home`` keeps the embedded PostgreSQL and the stored fleet between runs (each run
moves the fleet's newest reading on by the bodies it sends).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import psycopg

from api import csv_body
from common import server_home
from ingest import reset
from metrify.api import bodies
from metrify.contracts.records import READING
from metrify.pipeline.session import ingest_frames, open_session
from metrify.settings import Settings
from metrify.simulation import Fleet, FleetSpec

STEP = dt.timedelta(minutes=15)


def stored(url: str) -> tuple[object, ...] | None:
    """(meters, newest ts) of the stored readings."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(DISTINCT meter_id), max(ts) FROM readings").fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--meters-per-body", type=int, default=10)
    parser.add_argument("--intervals", type=int, default=100)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--skip", type=int, default=5)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    with server_home(args.home, "mrq") as (_, url):
        settings = Settings(database_url=url, lake_enabled=False)
        row = stored(url)
        if row is None or row[0] != args.meters:
            reset(url)
            print(f"storing {args.meters} meters x {args.days} days ...", flush=True)
            fleet = Fleet(FleetSpec(meters=args.meters, days=args.days, seed=7, fault_rate=0.0))
            with open_session(settings) as session:
                ingest_frames(session, READING, fleet.readings(), source="bench:request")
            row = stored(url)
        assert row is not None and isinstance(row[1], dt.datetime)
        with psycopg.connect(url) as conn:
            ids = [r[0] for r in conn.execute("SELECT DISTINCT meter_id FROM readings ORDER BY 1")]
        groups = [
            ids[i : i + args.meters_per_body]
            for i in range(0, len(ids) - args.meters_per_body + 1, args.meters_per_body)
        ]
        first = row[1] + STEP
        wall: list[float] = []
        cpu: list[float] = []
        with open_session(settings) as session:
            for k in range(args.requests):
                block, group = divmod(k, len(groups))
                start = first + block * args.intervals * STEP
                data = csv_body(groups[group], start, k, args.intervals).encode()
                started, used = time.perf_counter(), time.process_time()
                pipeline = session.pipeline(READING)
                for part in bodies.parse("csv", data):
                    pipeline.submit(
                        part.frame,
                        source=f"bench:request:{k}",
                        first_line=part.first_line,
                        bad=part.bad,
                    )
                summary = pipeline.close(final=False)
                wall.append(time.perf_counter() - started)
                cpu.append(time.process_time() - used)
                if summary.accepted != len(groups[group]) * args.intervals:
                    raise SystemExit(f"request {k}: {summary.accepted} readings accepted")
        n = len(wall) - args.skip
        print(
            f"{args.meters_per_body * args.intervals} readings per request, {n} requests after "
            f"{args.skip}: median {statistics.median(wall[args.skip :]) * 1000:.0f} ms wall, "
            f"{statistics.median(cpu[args.skip :]) * 1000:.0f} ms CPU (all threads)"
        )


if __name__ == "__main__":
    main()
