"""Four real London households in June 2013 loaded through ``metrify ingest``, with a
feeder above them, and what a June report must say, computed here with Polars straight
from the files (never with Metrify's code).

Two households are on the standard tariff and two on time-of-use (as
household_information.csv says), one of each in region north and south. The files
are sliced from 30 May to 1 July so the report's month boundary is tested: the local
June of Europe/London (BST) is 31 May 23:00 to 30 June 23:00 UTC. Feeder F1 measures
1.05 times the households' summed demand, and its capacity puts June's peak at 95%.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from metrify.cli import app
from support.realdata import LONDON_MAP, shared_data

METERS = {
    "MAC000002": ("Std", "north"),
    "MAC000003": ("Std", "south"),
    "MAC000005": ("ToU", "north"),
    "MAC000015": ("ToU", "south"),
}
SLICE = (dt.datetime(2013, 5, 30, tzinfo=dt.UTC), dt.datetime(2013, 7, 2, tzinfo=dt.UTC))
JUNE = (dt.datetime(2013, 5, 31, 23, tzinfo=dt.UTC), dt.datetime(2013, 6, 30, 23, tzinfo=dt.UTC))
LOSSES = 1.05


@dataclass
class June:
    """Every reading of the slice (meter_id, ts UTC, kwh, tariff, region), F1's load
    per half-hour (ts, load_mw) and its capacity."""

    readings: pl.DataFrame
    load: pl.DataFrame
    capacity_mw: float

    def month(self) -> pl.DataFrame:
        """The readings of local June."""
        return self.readings.filter(pl.col("ts") >= JUNE[0], pl.col("ts") < JUNE[1])

    def month_load(self) -> pl.DataFrame:
        return self.load.filter(pl.col("ts") >= JUNE[0], pl.col("ts") < JUNE[1])


def _read(path: Path) -> pl.DataFrame:
    """A meter's file as (meter_id, ts, kwh): values padded with spaces, times UTC."""
    raw = pl.read_csv(path, infer_schema=False)
    raw = raw.rename({c: c.strip() for c in raw.columns})
    return raw.select(
        meter_id=pl.col("LCLid").str.strip_chars(),
        ts=pl.col("tstp")
        .str.strip_chars()
        .str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us")
        .dt.replace_time_zone("UTC"),
        kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
    )


def load_june(tmp: Path) -> June:
    """Slice the four files, register meters and feeder, load readings and the feeder."""
    folder = shared_data() / "london-smart-meters-2013"
    frames = []
    for meter in METERS:
        rows = _read(folder / f"{meter}.csv.gz").filter(
            pl.col("ts") >= SLICE[0], pl.col("ts") < SLICE[1]
        )
        rows.select(
            LCLid="meter_id",
            tstp=pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
            **{"energy(kWh/hh)": pl.col("kwh")},
        ).write_csv(tmp / f"{meter}.csv")
        frames.append(rows)
    readings = pl.concat(frames).with_columns(
        tariff=pl.col("meter_id").replace_strict({m: t for m, (t, _) in METERS.items()}),
        region=pl.col("meter_id").replace_strict({m: r for m, (_, r) in METERS.items()}),
    )
    load = readings.group_by("ts").agg(load_mw=pl.col("kwh").sum() * 2 / 1000 * LOSSES).sort("ts")
    june_peak = float(
        load.filter(pl.col("ts") >= JUNE[0], pl.col("ts") < JUNE[1])["load_mw"].max()  # type: ignore[arg-type]
    )
    capacity = round(june_peak / 0.95, 9)
    (tmp / "nodes.csv").write_text(
        f"node_id,parent_id,kind,capacity_mw,nominal_kv\nF1,,feeder,{capacity},0.4\n"
    )
    (tmp / "meters.csv").write_text(
        "meter_id,node_id,region,timezone,tariff\n"
        + "".join(f"{m},F1,{r},Europe/London,{t}\n" for m, (t, r) in METERS.items())
    )
    grid = ["node_id,ts,interval_s,load_mw"] + [
        f"F1,{ts:%Y-%m-%dT%H:%M:%SZ},1800,{mw!r}" for ts, mw in load.iter_rows()
    ]
    (tmp / "grid.csv").write_text("\n".join(grid) + "\n")
    runner = CliRunner()
    for args in (
        ["ingest", "nodes", str(tmp / "nodes.csv")],
        ["ingest", "meters", str(tmp / "meters.csv")],
        ["ingest", "grid", str(tmp / "grid.csv")],
        ["ingest", "readings", *(str(tmp / f"{m}.csv") for m in METERS), *LONDON_MAP],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    return June(readings, load, capacity)
