"""A real London household's two months as a US utility's Green Button feed (ESPI XML):
delivered energy in Wh, a rooftop system's received energy (another household's values)
in tenths of a Wh, a few readings the utility estimated, and one reading without a value.
Loaded with no option but the meter's name, the store holds the households' values in
kWh at the feed's instants, the estimates marked; the empty reading is quarantined."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import london_readings

runner = CliRunner()
ESPI = 'xmlns="http://naesb.org/espi"'
BASE = "https://utility.example/DataCustodian/espi/1_1/resource/RetailCustomer/7/UsagePoint/3"
TYPES = "https://utility.example/DataCustodian/espi/1_1/resource/ReadingType"


def _entry(href: str, body: str, related: str | None = None) -> str:
    link = f'<link href="{href}" rel="self"/>'
    if related:
        link += f'<link href="{related}" rel="related"/>'
    return f"<entry>{link}<content>{body}</content></entry>"


def _readings(frame: pl.DataFrame, scale: int, estimated: set[dt.datetime]) -> str:
    out = []
    for ts, kwh in frame.select("ts", "import_kwh").iter_rows():
        quality = "<ReadingQuality><quality>8</quality></ReadingQuality>" if ts in estimated else ""
        period = f"<duration>1800</duration><start>{int(ts.timestamp())}</start>"
        value = round(kwh * scale)
        out.append(f"<IntervalReading>{quality}<timePeriod>{period}</timePeriod>"
                   f"<value>{value}</value></IntervalReading>")  # fmt: skip
    return "".join(out)


def test_a_green_button_feed_of_a_real_household_loads_in_kwh(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    homes = london_readings(first=2)
    ids = homes["meter_id"].unique(maintain_order=True).to_list()
    window = pl.col("ts") < dt.datetime(2013, 3, 1, tzinfo=dt.UTC)
    home = homes.filter((pl.col("meter_id") == ids[0]) & window)
    solar = homes.filter((pl.col("meter_id") == ids[1]) & window)
    estimated = set(home["ts"].to_list()[100:106])
    missing = dt.datetime(2013, 3, 1, tzinfo=dt.UTC)  # a reading the feed gives no value
    empty = (
        f"<IntervalReading><timePeriod><duration>1800</duration>"
        f"<start>{int(missing.timestamp())}</start></timePeriod></IntervalReading>"
    )
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        + _entry(BASE, f"<UsagePoint {ESPI}><ServiceCategory><kind>0</kind></ServiceCategory>"
                 "</UsagePoint>")
        + _entry(f"{BASE}/MeterReading/1", f"<MeterReading {ESPI}/>", f"{TYPES}/1")
        + _entry(f"{BASE}/MeterReading/2", f"<MeterReading {ESPI}/>", f"{TYPES}/2")
        + _entry(f"{TYPES}/1", f"<ReadingType {ESPI}><flowDirection>1</flowDirection>"
                 "<intervalLength>1800</intervalLength><powerOfTenMultiplier>0"
                 "</powerOfTenMultiplier><uom>72</uom></ReadingType>")
        + _entry(f"{TYPES}/2", f"<ReadingType {ESPI}><flowDirection>19</flowDirection>"
                 "<intervalLength>1800</intervalLength><powerOfTenMultiplier>-1"
                 "</powerOfTenMultiplier><uom>72</uom></ReadingType>")
        + _entry(f"{BASE}/MeterReading/1/IntervalBlock/1",
                 f"<IntervalBlock {ESPI}>{_readings(home, 1000, estimated)}{empty}</IntervalBlock>")
        + _entry(f"{BASE}/MeterReading/2/IntervalBlock/1",
                 f"<IntervalBlock {ESPI}>{_readings(solar, 10_000, set())}</IntervalBlock>")
        + "</feed>"
    )  # fmt: skip
    path = tmp_path / "Green_Button_Data.xml.gz"
    path.write_bytes(gzip.compress(feed.encode()))

    result = runner.invoke(
        app, ["ingest", "readings", str(path), "--set", "meter_id=GB-3", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["reasons"] == {"Green Button IntervalReading: no value": 1}
    rows = conn.execute(
        "SELECT ts, import_kwh, export_kwh, quality FROM readings"
        " WHERE meter_id = 'GB-3' AND quality & 1 = 0 ORDER BY ts"
    ).fetchall()
    both = home.join(solar.select("ts", export=pl.col("import_kwh")), on="ts", how="inner")
    assert [r[0] for r in rows] == both["ts"].to_list()
    for (ts, imp, exp, quality), want in zip(rows, both.iter_rows(named=True), strict=True):
        assert imp == pytest.approx(round(want["import_kwh"], 3), abs=1e-9)
        assert exp == pytest.approx(round(want["export"] * 10_000) / 10_000, abs=1e-9)
        assert bool(quality & 256) == (ts in estimated)
