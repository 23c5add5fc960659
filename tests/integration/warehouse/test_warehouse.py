"""The warehouse on real data: three London households and a month of GB national demand
go through Metrify's normal ingest into PostgreSQL and the lake; dbt builds the marts on
DuckDB (the embedded default), on PostgreSQL, and on Snowflake's SQL through fakesnow.

Expected figures come straight from the raw CSVs with Polars, independently of Metrify's
readers, VEE and dbt. One build per target is shared by the module's tests (dbt's parse
alone takes seconds).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.batch import dbt
from metrify.cli import app
from metrify.settings import Settings, get_settings
from metrify.stores import warehouse
from metrify.stores.lake import Lake
from support.database import app_url, clear_tables
from support.fake_snowflake import snowflake_target
from support.realdata import LONDON_MAP, shared_data

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.slow,
    # fakesnow's own notice, on every result it hands dbt-snowflake
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result"),
]

HOUSEHOLDS = 3
#: the one household given a zone: its days are London days, the others' UTC days
ZONED = "Europe/London"
#: the reading corrected between the two DuckDB builds, and by how much
CORRECTED_TS = dt.datetime(2013, 6, 15, 12, 0, tzinfo=dt.UTC)
CORRECTION_KWH = 1.234
GRID_MONTH = (dt.datetime(2013, 1, 1), dt.datetime(2013, 2, 1))
NODE_CAPACITY_MW = 50_000.0
MART_SCHEMAS = ("staging", "intermediate", "marts")


@dataclass
class Loaded:
    settings: Settings
    root: Path
    files: list[Path]
    meters: list[str]
    corrected_meter: str
    old_value: float
    grid_csv: Path
    build_first: dbt.DbtResult
    build_second: dbt.DbtResult


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def raw_readings(files: list[Path]) -> pl.DataFrame:
    """The households' readings as a utility would count them: parseable finite values,
    the first of duplicate (meter, ts) rows, timestamps in UTC."""
    frame = pl.concat(
        pl.read_csv(f, schema_overrides={"energy(kWh/hh)": pl.String}) for f in files
    ).select(
        pl.col("LCLid").alias("meter_id"),
        pl.col("tstp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC").alias("ts"),
        pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False).alias("kwh"),
    )
    return frame.filter(pl.col("kwh").is_finite()).unique(
        ["meter_id", "ts"], keep="first", maintain_order=True
    )


def local_readings(loaded: Loaded) -> pl.DataFrame:
    """The raw readings with the correction applied and each meter's local time."""
    raw = raw_readings(loaded.files).with_columns(
        pl.when((pl.col("meter_id") == loaded.corrected_meter) & (pl.col("ts") == CORRECTED_TS))
        .then(pl.col("kwh") + CORRECTION_KWH)
        .otherwise(pl.col("kwh"))
        .alias("kwh")
    )
    return raw.with_columns(
        pl.when(pl.col("meter_id") == loaded.meters[0])
        .then(pl.col("ts").dt.convert_time_zone(ZONED).dt.replace_time_zone(None))
        .otherwise(pl.col("ts").dt.replace_time_zone(None))
        .alias("local")
    )


def expected_days(loaded: Loaded) -> dict[tuple[str, dt.date], float]:
    """kWh per meter and local day from the raw files, with the correction applied."""
    local = local_readings(loaded).with_columns(pl.col("local").dt.date().alias("day"))
    sums = local.group_by("meter_id", "day").agg(pl.col("kwh").sum())
    return {(m, d): k for m, d, k in sums.iter_rows()}


def expected_months(days: dict[tuple[str, dt.date], float]) -> dict[tuple[str, dt.date], float]:
    out: dict[tuple[str, dt.date], float] = {}
    for (meter, day), kwh in days.items():
        key = (meter, day.replace(day=1))
        out[key] = out.get(key, 0.0) + kwh
    return out


def expected_grid_peaks(grid_csv: Path) -> dict[dt.date, float]:
    frame = pl.read_csv(grid_csv).with_columns(
        pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.date().alias("day")
    )
    return dict(frame.group_by("day").agg(pl.col("ND").max()).iter_rows())


def _write_reference(root: Path, files: list[Path]) -> tuple[list[str], Path, Path]:
    meters = [f.name.split(".")[0] for f in files]
    tariffs = {}
    info = shared_data() / "london-weather" / "household_information.csv"
    with info.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["LCLid"] in meters:
                tariffs[row["LCLid"]] = row["stdorToU"]
    meter_csv = root / "meters.csv"
    lines = ["meter_id,region,node_id,tariff,timezone,status"]
    for i, meter in enumerate(meters):
        lines.append(f"{meter},london,GB,{tariffs[meter]},{ZONED if i == 0 else ''},active")
    meter_csv.write_text("\n".join(lines) + "\n")
    node_csv = root / "nodes.csv"
    node_csv.write_text(
        f"node_id,kind,name,capacity_mw\nGB,control_area,Great Britain,{NODE_CAPACITY_MW}\n"
    )
    return meters, meter_csv, node_csv


