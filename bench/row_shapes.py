"""What reading the row-per-value and XML shapes costs, beside the tools people use.

The real London households of 2013 are written in two shapes a head-end or a utility
sends, and each round times, in a fresh process (imports included):

* **a row per value** (``--channels``): every household's half-hours as OBIS channel
  ``1-0:1.29.0`` (import) and the next household's as ``1-0:2.29.0`` (export) of the
  same device, one value per row with a unit column, sorted by channel (the order that
  forces a reader to hold the whole file), gzipped CSV:

  - Metrify: ``read_batches`` with ``--channels obis=value+unit`` and decode, the rows a
    load hands the pipeline;
  - DuckDB: ``read_csv`` and ``PIVOT ... ON obis USING first(value)``, times parsed;
  - pandas (``bench/.peers-venv``): ``read_csv`` and ``pivot_table``, times parsed;

* **Green Button XML** (ESPI) of the first ``--xml-households`` households:

  - Metrify: ``read_batches`` and decode;
  - the floor of XML in Python: ``xml.etree.ElementTree.iterparse`` collecting each
    interval reading's start and value, nothing checked;

* **the same readings as the households' own CSV files**, Metrify's reader and decode,
  for the cost per reading of a plain table.

Medians over ``--runs`` rounds, the readers' order rotating each round.

    .venv/bin/python bench/row_shapes.py [--runs 3] [--out bench/results/row-shapes-DATE.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
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
PEERS = ROOT / ".peers-venv"
PEER_REQUIREMENTS = ROOT / "peers-requirements.txt"
ATOM = '<feed xmlns="http://www.w3.org/2005/Atom">'
ESPI = 'xmlns="http://naesb.org/espi"'
BASE = "https://u.example/espi/1_1/resource/RetailCustomer/1/UsagePoint"

METRIFY = """
import sys, time
from pathlib import Path
t = time.perf_counter()
from metrify.contracts.records import READING
from metrify.sources.decode import decode
from metrify.sources.files import read_batches
from metrify.sources.mapping import build_mapping
args = [a for a in sys.argv[2:] if not a.startswith("--channels=")]
channels = next((a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--channels=")), None)
mapping = build_mapping(READING, maps=args, channels=channels, interval_s=1800)
rows = 0
for path in sys.argv[1].split("|"):
    for b in read_batches(Path(path), **mapping.file_options):
        rows += decode(READING, b.data, mapping).records.height
print(time.perf_counter() - t, rows)
"""
DUCKDB = """
import sys, time
t = time.perf_counter()
import duckdb
con = duckdb.connect()
rows = con.execute(f'''
    SELECT count(*) FROM (
        SELECT device, timestamp::TIMESTAMPTZ AS ts, "1-0:1.29.0", "1-0:2.29.0" FROM (
            PIVOT (SELECT * FROM read_csv('{sys.argv[1]}', delim=';', header=true))
            ON obis IN ('1-0:1.29.0', '1-0:2.29.0') USING first(value) GROUP BY device, timestamp
        )
    )''').fetchone()[0]
print(time.perf_counter() - t, rows)
"""
PANDAS = """
import sys, time
t = time.perf_counter()
import pandas as pd
frame = pd.read_csv(sys.argv[1], sep=";")
wide = frame.pivot_table(index=["device", "timestamp"], columns="obis", values="value",
                         aggfunc="first").reset_index()
wide["timestamp"] = pd.to_datetime(wide["timestamp"], utc=True)
print(time.perf_counter() - t, len(wide))
"""
ETREE = """
import sys, time, gzip
t = time.perf_counter()
from xml.etree.ElementTree import iterparse
N = "{http://naesb.org/espi}"
starts, values = [], []
for _, elem in iterparse(gzip.open(sys.argv[1]), events=("end",)):
    if elem.tag == N + "IntervalReading":
        starts.append(int(elem.find(N + "timePeriod").find(N + "start").text))
        values.append(float(elem.find(N + "value").text))
        elem.clear()
print(time.perf_counter() - t, len(values))
"""


def households() -> pl.DataFrame:
    frames = [
        pl.read_csv(f, infer_schema=False).select(
            meter=pl.col("LCLid"),
            ts=pl.col("tstp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False),
            kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
        )
        for f in sorted(LONDON.glob("*.csv.gz"))
    ]
    return pl.concat(frames).drop_nulls().unique(["meter", "ts"]).sort("meter", "ts")


def write_channels(data: pl.DataFrame, path: Path) -> int:
    """Each household as a device's import, the next one's values as its export, a row
    per value, sorted by channel; the readings (device and time) the file holds."""
    meters = data["meter"].unique(maintain_order=True).to_list()
    following = dict(zip(meters, meters[1:] + meters[:1], strict=True))
    exports = data.with_columns(
        meter=pl.col("meter").replace_strict(following, return_dtype=pl.String)
    )
    stamp = pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = pl.concat(
        [
            part.select(
                device=pl.col("meter"),
                timestamp=stamp,
                obis=pl.lit(code),
                value=pl.col("kwh").round(3),
                unit=pl.lit("kWh"),
            )
            for part, code in ((data, "1-0:1.29.0"), (exports, "1-0:2.29.0"))
        ]
    )
    with gzip.open(path, "wb", compresslevel=6) as f:
        rows.write_csv(f, separator=";")
    # an export value with no import at its time makes no reading (import is required)
    return data.select("meter", "ts").unique().height


def write_espi(data: pl.DataFrame, path: Path, count: int) -> int:
    """The first ``count`` households as one Green Button feed; its interval readings."""
    meters = data["meter"].unique(maintain_order=True).to_list()[:count]
    parts = [ATOM]
    readings = 0
    for number, meter in enumerate(meters, 1):
        rows = data.filter(pl.col("meter") == meter)
        href = f"{BASE}/{number}"
        parts.append(f'<entry><link href="{href}/MeterReading/1" rel="self"/>'
                     f'<link href="{href}/ReadingType/1" rel="related"/>'
                     f"<content><MeterReading {ESPI}/></content></entry>")  # fmt: skip
        parts.append(f'<entry><link href="{href}/ReadingType/1" rel="self"/><content>'
                     f"<ReadingType {ESPI}><flowDirection>1</flowDirection><intervalLength>1800"
                     "</intervalLength><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72"
                     "</uom></ReadingType></content></entry>")  # fmt: skip
        body = "".join(
            f"<IntervalReading><timePeriod><duration>1800</duration><start>{s}</start>"
            f"</timePeriod><value>{round(v * 1000)}</value></IntervalReading>"
            for s, v in zip(rows["ts"].dt.epoch("s").to_list(), rows["kwh"].to_list(), strict=True)
        )
        readings += rows.height
        block = f"<IntervalBlock {ESPI}>{body}</IntervalBlock>"
        parts.append(f'<entry><link href="{href}/MeterReading/1/IntervalBlock/1" rel="self"/>'
                     f"<content>{block}</content></entry>")  # fmt: skip
    parts.append("</feed>")
    path.write_bytes(gzip.compress("".join(parts).encode(), compresslevel=6))
    return readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--xml-households", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shapes-bench-"))
    data = households()
    channels, feed = work / "headend.csv.gz", work / "green-button.xml.gz"
    readings = write_channels(data, channels)
    xml_readings = write_espi(data, feed, args.xml_households)
    peer = str(ensure_venv(PEERS, PEER_REQUIREMENTS, base_python(), print))
    src = str(ROOT.parent / "src")
    files = sorted(LONDON.glob("*.csv.gz"))
    maps = ["meter_id=LCLid", "ts=tstp", "import_kwh=energy(kWh/hh)"]
    chan = ["meter_id=device", "ts=timestamp", "--channels=obis=value+unit"]
    cases = {
        "row per value: Metrify (--channels, read + decode)": lambda: timed(
            sys.executable, METRIFY, str(channels), *chan, pythonpath=src
        ),
        "row per value: DuckDB read_csv + PIVOT": lambda: timed(
            sys.executable, DUCKDB, str(channels)
        ),
        "row per value: pandas read_csv + pivot_table": lambda: timed(peer, PANDAS, str(channels)),
        "the same households as their CSV files: Metrify (read + decode)": lambda: timed(
            sys.executable, METRIFY, "|".join(map(str, files)), *maps, pythonpath=src
        ),
        f"Green Button XML, {args.xml_households} households: Metrify (read + decode)": (
            lambda: timed(sys.executable, METRIFY, str(feed), pythonpath=src)
        ),
        f"Green Button XML, {args.xml_households} households: ElementTree iterparse": (
            lambda: timed(sys.executable, ETREE, str(feed))
        ),
    }
    seconds, rows = rotated_rounds(cases, args.runs)
    inputs = {
        "row per value": (2 * data.height, channels.stat().st_size, readings),
        "Green Button": (xml_readings, feed.stat().st_size, xml_readings),
    }
    lines = [
        f"# Reading a row per value and Green Button XML ({dt.date.today()})",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"`bench/row_shapes.py --runs {args.runs} --xml-households {args.xml_households}`. "
        f"The row-per-value file: {inputs['row per value'][0]:,} values of the 100 London "
        f"households of 2013 (import and another household's export per device, sorted by "
        f"channel), {inputs['row per value'][1] / 1e6:.1f} MB gzipped, "
        f"{inputs['row per value'][2]:,} readings. The Green Button feed: "
        f"{xml_readings:,} half-hours, {inputs['Green Button'][1] / 1e6:.1f} MB gzipped. "
        "Wall clock inside a fresh process (imports included), median (min..max).",
        "",
        "| reader | seconds | readings/s | rows out |",
        "| --- | --- | --- | --- |",
    ]
    timing_table(
        lines, seconds, lambda name, median: f"{rows[name] / median:,.0f} | {rows[name]:,}",
        args.out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
