"""The DST profile check on real data, without a store: London households (UTC, per
the dataset's README) read as London clock time are an hour off in summer and warned
about; the same readings written in London clock time with their offsets are not; a
Dutch home's year with UTC offsets is not; a Queensland month spans no change of
Australia/Sydney, so nothing can be said."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from metrify.contracts.records import GRID, READING
from metrify.contracts.summary import Summary
from metrify.sources.dstcheck import ProfileCheck, zone_changes
from metrify.sources.filechecks import FileChecks
from metrify.sources.files import read_batches
from metrify.sources.mapping import build_mapping
from support.realdata import shared_data

LONDON = ["meter_id=LCLid", "ts=tstp", "import_kwh=energy(kWh/hh)"]


def _warnings(contract, paths, *, rewrite=None, **options) -> list[str]:  # type: ignore[no-untyped-def]
    checks = FileChecks(contract, build_mapping(contract, interval_s=None, **options))
    for path in paths:
        for batch in read_batches(path, 200_000):
            if rewrite is not None:
                batch.data = rewrite(batch.data)
            for _ in checks.batches([batch]):
                pass
    summary = Summary(kind=contract.kind)
    checks.report(summary)
    return [w for w in summary.warnings if "DST changes" in w]


def _households() -> list[Path]:
    return sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:40]


def test_zone_changes_are_the_calendar_ones() -> None:
    # EU rule: last Sunday of March and of October at 01:00 UTC
    changes = zone_changes("Europe/London", 2013)
    assert [(c[0] // 1_000_000, c[1]) for c in changes] == [(1364691600, True), (1382835600, False)]
    assert zone_changes("Australia/Brisbane", 2025) == ()
    assert ProfileCheck.applies("Europe/London") and not ProfileCheck.applies("Australia/Brisbane")


def test_utc_households_read_as_london_clock_are_warned() -> None:
    warned = _warnings(READING, _households(), maps=LONDON, tz="Europe/London")
    assert len(warned) == 1
    assert "Europe/London" in warned[0] and "2013-03-31" in warned[0] and "2013-10-27" in warned[0]
    assert "pass --tz +00:00" in warned[0]


def test_the_same_households_in_london_clock_time_are_not() -> None:
    def local(data: pl.DataFrame) -> pl.DataFrame:
        return data.with_columns(
            tstp=pl.col("tstp")
            .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC")
            .dt.convert_time_zone("Europe/London")
            .dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
        )

    assert _warnings(READING, _households(), rewrite=local, maps=LONDON, tz="Europe/London") == []


def test_a_dutch_year_with_offsets_is_not() -> None:
    path = shared_data() / "dutch-home-hourly-2024" / "dsmrreader-data-export-hour.csv"
    maps = ["ts=Hour Start", "import_kwh=Electricity 1 (Dutch Users: Low Tariff)"]
    assert _warnings(READING, [path], maps=maps, sets=["meter_id=NL"], tz="Europe/Amsterdam") == []


def test_a_month_without_a_change_says_nothing() -> None:
    path = shared_data() / "aemo-5min" / "aemo_price_demand_202501_QLD.csv"
    maps = ["node_id=REGION", "ts=SETTLEMENTDATE", "load_mw=TOTALDEMAND"]
    checks = FileChecks(
        GRID, build_mapping(GRID, maps=maps, tz="Australia/Sydney", ts_end=True, interval_s=300)
    )
    for _ in checks.batches(read_batches(path, 200_000)):
        pass
    assert checks.profile is not None and checks.profile.shifts() == []