@pytest.fixture(scope="module")
def loaded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """Ingest, build on DuckDB, correct one reading, build again (incrementally)."""
    data = shared_data()
    root = tmp_path_factory.mktemp("warehouse")
    files = sorted((data / "london-smart-meters-2013").glob("*.csv.gz"))[:HOUSEHOLDS]
    assert len(files) == HOUSEHOLDS
    (gb_file,) = sorted((data / "gb-national-demand").glob("*.csv"))
    grid_csv = root / "gb-2013-01.csv"
    pl.read_csv(gb_file).filter(
        pl.col("TIMESTAMP").str.to_datetime("%Y-%m-%d %H:%M:%S").is_between(*GRID_MONTH, "left")
    ).write_csv(grid_csv)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METRIFY_DATABASE_URL", app_url(database_url))
        mp.setenv("METRIFY_DATABASE_OWNER_URL", database_url)
        mp.setenv("METRIFY_HOME", str(root / "home"))
        mp.setenv("METRIFY_LAKE_URL", str(root / "lake"))
        get_settings.cache_clear()
        clear_tables(database_url)
        settings = get_settings()
        meters, meter_csv, node_csv = _write_reference(root, files)
        run("ingest", "nodes", str(node_csv))
        run("ingest", "meters", str(meter_csv))
        run("ingest", "readings", *map(str, files), *LONDON_MAP)
        run(
            "ingest", "grid", str(grid_csv), "--map", "ts=TIMESTAMP", "--map", "load_mw=ND",
            "--set", "node_id=GB", "--interval", "1800",
        )  # fmt: skip
        first = dbt.build(settings)
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT import_kwh FROM readings WHERE meter_id = %s AND ts = %s",
                (meters[1], CORRECTED_TS),
            ).fetchone()
        assert row is not None
        old_value = float(row[0])
        fix = root / "correction.csv"
        fix.write_text(
            "LCLid,tstp,energy(kWh/hh)\n"
            f"{meters[1]},{CORRECTED_TS:%Y-%m-%d %H:%M:%S},{old_value + CORRECTION_KWH!r}\n"
        )
        run("ingest", "readings", str(fix), *LONDON_MAP)
        second = dbt.build(settings)
        yield Loaded(settings, root, files, meters, meters[1], old_value, grid_csv, first, second)
    get_settings.cache_clear()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for schema in MART_SCHEMAS:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _mart_days(rows: list[tuple[Any, ...]]) -> dict[tuple[str, dt.date], float]:
    return {(str(m), d): float(k) for m, d, k in rows}


def _assert_same(actual: dict[Any, float], expected: dict[Any, float]) -> None:
    assert actual.keys() == expected.keys()
    for key, kwh in expected.items():
        assert actual[key] == pytest.approx(kwh, rel=1e-9, abs=1e-9), key


def test_every_model_and_dbt_test_passes_on_duckdb(loaded: Loaded) -> None:
    for result in (loaded.build_first, loaded.build_second):
        assert result.success and result.target == "duckdb"
        assert not result.failures
    nodes = {n.name: n for n in loaded.build_second.nodes}
    # the custom energy-conservation tests ran and passed, on every energy mart
    conservation = [n for name, n in nodes.items() if name.startswith("energy_conservation")]
    assert len(conservation) >= 4 and all(n.status == "pass" for n in conservation)
    assert {"fct_consumption_daily", "fct_consumption_monthly", "fct_load_profile"} <= set(nodes)
    assert warehouse.warehouse_path(loaded.settings) == loaded.root / "home" / "warehouse.duckdb"
    assert {"fct_consumption_daily", "fct_grid_loading", "fct_quality_daily"} <= set(
        warehouse.marts(loaded.settings)
    )


