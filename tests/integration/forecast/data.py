"""Real series for the forecast service's tests, loaded through ``metrify ingest`` as a
user would, and the same series read here from the files (not through Metrify's code)
to compute expected values independently.

* GB national demand (node ``GB``, MW, half-hourly): the months :data:`GB_FROM` to
  :data:`GB_TO`;
* three London households (meters on feeder ``F1``, regions north/north/south, tariff
  ``Std``), January to March 2013, linked to weather station ``LDN``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from metrify.cli import app
from support.realdata import LONDON_MAP, shared_data

runner = CliRunner()
GB_FROM = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
GB_TO = dt.datetime(2013, 5, 1, tzinfo=dt.UTC)
LONDON_FROM = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
LONDON_TO = dt.datetime(2013, 4, 1, tzinfo=dt.UTC)
REGIONS = ("north", "north", "south")
GB_MAP = ["--set", "node_id=GB", "--map", "ts=TIMESTAMP", "--map", "load_mw=ND",
          "--interval", "1800"]  # fmt: skip


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def gb_series() -> pl.DataFrame:
    """GB national demand ND from the file as (ts UTC, value MW), in the loaded range."""
    (source,) = sorted((shared_data() / "gb-national-demand").glob("*.csv"))
    return (
        pl.read_csv(source, columns=["TIMESTAMP", "ND"])
        .select(
            pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC").alias("ts"),
            pl.col("ND").cast(pl.Float64).alias("value"),
        )
        .filter(pl.col("ts").is_between(GB_FROM, GB_TO, closed="left"))
        .unique("ts", keep="first")
        .sort("ts")
    )


def load_gb(tmp: Path) -> pl.DataFrame:
    """Load :func:`gb_series`'s months with ``metrify ingest grid``; returns the series."""
    (source,) = sorted((shared_data() / "gb-national-demand").glob("*.csv"))
    part = tmp / "gb.csv"
    pl.read_csv(source).filter(
        pl.col("TIMESTAMP")
        .str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC")
        .is_between(GB_FROM, GB_TO, closed="left")
    ).write_csv(part)
    run("ingest", "grid", str(part), *GB_MAP)
    return gb_series()


@dataclass
class Homes:
    meters: list[str]
    #: meter -> (ts UTC, kWh) of the distinct parseable readings in the loaded range
    kwh: dict[str, pl.DataFrame]


def _household(path: Path) -> pl.DataFrame:
    return (
        pl.read_csv(path, infer_schema=False)
        .select(
            pl.col("tstp").str.strip_chars().str.to_datetime(time_zone="UTC").alias("ts"),
            pl.col("energy(kWh/hh)")
            .str.strip_chars()
            .cast(pl.Float64, strict=False)
            .alias("value"),
        )
        .filter(pl.col("ts").is_between(LONDON_FROM, LONDON_TO, closed="left"))
        .drop_nulls()
        .unique("ts", keep="first")
        .sort("ts")
    )


def load_homes(tmp: Path, count: int = 3) -> Homes:
    """Register ``count`` London households and load their first quarter of 2013, and
    hourly London temperatures for station ``LDN``."""
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:count]
    meters = [p.name.split(".")[0] for p in files]
    meters_csv = tmp / "meters.csv"
    meters_csv.write_text(
        "meter_id,node_id,region,tariff,station_id,timezone\n"
        + "".join(f"{m},F1,{REGIONS[i % 3]},Std,LDN,Europe/London\n" for i, m in enumerate(meters))
    )
    run("ingest", "meters", str(meters_csv))
    parts = []
    kwh = {}
    for meter, path in zip(meters, files, strict=True):
        rows = pl.read_csv(path, infer_schema=False)
        part = tmp / f"{meter}.csv"
        rows.filter(
            pl.col("tstp")
            .str.strip_chars()
            .str.to_datetime(time_zone="UTC")
            .is_between(LONDON_FROM, LONDON_TO, closed="left")
        ).write_csv(part)
        parts.append(part)
        kwh[meter] = _household(path)
    run("ingest", "readings", *map(str, parts), *LONDON_MAP)
    weather = pl.read_csv(
        shared_data() / "london-weather" / "weather_hourly_darksky.csv",
        columns=["time", "temperature"],
    )
    temps = tmp / "weather.csv"
    weather.select(
        pl.lit("LDN").alias("station_id"),
        pl.col("time").alias("ts"),
        pl.col("temperature").alias("temperature_c"),
    ).filter(pl.col("ts").is_between(pl.lit("2012-12-01"), pl.lit("2013-05-01"))).write_csv(temps)
    run("ingest", "weather", str(temps))
    return Homes(meters, kwh)
