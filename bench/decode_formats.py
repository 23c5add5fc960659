"""What decoding costs per text format of the same rows: ISO times and decimal points
(the London files as they are), decimal commas, day-first dates with dots, and a load
profile's date and time in two columns with each day's last interval ending at 24:00.

One batch of real London households (the first ``--files`` files, 207,196 rows for
12) is rewritten in each format and decoded with the pipeline's ``decode``; each
format's median over ``--runs`` alternating rounds is printed, with the rows read, so a
format that reads fewer rows shows it.

    .venv/bin/python bench/decode_formats.py [--files 12] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import polars as pl

from metrify.contracts.records import READING
from metrify.sources.decode import decode
from metrify.sources.mapping import build_mapping

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAPS = ["meter_id=LCLid", "ts=tstp", "import_kwh=energy(kWh/hh)"]


def formats(raw: pl.DataFrame) -> dict[str, pl.DataFrame]:
    times = pl.col("tstp").str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S%.f", strict=False)
    return {
        "as written (ISO, decimal point)": raw,
        "decimal comma": raw.with_columns(
            pl.col("energy(kWh/hh)").str.replace(".", ",", literal=True)
        ),
        "day-first dots (dd.mm.yyyy HH:MM)": raw.with_columns(
            times.dt.strftime("%d.%m.%Y %H:%M").alias("tstp")
        ),
        # interval ends, the day's last written as 24:00 of its own day (--ts-end)
        JOINED: raw.with_columns(
            ends := times + pl.duration(minutes=30),
            Datum=pl.when(ends.dt.hour() + ends.dt.minute() == 0)
            .then(ends - pl.duration(days=1))
            .otherwise(ends)
            .dt.strftime("%d.%m.%Y"),
            Uhrzeit=pl.when(ends.dt.hour() + ends.dt.minute() == 0)
            .then(pl.lit("24:00"))
            .otherwise(ends.dt.strftime("%H:%M")),
        ).drop("tstp"),
    }


#: the formats read with more than ``MAPS`` and ``--interval 1800``: ts from two
#: columns, marking interval ends
JOINED = "date and time apart, ends at 24:00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    files = sorted((SHARED / "london-smart-meters-2013").glob("*.csv.gz"))[: args.files]
    raw = pl.concat([pl.read_csv(f, infer_schema=False) for f in files])
    batches = formats(raw)
    mappings = {
        name: build_mapping(
            READING,
            maps=[*MAPS, "ts=Datum+Uhrzeit"] if name == JOINED else MAPS,
            interval_s=1800,
            ts_end=name == JOINED,
        )
        for name in batches
    }
    seconds: dict[str, list[float]] = {name: [] for name in batches}
    read: dict[str, int] = {}
    for name, batch in batches.items():  # a first, unmeasured round
        read[name] = decode(READING, batch, mappings[name]).records.height
    for _ in range(args.runs):
        for name, batch in batches.items():
            started = time.perf_counter()
            decode(READING, batch, mappings[name])
            seconds[name].append(time.perf_counter() - started)
    plain = statistics.median(seconds["as written (ISO, decimal point)"])
    print(f"{raw.height:,} rows, {len(files)} files, median of {args.runs} runs")
    for name, runs in seconds.items():
        median = statistics.median(runs)
        print(
            f"{name}: {median * 1000:.0f} ms ({median / plain:.1f}x),"
            f" {raw.height / median:,.0f} rows/s, {read[name]:,} read"
        )


if __name__ == "__main__":
    main()