def test_duckdb_daily_and_monthly_marts_equal_the_raw_files(loaded: Loaded) -> None:
    days = expected_days(loaded)
    daily = _mart_days(
        warehouse.query(
            loaded.settings,
            "SELECT meter_id, local_day, measured_kwh FROM marts.fct_consumption_daily",
        )
    )
    _assert_same(daily, days)
    monthly = _mart_days(
        warehouse.query(
            loaded.settings,
            "SELECT meter_id, local_month, measured_kwh FROM marts.fct_consumption_monthly",
        )
    )
    _assert_same(monthly, expected_months(days))
    # estimates fill the gaps on top of what was measured, never in place of it
    (bad,) = warehouse.query(
        loaded.settings,
        "SELECT count(*) FROM marts.fct_consumption_daily"
        " WHERE abs(import_kwh - measured_kwh - estimated_kwh) > 1e-9",
    )[0]
    assert bad == 0
    tariffs = dict(
        warehouse.query(
            loaded.settings,
            "SELECT meter_id, max(tariff) FROM marts.fct_consumption_daily GROUP BY 1",
        )
    )
    assert set(tariffs) == set(loaded.meters) and all(tariffs.values())


def test_a_corrected_reading_is_in_the_marts_once_with_its_new_value(loaded: Loaded) -> None:
    lake_versions = pl.from_arrow(Lake(loaded.settings.lake).arrow("readings").to_table()).filter(
        (pl.col("meter_id") == loaded.corrected_meter) & (pl.col("ts") == CORRECTED_TS)
    )
    assert isinstance(lake_versions, pl.DataFrame)
    # the lake holds both versions; the warehouse exactly one, the newer
    assert sorted(lake_versions["import_kwh"].to_list()) == pytest.approx(
        sorted([loaded.old_value, loaded.old_value + CORRECTION_KWH])
    )
    rows = warehouse.query(
        loaded.settings,
        "SELECT import_kwh FROM staging.stg_readings WHERE meter_id = ? AND ts = ?",
        [loaded.corrected_meter, CORRECTED_TS],
    )
    assert rows == [(pytest.approx(loaded.old_value + CORRECTION_KWH),)]
    stg = {n.name: n for n in loaded.build_second.nodes}["stg_readings"]
    assert stg.status == "success"
    # the corrected reading's UTC day is the only one the window runs over: the lake
    # holds one version per key on every other day, which pass straight through
    versioned = warehouse.query(loaded.settings, "SELECT date FROM lake.readings_versioned_days")
    assert versioned == [(CORRECTED_TS.date(),)]


