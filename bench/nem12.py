"""What reading a NEM12 file costs, beside the physical limit and the tool people use.

The 100 real London households (all of 2013) are written as one NEM12 file: an NMI per
household, a ``300`` record per day with its 48 half-hours (a day with missing
half-hours is of quality ``V``, its gaps marked ``N`` in ``400`` records). Each round
times, in a fresh process:

* **read the bytes**: the file read in 1 MiB blocks (the floor under any reader);
* **Metrify's reader**: ``read_batches`` to the end, the rows a load hands the pipeline;
* **Metrify's reader + decode**: the same, each batch decoded into contract records as
  a load's reading thread does;
* **nemreader** (PyPI ``nemreader``, in its own Python 3.12 venv ``bench/.nem12-venv``): its
  ``output_as_data_frames``, a pandas frame per NMI, the usual way to read NEM12 in
  Python;
* **the same rows as CSV**: Metrify's reader + decode of the households' own gzipped
  CSV files, for the cost per row of a plain table.

Medians over ``--runs`` rounds, the readers' order rotating each round.

    .venv/bin/python bench/nem12.py [--runs 5] [--out bench/results/nem12-DATE.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
from pathlib import Path

import polars as pl

from common import base_python, ensure_venv, rotated_rounds, timing_table
from common import timed_child as timed

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("METRIFY_SHARED_DATA", ROOT.parents[1] / "shared" / "data"))
LONDON = SHARED / "london-smart-meters-2013"
VENV = ROOT / ".nem12-venv"
REQUIREMENTS = ROOT / "nem12-peers-requirements.txt"
TRAILER = ",,,20140101000000,20140101000000"

READ_BYTES = """
import sys, time
t = time.perf_counter()
with open(sys.argv[1], "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
print(time.perf_counter() - t, 0)
"""
METRIFY_READ = """
import sys, time
t = time.perf_counter()
from metrify.sources.files import read_batches
rows = sum(b.data.height for b in read_batches(__import__("pathlib").Path(sys.argv[1])))
print(time.perf_counter() - t, rows)
"""
METRIFY_DECODE = """
import sys, time
from pathlib import Path
t = time.perf_counter()
from metrify.contracts.records import READING
from metrify.sources.decode import decode
from metrify.sources.files import read_batches
from metrify.sources.mapping import build_mapping
args = sys.argv[2:]
mapping = build_mapping(READING, maps=args, interval_s=1800 if args else None)
rows = 0
for path in sys.argv[1].split("|"):
    for b in read_batches(Path(path)):
        rows += decode(READING, b.data, mapping).records.height
print(time.perf_counter() - t, rows)
"""
NEMREADER = """
import sys, time
t = time.perf_counter()
import nemreader
frames = nemreader.output_as_data_frames(sys.argv[1])
rows = sum(len(df) for _, df in frames)
print(time.perf_counter() - t, rows)
"""


def write_nem12(path: Path) -> tuple[int, int]:
    """The London households as one NEM12 file; (intervals with a value, NMIs)."""
    frames = [
        pl.read_csv(f, infer_schema=False).select(
            meter=pl.col("LCLid"),
            ts=pl.col("tstp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False),
            kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
        )
        for f in sorted(LONDON.glob("*.csv.gz"))
    ]
    data = (
        pl.concat(frames)
        .drop_nulls()
        .unique(["meter", "ts"])
        .with_columns(
            day=pl.col("ts").dt.date(),
            slot=pl.col("ts").dt.hour() * 2 + pl.col("ts").dt.minute() // 30,
        )
        .sort("meter", "ts")
    )
    meters = data["meter"].unique(maintain_order=True).to_list()
    lines = ["100,NEM12,201401010000,MDPONE,RETAILER"]
    for number, ((meter,), part) in enumerate(data.group_by("meter", maintain_order=True), 1):
        lines.append(f"200,41{number:08d},E1,1,E1,N1,{meter},kWh,30,")
        for (day,), rows in part.group_by("day", maintain_order=True):
            values = ["0"] * 48
            have = [False] * 48
            for slot, kwh in zip(rows["slot"].to_list(), rows["kwh"].to_list(), strict=True):
                values[slot], have[slot] = f"{kwh:.3f}", True
            whole = all(have)
            lines.append(f"300,{day:%Y%m%d},{','.join(values)},{'A' if whole else 'V'}{TRAILER}")
            if not whole:
                for slot, ok in enumerate(have, 1):
                    lines.append(f"400,{slot},{slot},{'A' if ok else 'N'},,")
    lines.append("900")
    path.write_text("\n".join(lines) + "\n")
    return data.height, len(meters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nem12-bench-"))
    nem = work / "london-2013.nem12.csv"
    values, nmis = write_nem12(nem)
    peer = str(
        ensure_venv(VENV, REQUIREMENTS, base_python("3.12"), print)
    )  # nemreader 1 needs 3.12
    src = str(ROOT.parent / "src")
    csvs = "|".join(str(f) for f in sorted(LONDON.glob("*.csv.gz")))
    maps = ["meter_id=LCLid", "ts=tstp", "import_kwh=energy(kWh/hh)"]
    cases = {
        "read the bytes": lambda: timed(sys.executable, READ_BYTES, str(nem)),
        "Metrify's reader": lambda: timed(sys.executable, METRIFY_READ, str(nem), pythonpath=src),
        "Metrify's reader + decode": lambda: timed(
            sys.executable, METRIFY_DECODE, str(nem), pythonpath=src
        ),
        "nemreader (output_as_data_frames)": lambda: timed(peer, NEMREADER, str(nem)),
        "the same rows as CSV: Metrify's reader + decode": lambda: timed(
            sys.executable, METRIFY_DECODE, csvs, *maps, pythonpath=src
        ),
    }
    seconds, rows = rotated_rounds(cases, args.runs)
    size = nem.stat().st_size
    lines = [
        f"# Reading NEM12 ({dt.date.today()})",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"`bench/nem12.py --runs {args.runs}`. The file: the 100 London households of 2013 "
        f"as NEM12, {nmis} NMIs, {values:,} half-hours with a value, {size / 1e6:.1f} MB. "
        "Wall clock inside a fresh process (imports included), median (min..max).",
        "",
        "| reader | seconds | rows/s | rows out |",
        "| --- | --- | --- | --- |",
    ]

    def cells(name: str, median: float) -> str:
        if name == "read the bytes":
            return f" | {size:,} bytes"
        return f"{values / median:,.0f} | {rows[name]:,}"

    timing_table(lines, seconds, cells, args.out)


if __name__ == "__main__":
    main()
