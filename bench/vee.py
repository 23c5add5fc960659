"""VEE detection quality: are the simulator's injected faults found, end to end?

A simulated fleet with labelled faults goes through the real pipeline into PostgreSQL
(the same path as ``metrify simulate``); then, per fault kind, recall = labelled rows the
stored flags (or the duplicate counter, or quarantine) caught, and false-positive rate =
rows carrying that kind's flag outside any label of that kind, over all unlabelled rows.

    .venv/bin/python bench/vee.py [--meters 500] [--days 14] [--fault-rate 0.3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl
import psycopg

from metrify.contracts.records import METER, READING, Quality
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from metrify.simulation import Fleet, FleetSpec
from metrify.stores import database, embedded

RESULTS = Path(__file__).resolve().parent / "results"

#: fault kind -> the flag bits that count as catching it (None: counted another way)
CAUGHT_BY: dict[str, int | None] = {
    "gap": int(Quality.MISSING),
    "negative": int(Quality.OUT_OF_RANGE),
    "spike": int(Quality.SPIKE),
    # A stuck run shorter than the flat-line threshold still shows as a register that
    # moves while the intervals do not (the dead-meter signature).
    "flat_line": int(Quality.FLAT_LINE | Quality.REGISTER_MISMATCH),
    # Off-grid shifts land between intervals; whole-interval shifts stay on the grid and
    # show only at their edges (a gap where they left, conflicting duplicates where they land).
    "clock_shift (off-grid)": int(Quality.CLOCK),
    "clock_shift (whole intervals)": int(Quality.CLOCK | Quality.DUPLICATE),
    "rollover": int(Quality.REGISTER_ROLLOVER),
    "duplicate": None,
}
TARGET = {
    "gap": 0.95,
    "duplicate": 0.95,
    "negative": 0.95,
    "clock_shift (off-grid)": 0.95,
    "spike": 0.8,
    "flat_line": 0.8,
}


def label_rows(labels: pl.DataFrame, interval_s: int) -> pl.DataFrame:
    """Expand each label's [start, end) into one row per interval it covers."""
    return (
        labels.with_columns(
            ts=pl.datetime_ranges(
                pl.col("start"), pl.col("end"), interval=f"{interval_s}s", closed="left"
            )
        )
        .explode("ts")
        .select("meter_id", "kind", "detail", "ts")
    )


def shifted(rows: pl.DataFrame) -> pl.DataFrame:
    """Clock-shifted rows sit at ts + offset: that is where the reading arrives."""
    offset = pl.col("detail").str.extract(r"offset_s=([+-]?\d+)").cast(pl.Int64)
    return rows.with_columns(ts=pl.col("ts") + pl.duration(seconds=offset))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=500)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mv", dir="/tmp"))
    try:
        url = os.environ.get("METRIFY_DATABASE_URL") or embedded.start(
            work / "home", keep_running=False
        )
        database.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE readings, reading_history, meters, quarantine, quality_daily")
        settings = Settings(database_url=url, home=work / "home", lake_enabled=False)  # type: ignore[call-arg]
        spec = FleetSpec(
            meters=args.meters, days=args.days, seed=args.seed, fault_rate=args.fault_rate
        )
        fleet = Fleet(spec)
        with open_session(settings) as session:
            meters = session.pipeline(METER)
            meters.submit(fleet.meters, source="bench")
            meters.close()
            pipeline = session.pipeline(READING)
            for chunk in fleet.readings():
                pipeline.submit(chunk, source="bench")
            summary = pipeline.close()
            stored = pl.read_database(
                "SELECT meter_id, ts, quality FROM readings", session.conn
            ).with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
        labels = fleet.labels()
        rows = label_rows(labels, spec.interval_s)
        report: dict[str, dict[str, float]] = {}
        unlabelled = stored.join(
            rows.select("meter_id", "ts").unique(), on=["meter_id", "ts"], how="anti"
        )
        offset = pl.col("detail").str.extract(r"offset_s=([+-]?\d+)").cast(pl.Int64)
        off_grid = (offset % spec.interval_s) != 0
        for kind, bits in CAUGHT_BY.items():
            base = kind.split(" ")[0]
            mine = rows.filter(pl.col("kind") == base)
            if kind == "clock_shift (off-grid)":
                mine = mine.filter(off_grid)
            elif kind == "clock_shift (whole intervals)":
                mine = mine.filter(~off_grid)
            if not mine.height:
                continue
            if kind == "duplicate":
                extra = int(mine.height)  # each labelled interval was sent twice
                recall = min(summary.duplicates, extra) / extra
                report[kind] = {"labelled": extra, "recall": recall, "fpr": 0.0}
                continue
            assert bits is not None
            if base == "clock_shift":
                mine = shifted(mine)
            if kind == "rollover":
                mine = mine.group_by("meter_id").agg(pl.col("ts").min())  # the wrap interval
            hit = mine.join(stored, on=["meter_id", "ts"], how="left").with_columns(
                caught=(pl.col("quality").fill_null(0) & bits) != 0
            )
            caught = int(hit["caught"].sum())
            false_pos = unlabelled.filter((pl.col("quality") & bits) != 0).height
            report[kind] = {
                "labelled": mine.height,
                "recall": caught / mine.height,
                "fpr": false_pos / max(unlabelled.height, 1),
            }
        print(
            f"{stored.height:,} stored rows, {summary.gaps:,} gap rows, "
            f"{summary.estimated:,} estimated, {summary.duplicates:,} duplicates",
            file=sys.stderr,
        )
        print("| fault | labelled rows | recall | target | false-positive rate |")
        print("| --- | --- | --- | --- | --- |")
        for kind, r in report.items():
            target = TARGET.get(kind)
            print(
                f"| {kind} | {r['labelled']:,.0f} | {r['recall']:.3f} | "
                f"{'>= ' + str(target) if target else '-'} | {r['fpr']:.4%} |"
            )
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "vee.json").write_text(
            json.dumps(
                {
                    "spec": {
                        "meters": args.meters,
                        "days": args.days,
                        "fault_rate": args.fault_rate,
                        "seed": args.seed,
                        "at": dt.datetime.now(dt.UTC).isoformat(),
                    },
                    "results": report,
                },
                indent=2,
            )
            + "\n"
        )
        if not os.environ.get("METRIFY_DATABASE_URL"):
            embedded.stop(work / "home")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