def test_load_profile_by_season_and_hour_of_week(loaded: Loaded) -> None:
    seasons = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring"}
    seasons |= {6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
    local = local_readings(loaded).with_columns(
        pl.col("local").dt.month().replace_strict(seasons).alias("season"),
        # Int32 first: polars gives both as Int8, and 6 * 24 would overflow
        (
            (pl.col("local").dt.weekday().cast(pl.Int32) - 1) * 24
            + pl.col("local").dt.hour().cast(pl.Int32)
        ).alias("how"),
    )
    expected = {
        (m, s, h): (kwh, n)
        for m, s, h, kwh, n in local.group_by("meter_id", "season", "how")
        .agg(pl.col("kwh").sum(), pl.len())
        .iter_rows()
    }
    rows = warehouse.query(
        loaded.settings,
        "SELECT meter_id, season, hour_of_week, measured_kwh, measured_intervals"
        " FROM marts.fct_load_profile",
    )
    # hours a meter only ever has gap rows in carry no measured intervals
    actual = {(m, s, h): (kwh, n) for m, s, h, kwh, n in rows if n}
    assert actual.keys() == expected.keys()
    assert {(m, h) for m, _, h in actual} == {(m, h) for m in loaded.meters for h in range(168)}
    for key, (kwh, n) in expected.items():
        assert actual[key][1] == n, key
        assert actual[key][0] == pytest.approx(kwh, rel=1e-9, abs=1e-9), key
    # the day and hour of the week split hour_of_week (0 = Monday 00:00)
    split = warehouse.query(
        loaded.settings,
        "SELECT DISTINCT hour_of_week, day_of_week, hour_of_day FROM marts.fct_load_profile",
    )
    assert sorted(split) == [(h, h // 24, h % 24) for h in range(168)]


def test_grid_loading_is_the_node_load_against_its_capacity(loaded: Loaded) -> None:
    peaks = expected_grid_peaks(loaded.grid_csv)
    rows = warehouse.query(
        loaded.settings,
        "SELECT day, peak_load_mw, capacity_mw, peak_loading_pct, metered_kwh"
        " FROM marts.fct_grid_loading WHERE node_id = 'GB'",
    )
    assert {r[0]: r[1] for r in rows} == pytest.approx(peaks)
    for _day, peak, capacity, pct, metered in rows:
        assert capacity == NODE_CAPACITY_MW
        assert pct == pytest.approx(100 * peak / NODE_CAPACITY_MW)
        assert metered is not None and metered > 0  # the households hang off GB


def test_quality_mart_counts_intervals(loaded: Loaded) -> None:
    raw = raw_readings(loaded.files)
    per_meter = dict(raw.group_by("meter_id").len().iter_rows())
    present = dict(
        warehouse.query(
            loaded.settings,
            "SELECT meter_id, sum(present) FROM marts.fct_quality_daily GROUP BY 1",
        )
    )
    assert present == per_meter
    # every interval is present, a gap left missing, or a gap estimated
    (inconsistent,) = warehouse.query(
        loaded.settings,
        "SELECT count(*) FROM marts.fct_quality_daily"
        " WHERE present + missing + estimated <> intervals",
    )[0]
    assert inconsistent == 0


@pytest.fixture(scope="module")
def postgres_build(loaded: Loaded) -> dbt.DbtResult:
    """The same project on the store's PostgreSQL (the schema owner builds it)."""
    return dbt.build(loaded.settings, target="postgres")


def test_postgres_target_builds_the_same_marts(
    loaded: Loaded, postgres_build: dbt.DbtResult, database_url: str
) -> None:
    assert postgres_build.success and not postgres_build.failures
    assert postgres_build.target == "postgres"
    with psycopg.connect(database_url) as conn:
        daily = _mart_days(
            conn.execute(
                "SELECT meter_id, local_day, measured_kwh FROM marts.fct_consumption_daily"
            ).fetchall()
        )
        grid = dict(
            conn.execute(
                "SELECT day, peak_load_mw FROM marts.fct_grid_loading WHERE node_id = 'GB'"
            ).fetchall()
        )
    _assert_same(daily, expected_days(loaded))
    assert grid == pytest.approx(expected_grid_peaks(loaded.grid_csv))


@pytest.fixture(scope="module")
def snowflake_build(
    loaded: Loaded, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dbt.DbtResult, Any]]:
    """The project on the snowflake target, dbt-snowflake talking to fakesnow in-process
    (support.fake_snowflake: the landing tables hold what the real lake holds)."""
    import snowflake.connector

    db_path = tmp_path_factory.mktemp("fakesnow")
    lake = Lake(loaded.settings.lake)
    with snowflake_target(db_path, lake, ("readings", "grid")) as settings:
        result = dbt.build(settings, target="snowflake")
        reader = snowflake.connector.connect(database="METRIFY", schema="MARTS")
        yield result, reader.cursor()
        reader.close()


def test_snowflake_sql_runs_on_fakesnow_and_gives_the_same_marts(
    loaded: Loaded, snowflake_build: tuple[dbt.DbtResult, Any]
) -> None:
    result, cur = snowflake_build
    assert result.target == "snowflake"
    assert result.success and not result.failures, [(n.name, n.message) for n in result.failures]
    cur.execute("select meter_id, local_day, measured_kwh from METRIFY.MARTS.FCT_CONSUMPTION_DAILY")
    _assert_same(_mart_days(cur.fetchall()), expected_days(loaded))
    cur.execute(
        "select import_kwh from METRIFY.STAGING.STG_READINGS where meter_id = %s and ts = %s",
        (loaded.corrected_meter, CORRECTED_TS),
    )
    assert cur.fetchall() == [(pytest.approx(loaded.old_value + CORRECTION_KWH),)]


def test_a_replaced_version_the_store_does_not_name_fails_the_build(loaded: Loaded) -> None:
    """Passing a day through relies on the lake holding the store's rows and history and
    nothing more (what `metrify lake verify` checks). A second version on a day the
    history does not name breaks that, and the build says so (the staging key test; on
    DuckDB it reads the rollup the marts are built from, so the build selects staging and
    what follows it) instead of counting the reading twice. Last in the module: it
    rebuilds the views."""
    mine = raw_readings(loaded.files).filter(pl.col("meter_id") == loaded.meters[0])
    meter, ts, kwh = mine.row(0)
    assert ts.date() != CORRECTED_TS.date()
    lake = Lake(loaded.settings.lake)
    day = lake.read_day("readings", ts.date())
    assert day is not None
    one = day.filter((pl.col("meter_id") == meter) & (pl.col("ts") == ts))
    assert one.height == 1
    stray = one.with_columns(
        pl.col("ingested_at") + dt.timedelta(days=1), import_kwh=pl.lit(kwh + 5.0)
    )
    lake.write("readings", stray)
    try:
        with pytest.raises(dbt.DbtError) as failed:
            dbt.build(loaded.settings, select="stg_readings+")
        assert failed.value.result is not None
        names = [n.name for n in failed.value.result.failures]
        assert any(name.startswith("unique_readings_by_day") for name in names), names
    finally:
        lake.replace_day("readings", ts.date(), day)
        assert dbt.build(loaded.settings, select="stg_readings+").success
