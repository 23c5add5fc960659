"""The lean context: VEE's verdicts on a batch are those of the whole stored context.

``run_vee`` with ``lean_context`` judges most meters on their last hours plus their
same-hour history. These tests judge the same batches both ways and require identical
output, on real London households (holes, zero runs, repeated values, two DST changes)
and on made-up meters that put each rule's reach-back exactly at the cut; where a rule
can see further back, the expected flag is stated from the input itself.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from metrify.contracts.records import READING, Quality
from metrify.quality.context import lean_context, reach_of
from metrify.quality.engine import run_vee
from metrify.settings.vee import VeeConfig
from support.realdata import shared_data

LEAN = VeeConfig()
WHOLE = VeeConfig(lean_context=False)
UTC = dt.UTC
NOW = dt.datetime(2030, 1, 1, tzinfo=UTC)
CTX_SCHEMA = {**READING.schema, "quality": pl.Int32(), "status": pl.String(), "source": pl.String()}


def readings(
    meter: str, start: dt.datetime, values: list[float | None], interval_s: int = 900
) -> pl.DataFrame:
    """Rows of the reading contract, one per value, ``interval_s`` apart."""
    n = len(values)
    data: dict[str, list[object]] = {c: [None] * n for c in CTX_SCHEMA}
    data.update(
        meter_id=[meter] * n,
        ts=[start + dt.timedelta(seconds=interval_s * i) for i in range(n)],
        interval_s=[interval_s] * n,
        import_kwh=list(values),
        quality=[0] * n,
        status=["valid"] * n,
        source=["stored"] * n,
    )
    return pl.DataFrame(data, schema=CTX_SCHEMA)


def as_batch(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(*READING.fields).with_columns(source=pl.lit("batch"))


def judged_both_ways(
    batch: pl.DataFrame, context: pl.DataFrame, meters: pl.DataFrame
) -> pl.DataFrame:
    """The lean verdicts, after checking that they equal the whole context's."""
    lean = run_vee(batch, context, meters, LEAN, NOW).sort("meter_id", "ts")
    whole = run_vee(batch, context, meters, WHOLE, NOW).sort("meter_id", "ts")
    assert_frame_equal(lean, whole)
    return lean


def no_meters(ids: list[str], tz: str = "UTC") -> pl.DataFrame:
    return pl.DataFrame({"meter_id": ids, "timezone": [tz] * len(ids)})


T0 = dt.datetime(2025, 3, 20, tzinfo=UTC)
WEEK = 7 * 96


