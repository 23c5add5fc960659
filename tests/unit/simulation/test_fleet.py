"""The fleet simulator: contracts, determinism, realism and exact fault labels.

Expectations are derived from the spec, the reference tables and the physics (energy =
power x time, feeders carry their meters), never copied from the simulator's output. A
clean twin (same seed, ``fault_rate=0``) is the yardstick for the faults.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Literal

import polars as pl
import pytest

from metrify.contracts import records
from metrify.simulation import Fleet, FleetSpec, write_fleet

KINDS = {"gap", "spike", "flat_line", "negative", "clock_shift", "duplicate", "rollover", "theft"}
WINTER = FleetSpec(meters=120, days=4, seed=11, fault_rate=0.0, start=dt.date(2025, 1, 6))
FAULTY = FleetSpec(meters=150, days=4, seed=11, fault_rate=0.6, start=dt.date(2025, 1, 6))


def _readings(fleet: Fleet) -> pl.DataFrame:
    return pl.concat(list(fleet.readings()))


def _grid(fleet: Fleet) -> pl.DataFrame:
    return pl.concat([grid for _, grid in fleet.chunks()])


def _rows(labels: pl.DataFrame, kind: str, interval_s: int) -> int:
    """Rows a set of labels covers: their total duration over the interval."""
    span = labels.filter(pl.col("kind") == kind).select(
        (pl.col("end") - pl.col("start")).dt.total_seconds().sum()
    )
    return int(span.item() or 0) // interval_s


def _num(value: object) -> float:
    """A polars scalar (mean, sum, min) as a float, for plain comparisons."""
    assert isinstance(value, int | float), value
    return float(value)


def _local(frame: pl.DataFrame) -> pl.DataFrame:
    local = pl.col("ts").dt.convert_time_zone("Europe/London")
    return frame.with_columns(hour=local.dt.hour(), weekday=local.dt.weekday())


@pytest.fixture(scope="module")
def clean() -> tuple[Fleet, pl.DataFrame]:
    fleet = Fleet(WINTER)
    return fleet, _readings(fleet)


@pytest.fixture(scope="module")
def faulty() -> tuple[Fleet, pl.DataFrame, pl.DataFrame]:
    fleet = Fleet(FAULTY)
    twin = Fleet(replace(FAULTY, fault_rate=0.0))
    return fleet, _readings(fleet), _readings(twin)


# --------------------------------------------------------------------------- contracts


def test_every_frame_has_the_contract_schema_exactly(clean: tuple[Fleet, pl.DataFrame]) -> None:
    fleet, readings = clean
    reading_chunk, grid_chunk = next(iter(fleet.chunks()))
    assert list(readings.schema.items()) == list(records.READING.schema.items())
    assert list(reading_chunk.schema.items()) == list(records.READING.schema.items())
    assert list(grid_chunk.schema.items()) == list(records.GRID.schema.items())
    assert list(fleet.weather().schema.items()) == list(records.WEATHER.schema.items())
    assert list(fleet.meters.schema.items()) == list(records.METER.schema.items())
    assert list(fleet.nodes.schema.items()) == list(records.NODE.schema.items())
    assert list(fleet.stations.schema.items()) == list(records.STATION.schema.items())
    assert fleet.labels().columns == ["meter_id", "kind", "start", "end", "detail"]
    assert fleet.labels().schema["start"] == records.TS


def test_reference_tables_are_consistent(clean: tuple[Fleet, pl.DataFrame]) -> None:
    fleet, _ = clean
    meters, nodes = fleet.meters, fleet.nodes
    assert meters.height == WINTER.meters
    assert meters["meter_id"].str.contains(records.ID_PATTERN).all()
    assert set(meters["status"]) == {"active"}
    assert set(meters["timezone"]) == {"Europe/London"}
    assert set(meters["register_digits"].to_list()) <= {5, 6}
    assert meters["register_digits"].to_list().count(6) > meters.height / 2
    assert (meters["max_kw"] > 5).all() and (meters["rated_current_a"] >= 60).all()
    kinds = dict(zip(nodes["node_id"], nodes["kind"], strict=True))
    parents = dict(zip(nodes["node_id"], nodes["parent_id"], strict=True))
    assert set(kinds.values()) == {"region", "substation", "feeder"}
    for node, kind in kinds.items():
        parent = parents[node]
        expected_parent = {"region": None, "substation": "region", "feeder": "substation"}[kind]
        assert (parent if parent is None else kinds[parent]) == expected_parent
    assert set(meters["node_id"]) <= {n for n, k in kinds.items() if k == "feeder"}
    assert set(meters["region"]) <= {n for n, k in kinds.items() if k == "region"}
    assert set(meters["station_id"]) <= set(fleet.stations["station_id"])
    assert fleet.stations.height == round(WINTER.meters / 50)
    assert sum(k == "feeder" for k in kinds.values()) == round(WINTER.meters / 25)


def test_invalid_spec_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        Fleet(FleetSpec(interval_s=7))
    with pytest.raises(ValueError, match="meters"):
        Fleet(FleetSpec(meters=0))
    with pytest.raises(ValueError, match="fault_rate"):
        FleetSpec(fault_rate=1.5)


# --------------------------------------------------------------------------- determinism


def test_same_spec_gives_identical_frames() -> None:
    spec = FleetSpec(meters=40, days=2, seed=5, fault_rate=0.5)
    one, two = Fleet(spec), Fleet(spec)
    for (r1, g1), (r2, g2) in zip(one.chunks(), two.chunks(), strict=True):
        assert r1.equals(r2)
        assert g1.equals(g2)
    assert one.labels().equals(two.labels())
    assert one.meters.equals(two.meters)
    assert one.weather().equals(two.weather())


def test_another_seed_gives_another_fleet() -> None:
    a = Fleet(FleetSpec(meters=40, days=1, seed=1))
    b = Fleet(FleetSpec(meters=40, days=1, seed=2))
    assert not _readings(a).equals(_readings(b))
    assert not a.meters.equals(b.meters)


def test_chunking_does_not_change_the_data() -> None:
    daily = Fleet(FleetSpec(meters=30, days=3, seed=4, fault_rate=0.0, chunk_days=1))
    whole = Fleet(FleetSpec(meters=30, days=3, seed=4, fault_rate=0.0, chunk_days=3))
    assert len(list(daily.chunks())) == 3
    assert len(list(whole.chunks())) == 1
    key = ["meter_id", "ts"]
    assert _readings(daily).sort(key).equals(_readings(whole).sort(key))


# --------------------------------------------------------------------------- volumes


def test_clean_fleet_has_one_reading_per_meter_and_interval(
    clean: tuple[Fleet, pl.DataFrame],
) -> None:
    fleet, readings = clean
    per_day = 86_400 // WINTER.interval_s
    assert fleet.expected_readings == WINTER.meters * WINTER.days * per_day
    assert readings.height == fleet.expected_readings
    assert readings.select(pl.struct("meter_id", "ts").n_unique()).item() == readings.height
    first = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
    assert readings["ts"].min() == first
    assert readings["ts"].max() == first + dt.timedelta(days=WINTER.days, seconds=-900)


def test_row_count_is_expected_minus_gaps_plus_duplicates(
    faulty: tuple[Fleet, pl.DataFrame, pl.DataFrame],
) -> None:
    fleet, readings, _ = faulty
    labels = fleet.labels()
    gaps = _rows(labels, "gap", FAULTY.interval_s)
    dups = _rows(labels, "duplicate", FAULTY.interval_s)
    assert gaps > 0 and dups > 0
    assert readings.height == FAULTY.meters * FAULTY.days * 96 - gaps + dups


@pytest.mark.parametrize("interval_s", [1800, 3600])
def test_longer_intervals_work(interval_s: int) -> None:
    fleet = Fleet(FleetSpec(meters=20, days=2, interval_s=interval_s, seed=3, fault_rate=0.0))
    readings = _readings(fleet)
    assert list(readings.schema.items()) == list(records.READING.schema.items())
    assert readings.height == 20 * 2 * 86_400 // interval_s
    assert set(readings["interval_s"].to_list()) == {interval_s}
    epoch_s = readings["ts"].dt.epoch("s")
    assert (epoch_s % interval_s == 0).all()
    # energy is average power times the interval
    kw = readings["import_kwh"] * 3600 / interval_s
    assert ((kw - readings["active_power_kw"]).abs() < 0.002).all()
    assert _grid(fleet).height == fleet.nodes.height * 2 * 86_400 // interval_s


# --------------------------------------------------------------------------- physics


def test_feeder_load_is_its_meters_import_plus_a_few_percent_losses(
    clean: tuple[Fleet, pl.DataFrame],
) -> None:
    fleet, readings = clean
    grid = _grid(fleet)
    meter_mw = (
        readings.join(fleet.meters.select("meter_id", "node_id"), on="meter_id")
        .group_by("node_id", "ts")
        .agg(metered_mw=(pl.col("import_kwh") * 3600 / WINTER.interval_s).sum() / 1000)
    )
    feeders = grid.join(meter_mw, on=["node_id", "ts"], how="inner")
    assert feeders["node_id"].n_unique() == fleet.meters["node_id"].n_unique()
    ratio = feeders["load_mw"] / feeders["metered_mw"]
    assert _num(ratio.min()) > 1.0
    assert _num(ratio.max()) < 1.07

    # substations and regions carry the sum of their children
    children = (
        grid.join(fleet.nodes.select("node_id", "parent_id"), on="node_id")
        .filter(pl.col("parent_id").is_not_null())
        .group_by("parent_id", "ts")
        .agg(pl.col("load_mw").sum().alias("children_mw"))
    )
    parents = grid.join(children, left_on=["node_id", "ts"], right_on=["parent_id", "ts"])
    assert parents.height == (fleet.nodes["kind"] != "feeder").sum() * WINTER.days * 96
    assert ((parents["load_mw"] - parents["children_mw"]).abs() < 1e-5).all()
    assert grid["frequency_hz"].is_between(49.8, 50.2).all()
    volts = grid.join(fleet.nodes.select("node_id", "nominal_kv"), on="node_id")
    assert ((volts["voltage_kv"] / volts["nominal_kv"]).is_between(0.95, 1.05)).all()


def test_faults_do_not_touch_the_grid_theft_stays_on_the_feeder(
    faulty: tuple[Fleet, pl.DataFrame, pl.DataFrame],
) -> None:
    fleet, _, _ = faulty
    twin = Fleet(replace(FAULTY, fault_rate=0.0))
    assert _grid(fleet).equals(_grid(twin))


def test_register_advances_by_each_interval_import(clean: tuple[Fleet, pl.DataFrame]) -> None:
    _, readings = clean
    steps = readings.sort("meter_id", "ts").with_columns(
        step=pl.col("register_kwh").diff().over("meter_id")
    )
    steps = steps.filter(pl.col("step").is_not_null())
    assert ((steps["step"] - steps["import_kwh"]).abs() < 1e-6).all()


def test_power_quality_values_are_plausible(clean: tuple[Fleet, pl.DataFrame]) -> None:
    _, readings = clean
    assert readings["voltage_v"].is_between(207.0, 253.0).all()  # 230 V -6 % / +10 %
    assert readings["power_factor"].is_between(0.9, 1.0).all()
    assert (readings["current_a"] >= 0).all() and (readings["import_kwh"] >= 0).all()
    freq = readings["frequency_hz"]
    assert 0 < freq.null_count() < readings.height  # only some meters report it
    assert freq.drop_nulls().is_between(49.7, 50.3).all()
    by_meter = readings.group_by("meter_id").agg(pl.col("frequency_hz").null_count())
    assert set(by_meter["frequency_hz"].to_list()) <= {0, WINTER.days * 96}


# --------------------------------------------------------------------------- realism


def test_households_peak_in_the_evening_not_at_night(clean: tuple[Fleet, pl.DataFrame]) -> None:
    fleet, readings = clean
    plain = fleet.meters.filter(
        ~pl.col("has_pv") & pl.col("tariff").is_in(["standard", "time-of-use"])
    )
    mean = (
        _local(readings.filter(pl.col("meter_id").is_in(plain["meter_id"].implode())))
        .group_by("hour")
        .agg(pl.col("import_kwh").mean())
    )
    by_hour = dict(zip(mean["hour"], mean["import_kwh"], strict=True))
    evening = sum(by_hour[h] for h in (18, 19, 20)) / 3
    night = sum(by_hour[h] for h in (2, 3, 4)) / 3
    assert evening > 1.8 * night


def test_businesses_work_weekday_daytime(clean: tuple[Fleet, pl.DataFrame]) -> None:
    fleet, readings = clean
    biz = fleet.meters.filter(pl.col("tariff").str.starts_with("business") & ~pl.col("has_pv"))
    assert biz.height > 0
    local = _local(readings.filter(pl.col("meter_id").is_in(biz["meter_id"].implode())))
    weekday = local.filter(pl.col("weekday") <= 5)
    day = weekday.filter(pl.col("hour").is_between(10, 15))["import_kwh"].mean()
    night = weekday.filter(pl.col("hour").is_between(1, 4))["import_kwh"].mean()
    assert isinstance(day, float) and isinstance(night, float)
    assert day > 2.0 * night


def test_pv_meters_export_at_midday_and_never_at_night() -> None:
    fleet = Fleet(
        FleetSpec(
            meters=80, days=3, seed=8, fault_rate=0.0, pv_share=0.5, start=dt.date(2025, 6, 16)
        )
    )
    meters = fleet.meters.select("meter_id", "has_pv", "tariff")
    readings = _readings(fleet).join(meters, on="meter_id")
    pv = readings.filter(pl.col("has_pv"))
    hour = pl.col("ts").dt.hour()
    midday = pv.filter(hour.is_between(11, 13))
    assert _num(midday["export_kwh"].mean()) > 0.05
    # a household's rooftop outproduces it at a June noon (a business may use it all)
    homes = midday.filter(~pl.col("tariff").str.starts_with("business"))
    best = homes.group_by("meter_id").agg(pl.col("export_kwh").max())["export_kwh"]
    assert best.len() > 10 and (best > 0).all()
    assert pv.filter(hour.is_between(0, 2))["export_kwh"].sum() == 0
    assert pv["export_kwh"].null_count() == 0
    assert readings.filter(~pl.col("has_pv"))["export_kwh"].null_count() == (
        readings.filter(~pl.col("has_pv")).height
    )
    daily_import = pv.group_by("meter_id").agg(pl.col("import_kwh").sum())
    assert (daily_import["import_kwh"] > 0).all()


def test_cold_weather_means_more_load() -> None:
    spec = FleetSpec(meters=60, days=3, seed=9, fault_rate=0.0)
    winter = Fleet(replace(spec, start=dt.date(2025, 1, 13)))
    summer = Fleet(replace(spec, start=dt.date(2025, 7, 14)))
    cold = _num(winter.weather()["temperature_c"].mean())
    warm = _num(summer.weather()["temperature_c"].mean())
    assert cold + 5 < warm
    winter_kwh = _num(_readings(winter)["import_kwh"].sum())
    assert winter_kwh > 1.3 * _num(_readings(summer)["import_kwh"].sum())


# --------------------------------------------------------------------------- faults


def test_every_label_kind_appears(faulty: tuple[Fleet, pl.DataFrame, pl.DataFrame]) -> None:
    fleet, _, _ = faulty
    labels = fleet.labels()
    assert set(labels["kind"]) == KINDS
    assert (labels["end"] > labels["start"]).all()
    faulty_meters = labels["meter_id"].n_unique()
    assert 0.4 * FAULTY.meters < faulty_meters < 0.8 * FAULTY.meters
    assert Fleet(FleetSpec(meters=50, days=2, fault_rate=0.0)).labels().height == 0


def test_rows_that_differ_from_the_clean_twin_are_exactly_the_labelled_ones(
    faulty: tuple[Fleet, pl.DataFrame, pl.DataFrame],
) -> None:
    fleet, readings, twin = faulty
    labels = fleet.labels().with_columns(
        offset=pl.col("detail").str.extract(r"offset_s=([+-]\d+)").cast(pl.Int64).fill_null(0)
    )
    columns = [c for c in readings.columns if c != "register_kwh"]  # see theft / rollover
    added = readings.select(columns).join(
        twin.select(columns), on=columns, how="anti", nulls_equal=True
    )
    lost = twin.select(columns).join(
        readings.select(columns), on=columns, how="anti", nulls_equal=True
    )
    assert added.height > 0 and lost.height > 0

    def uncovered(rows: pl.DataFrame, undo_shift: bool) -> int:
        shift = pl.duration(seconds=pl.col("offset")) if undo_shift else pl.duration(seconds=0)
        true_ts = pl.col("ts") - shift
        hits = (
            rows.select("meter_id", "ts")
            .join(labels, on="meter_id", how="left")
            .with_columns(inside=(true_ts >= pl.col("start")) & (true_ts < pl.col("end")))
        )
        per_row = hits.group_by("meter_id", "ts").agg(pl.col("inside").fill_null(False).any())
        return per_row.filter(~pl.col("inside")).height

    assert uncovered(added, undo_shift=True) == 0
    assert uncovered(lost, undo_shift=False) == 0


def test_each_fault_has_its_labelled_effect(
    faulty: tuple[Fleet, pl.DataFrame, pl.DataFrame],
) -> None:
    fleet, readings, twin = faulty
    step = dt.timedelta(seconds=FAULTY.interval_s)
    digits = dict(zip(fleet.meters["meter_id"], fleet.meters["register_digits"], strict=True))
    medians = dict(twin.group_by("meter_id").agg(pl.col("import_kwh").median()).iter_rows())
    for label in fleet.labels().iter_rows(named=True):
        meter, start, end = label["meter_id"], label["start"], label["end"]
        rows = readings.filter(pl.col("meter_id") == meter)
        inside = rows.filter(pl.col("ts").is_between(start, end, closed="left"))
        clean = twin.filter(
            (pl.col("meter_id") == meter) & pl.col("ts").is_between(start, end, closed="left")
        )
        n = (end - start) // step
        kind, detail = label["kind"], label["detail"]
        if kind == "gap":
            assert inside.height == 0 and detail == f"rows={n}"
        elif kind == "duplicate":
            assert inside.height == 2 * n
            assert inside.unique().height == n  # copies are identical
        elif kind == "spike":
            assert n == 1
            assert inside["import_kwh"].item() > 5 * medians[meter]
        elif kind == "negative":
            assert (inside["import_kwh"] < 0).all() and inside.height == n
        elif kind == "flat_line":
            assert inside["import_kwh"].n_unique() == 1 and inside.height == n
            assert inside["import_kwh"][0] == float(detail.removeprefix("value="))
        elif kind == "clock_shift":
            offset = dt.timedelta(seconds=int(detail.removeprefix("offset_s=")))
            moved = rows.join(
                clean.select("ts", "import_kwh").with_columns(pl.col("ts") + offset),
                on=["ts", "import_kwh"],
            )
            assert moved.height >= n
        elif kind == "theft":
            assert end == dt.datetime(2025, 1, 6, tzinfo=dt.UTC) + dt.timedelta(days=FAULTY.days)
            scale = float(detail.removeprefix("scale="))
            ratio = _num(inside["import_kwh"].sum()) / _num(clean["import_kwh"].sum())
            assert abs(ratio - scale) < 0.03
        elif kind == "rollover":
            assert detail == f"digits={digits[meter]}"
            ordered = rows.sort("ts").unique("ts", keep="first", maintain_order=True)
            before = ordered.filter(pl.col("ts") < start).tail(1)["register_kwh"].item()
            at = inside["register_kwh"][0]
            assert 0.9 * 10 ** digits[meter] < before - at <= 10 ** digits[meter]


def test_clean_registers_never_roll_over(clean: tuple[Fleet, pl.DataFrame]) -> None:
    _, readings = clean
    steps = readings.sort("meter_id", "ts").select(pl.col("register_kwh").diff().over("meter_id"))
    assert (steps.drop_nulls()["register_kwh"] >= 0).all()


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_fleet_streams_parts_and_reports_counts(
    tmp_path: Path, fmt: Literal["parquet", "csv"]
) -> None:
    spec = FleetSpec(meters=12, days=2, seed=2, fault_rate=0.5)
    fleet = Fleet(spec)
    seen: list[int] = []
    counts = write_fleet(fleet, tmp_path, fmt, progress=seen.append)
    readings = _readings(fleet)
    assert counts["readings"] == readings.height == sum(seen)
    assert len(seen) == spec.days
    assert counts["grid"] == fleet.nodes.height * 2 * 96
    assert counts["meters"] == 12 and counts["labels"] == fleet.labels().height
    assert counts["weather"] == fleet.stations.height * 2 * 24
    for name in ("meters", "nodes", "stations", "weather", "labels"):
        assert (tmp_path / f"{name}.{fmt}").is_file()
    parts = sorted((tmp_path / "readings").glob(f"part-*.{fmt}"))
    assert [p.name for p in parts] == [f"part-0000{i}.{fmt}" for i in range(spec.days)]
    if fmt == "parquet":
        back = pl.read_parquet(tmp_path / "readings")
        assert back.equals(readings)
    else:
        text = parts[0].read_text().splitlines()
        assert text[0].split(",") == list(records.READING.schema)
        assert text[1].split(",")[1].endswith("Z")
        back = pl.concat([pl.read_csv(p, try_parse_dates=True) for p in parts])
        assert back.height == readings.height
        assert back["ts"].dt.epoch("s").equals(readings["ts"].dt.epoch("s"))
    # a rerun replaces the parts rather than mixing with them
    write_fleet(Fleet(FleetSpec(meters=12, days=1, seed=2)), tmp_path, fmt)
    assert len(list((tmp_path / "readings").glob(f"part-*.{fmt}"))) == 1
