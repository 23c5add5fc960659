"""Micro-batch cost in the steady state, without Kafka: what bounds a stream worker.

Loads the first ``--warm-days`` of a simulated fleet through the pipeline (VEE history,
trusted detector baselines), then feeds the next day to one long-lived pipeline in
micro-batches of ``--batch`` readings in stream order (every meter's interval, then the
next), each as the worker gets it: one-record JSON messages read by the Kafka fast path,
decoded, validated, judged and handed to the background writer. Prints the median time
per batch of each step after the first ``--skip`` batches (the first reads the meters'
history and state), and the readings per second that one batch cycle allows. A worker
keeps up with a stream only while that figure is above the stream's rate.

    .venv/bin/python bench/microbatch.py [--meters 2000] [--warm-days 7] [--batch 5000]
        [--batches 20] [--skip 3] [--home DIR]

``--home`` keeps the embedded PostgreSQL and the warmed fleet between runs (the warm-up
is skipped when the folder already holds it); without it a temporary folder is used.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import polars as pl
import psycopg

from common import server_home
from ingest import reset
from metrify.contracts.records import GRID, READING
from metrify.pipeline.session import ingest_frames, open_session
from metrify.settings import Settings
from metrify.simulation import Fleet, FleetSpec
from metrify.sources.kafka import fast_rows_frame, frame_messages


def warmed(url: str, settings: Settings, fleet: Fleet, days: int) -> list[pl.DataFrame]:
    """The fleet's daily reading chunks, the first ``days`` stored (once per home)."""
    chunks = list(fleet.chunks())
    start = chunks[days][0]["ts"].min()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(DISTINCT meter_id) FROM readings").fetchone()
        ready = row is not None and row[0] == fleet.spec.meters
        if ready:  # what an earlier run streamed after the warm-up goes
            conn.execute("DELETE FROM readings WHERE ts >= %s", (start,))
            conn.execute("DELETE FROM reading_history")
            conn.execute("DELETE FROM anomalies")
    if not ready:
        reset(url)
        print(f"warming up: {days} days of {fleet.spec.meters} meters ...", flush=True)
        with open_session(settings) as session:
            ingest_frames(session, READING, [r for r, _ in chunks[:days]], source="warm-up")
            ingest_frames(session, GRID, [g for _, g in chunks[:days]], source="warm-up")
    return [r for r, _ in chunks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--warm-days", type=int, default=7)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--skip", type=int, default=3)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    with server_home(args.home, "mmb") as (home, url):
        settings = Settings(database_url=url, lake_url=str(home / "lake"))
        fleet = Fleet(
            FleetSpec(meters=args.meters, days=args.warm_days + 1, seed=7, fault_rate=0.0)
        )
        day = warmed(url, settings, fleet, args.warm_days)[args.warm_days]
        messages = [
            value
            for part in day.sort("ts", "meter_id").partition_by("ts", maintain_order=True)
            for _, value, _ in frame_messages(READING, part, max_records=1)
        ]
        steps: dict[str, list[float]] = {"read": [], "decode": [], "judge+write": [], "all": []}
        with open_session(settings) as session:
            pipeline = session.pipeline(READING, overlap=True)
            for i in range(args.batches):
                part = messages[i * args.batch : (i + 1) * args.batch]
                if not part:
                    break
                t0 = time.perf_counter()
                raw = fast_rows_frame(READING, part)
                assert raw is not None
                t1 = time.perf_counter()
                pipeline.submit(raw, source="bench:microbatch")
                t2 = time.perf_counter()
                pipeline.flush()
                t3 = time.perf_counter()
                for name, took in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                    steps[name].append(took)
            pipeline.settle()
        kept = {name: values[args.skip :] or values for name, values in steps.items()}
        medians = {name: statistics.median(values) for name, values in kept.items()}
        print(
            f"{args.batch} readings of {args.meters} meters per batch, "
            f"{len(kept['all'])} batches after {args.skip}: "
            + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in medians.items())
        )
        print(f"one batch cycle allows {args.batch / medians['all']:,.0f} readings/s")


if __name__ == "__main__":
    main()