def household(n: int, seed: int) -> list[float | None]:
    """Quarter-hour use with a daily shape and noise, never two equal neighbours."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n) / 4.0
    shape = 0.08 + 0.06 * np.sin(2 * np.pi * (hours - 7) / 24) ** 2
    noise = rng.gamma(4.0, 0.01, size=n)
    return [round(float(v), 4) + i * 1e-7 for i, v in enumerate(shape + noise)]


def test_an_ordinary_stream_batch_is_judged_on_a_fraction_of_its_context() -> None:
    ids = [f"M{i}" for i in range(20)]
    history = pl.concat([readings(m, T0, household(WEEK, i)) for i, m in enumerate(ids)])
    nxt = T0 + dt.timedelta(minutes=15 * WEEK)
    batch = as_batch(
        pl.concat([readings(m, nxt, household(6, 100 + i)) for i, m in enumerate(ids)])
    )
    meters = no_meters(ids)
    lean = lean_context(batch, history, meters, LEAN)
    # dense tail (6 h flat line + 15 min, then one more interval) plus 5 of 24 hours a day
    assert lean.height < history.height * 0.35
    assert set(lean["meter_id"].unique()) == set(ids)
    judged_both_ways(batch, history, meters)


def test_a_zero_run_reaching_past_the_cut_is_judged_on_its_whole_length() -> None:
    # 44 h of zeros stored, 6 more in the batch: 50 h > zero_run_hours (48 h) only if
    # the run's start, far before the dense tail, is seen.
    values = household(WEEK - 176, 1) + [0.0] * 176
    history = readings("Z", T0, values)
    batch = as_batch(readings("Z", T0 + dt.timedelta(minutes=15 * WEEK), [0.0] * 24))
    meters = no_meters(["Z"])
    out = judged_both_ways(batch, history, meters)
    assert (out["quality"] & int(Quality.FLAT_LINE) != 0).all()
    assert lean_context(batch, history, meters, LEAN).height == history.height


def test_a_stuck_value_that_began_inside_the_tail_is_measured_there() -> None:
    # 5 h stuck in history + 2 h in the batch = 7 h > flat_line_hours: flagged; the run
    # starts within the dense tail, so the meter keeps the lean context.
    values = household(WEEK - 20, 2) + [0.42] * 20
    history = readings("F", T0, values)
    batch = as_batch(readings("F", T0 + dt.timedelta(minutes=15 * WEEK), [0.42] * 8))
    meters = no_meters(["F"])
    out = judged_both_ways(batch, history, meters)
    assert (out["quality"] & int(Quality.FLAT_LINE) != 0).all()
    assert lean_context(batch, history, meters, LEAN).height < history.height


def test_a_hole_before_the_batch_brings_back_the_whole_context_for_estimation() -> None:
    # The meter was silent for 10 h: its gap rows are estimated from like days a week back.
    values = household(WEEK, 3)
    history = readings("H", T0, values[: WEEK - 40])
    batch = as_batch(readings("H", T0 + dt.timedelta(minutes=15 * WEEK), household(4, 33)))
    meters = no_meters(["H"])
    out = judged_both_ways(batch, history, meters)
    gaps = out.filter(pl.col("import_kwh").is_null() | (pl.col("source") != "batch"))
    assert gaps.height == 40
    assert (gaps["quality"] & int(Quality.ESTIMATED) != 0).all()
    assert lean_context(batch, history, meters, LEAN).height == history.height


def test_a_spike_is_judged_against_the_same_hour_of_earlier_days() -> None:
    base = household(WEEK + 8, 4)
    history = readings("S", T0, base[:WEEK])
    spiky = base[WEEK:]
    spiky[3] = 6.0  # 24 kW for a quarter hour, against ~0.1 kWh
    batch = as_batch(readings("S", T0 + dt.timedelta(minutes=15 * WEEK), spiky))
    out = judged_both_ways(batch, history, no_meters(["S"]))
    flagged = out.filter(pl.col("quality") & int(Quality.SPIKE) != 0)
    assert flagged["import_kwh"].to_list() == [6.0]


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("Europe/London", 27),  # the spring change, 30 March 2025, in the week
        ("Asia/Kolkata", 27),  # UTC+5:30: a local hour spans two UTC hours
        ("Australia/Adelaide", 31),  # UTC+10:30 to +9:30 on 6 April 2025
        ("Europe/London", 10),  # no change: the same UTC hour only
    ],
)
def test_local_hours_across_a_dst_change_and_half_hour_zones(tz: str, day: int) -> None:
    start = dt.datetime(2025, 3, day, tzinfo=UTC)
    ids = ["A", "B", "C"]
    history = pl.concat([readings(m, start, household(WEEK, 10 + i)) for i, m in enumerate(ids)])
    tail = [household(12, 20 + i) for i in range(3)]
    tail[1][5] = 4.0
    nxt = start + dt.timedelta(minutes=15 * WEEK)
    batch = as_batch(pl.concat([readings(m, nxt, tail[i]) for i, m in enumerate(ids)]))
    meters = no_meters(ids, tz)
    out = judged_both_ways(batch, history, meters)
    assert out.filter(pl.col("quality") & int(Quality.SPIKE) != 0)["meter_id"].to_list() == ["B"]
    # every stored row in a local hour of the batch is kept for the spike baseline
    zone = ZoneInfo(tz)
    hours = {t.astimezone(zone).hour for t in batch["ts"].to_list()}
    same_hour = {
        (m, t)
        for m, t in history.select("meter_id", "ts").iter_rows()
        if t.astimezone(zone).hour in hours
    }
    kept = set(lean_context(batch, history, meters, LEAN).select("meter_id", "ts").iter_rows())
    assert same_hour <= kept
    assert len(kept) < history.height / 2


def test_late_rows_and_stored_rows_after_the_batch_are_kept() -> None:
    # The batch fills an hour that history already holds readings after (a late file).
    values = household(WEEK, 5)
    stored = readings("L", T0, values)
    late = stored.slice(WEEK - 30, 4)
    history = stored.join(late.select("meter_id", "ts"), on=["meter_id", "ts"], how="anti")
    batch = as_batch(late.with_columns(pl.col("import_kwh") * 1.5))
    out = judged_both_ways(batch, history, no_meters(["L"]))
    assert out.height == 4


def test_daily_and_hourly_meters_keep_their_neighbours() -> None:
    daily = readings("D", T0, household(30, 6), interval_s=86_400)
    hourly = readings("HR", T0, household(WEEK // 4, 7), interval_s=3600)
    history = pl.concat([daily.slice(0, 29), hourly.slice(0, WEEK // 4 - 3)])
    batch = as_batch(pl.concat([daily.slice(29, 1), hourly.slice(WEEK // 4 - 3, 3)]))
    judged_both_ways(batch, history, no_meters(["D", "HR"]))


def london(files: int) -> pl.DataFrame:
    """The first ``files`` London households, as half-hourly readings in contract form."""
    paths = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:files]
    frames = []
    for path in paths:
        raw = pl.read_csv(path, schema_overrides={"energy(kWh/hh)": pl.String})
        frames.append(
            raw.select(
                meter_id=pl.col("LCLid"),
                ts=pl.col("tstp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC"),
                import_kwh=pl.col("energy(kWh/hh)")
                .str.strip_chars()
                .cast(pl.Float64, strict=False),
            )
        )
    frame = pl.concat(frames).unique(["meter_id", "ts"], keep="first")
    return frame.with_columns(interval_s=pl.lit(1800)).select(
        [
            pl.col(c).cast(t)
            if c in frame.columns or c == "interval_s"
            else pl.lit(None, t).alias(c)
            for c, t in READING.schema.items()
        ]
    )


@pytest.mark.realdata
@pytest.mark.parametrize("length", [dt.timedelta(hours=3), dt.timedelta(days=2)])
def test_real_households_through_a_year_of_stream_batches(length: dt.timedelta) -> None:
    """Twelve households, a batch every 11 days of 2013 (both DST changes, holidays,
    vacant weeks), each judged against its stored week both ways: three-hour stream
    batches, and two-day file batches whose every hour of the day is near."""
    data = london(12).with_columns(quality=pl.lit(0, pl.Int32), status=pl.lit("valid"))
    data = data.with_columns(source=pl.lit("stored"))
    meters = no_meters(data["meter_id"].unique().to_list(), "Europe/London")
    cut = dt.datetime(2013, 1, 9, 7, tzinfo=UTC)
    batches = whole_meters = 0
    while cut < dt.datetime(2014, 1, 1, tzinfo=UTC):
        end = cut + length
        history = data.filter(
            pl.col("ts").is_between(cut - dt.timedelta(days=7), cut, closed="left")
        )
        batch = as_batch(data.filter(pl.col("ts").is_between(cut, end, closed="left")))
        if batch.height:
            judged_both_ways(batch, history, meters)
            batches += 1
            lean = lean_context(batch, history, meters, LEAN)
            whole_meters += (
                lean.filter(~pl.col("_baseline_only"))
                .group_by("meter_id")
                .len()
                .join(history.group_by("meter_id").len(), on="meter_id")
                .filter(pl.col("len") == pl.col("len_right"))
                .height
            )
        cut += dt.timedelta(days=11, hours=5)
    assert batches >= 30
    assert whole_meters > 0, "the year holds holes and zero runs that need the whole context"


def test_a_batch_over_a_whole_day_keeps_older_rows_for_the_spike_baseline_only() -> None:
    """Every hour of the day is in a day-long batch: every older row stays, but those
    before the tail are only the spike rule's baseline, and the verdicts are unchanged."""
    history = readings("W", T0, household(WEEK, 8))
    start = T0 + dt.timedelta(minutes=15 * WEEK)
    values = household(96, 9)
    values[50] = 9.0  # a spike the week of same-hour history must show
    batch = as_batch(readings("W", start, values))
    meters = no_meters(["W"])
    reach = reach_of(batch, meters, LEAN, T0)
    assert len(reach.hours) == 24
    lean = lean_context(batch, history, meters, LEAN)
    assert lean.height == history.height
    tail = lean.filter(~pl.col("_baseline_only"))
    # the tail: the rows from flat_line_hours (plus one interval) before the batch on
    hours = LEAN.flat_line_hours + 0.25
    assert tail.height == int(hours * 4)
    assert tail["ts"].min() == start - dt.timedelta(hours=hours)
    out = judged_both_ways(batch, history, meters)
    spiked = out.filter((pl.col("quality") & int(Quality.SPIKE)) != 0)["ts"].to_list()
    assert spiked == [start + dt.timedelta(minutes=15 * 50)]
