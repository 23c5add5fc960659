"""The lake's append against its merge, for one load-sized batch of real readings.

``Lake.write`` appends a batch ingested after every version the table holds and merges
any other (see ``docs/guides/lake.md``). This times both on the London households' year
(1.67M readings in the lake's columns), each into a fresh table: the append into an
empty one; the merge into one holding a single reading ingested after the batch (so no
file can be pruned by its statistics as older, and the write takes the merge). Run::

    PYTHONPATH=src:bench METRIFY_SHARED_DATA=../shared/data \\
        .venv/bin/python bench/lake_append.py --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from lake_format import load_london
from metrify.stores.lake import Lake


def timed(lake: Lake, frame: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    lake.write("readings", frame)  # type: ignore[arg-type]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    frame = load_london(100, 366).drop("date")
    later = frame.head(1).with_columns(
        ingested_at=frame["ingested_at"].max() + dt.timedelta(seconds=1)
    )
    figures: dict[str, list[tuple[float, float]]] = {"append": [], "merge": []}
    for _ in range(args.runs):
        for way in ("append", "merge"):
            root = Path(tempfile.mkdtemp(prefix="lake-append"))
            lake = Lake(str(root / "lake"))
            if way == "merge":
                lake.write("readings", later)
            figures[way].append(timed(lake, frame))
            ops = [c.operation for c in lake.history("readings", 1)]
            assert ops == (["WRITE"] if way == "append" else ["MERGE"]), ops
            shutil.rmtree(root, ignore_errors=True)
    print(f"{frame.height:,} readings, {args.runs} runs each, medians (min..max):")
    for way, runs in figures.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"  {way}: {statistics.median(walls):.2f} s wall ({min(walls):.2f}..{max(walls):.2f}),"
            f" {statistics.median(cpus):.2f} s CPU"
        )


if __name__ == "__main__":
    main()
