"""EN 50160 counts on voltages and frequencies placed by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.analytics.grid import frequency_compliance, voltage_compliance

from .frames import T0

WEEK_10MIN = 1008


def _series(
    values: list[float], interval_s: int, col: str, start: dt.datetime = T0
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [start + dt.timedelta(seconds=i * interval_s) for i in range(len(values))],
            "interval_s": [interval_s] * len(values),
            col: values,
        },
        schema={"ts": pl.Datetime("us", "UTC"), "interval_s": pl.Int32, col: pl.Float64},
    )


def test_a_week_at_exactly_95_percent_passes_and_one_more_fails() -> None:
    # 1008 ten-minute values; 50 outside ±10% (5.0%) passes, 51 (5.06%) fails
    ok = [230.0] * WEEK_10MIN
    ok[:50] = [205.0] * 50  # -10.9%: outside ±10%, inside +10%/-15%
    bad = list(ok)
    bad[50] = 200.0  # -13%: outside ±10% yet inside +10/-15
    got = voltage_compliance(_series(ok, 600, "voltage_v"), "voltage_v", 230.0)
    (week,) = got.iter_rows(named=True)
    assert week["week"] == T0.date()
    assert week["values"] == WEEK_10MIN and week["coverage"] == pytest.approx(1.0)
    assert week["within_10"] == pytest.approx(1 - 50 / WEEK_10MIN)
    assert week["compliant"] is True and week["exact"] is True
    assert week["lv_all_compliant"] is True
    (week,) = voltage_compliance(_series(bad, 600, "voltage_v"), "voltage_v", 230.0).iter_rows(
        named=True
    )
    assert week["compliant"] is False
    assert week["within_lv_all"] == pytest.approx(1.0)
    assert week["min_v"] == 200.0


def test_one_minute_values_are_aggregated_as_rms_over_ten_minutes() -> None:
    # per 10 minutes: 5 minutes at 200 V, 5 at 260 V -> rms sqrt((200²+260²)/2) = 231.9 V
    values = ([200.0] * 5 + [260.0] * 5) * 6
    got = voltage_compliance(_series(values, 60, "voltage_v"), "voltage_v", 230.0)
    (week,) = got.iter_rows(named=True)
    assert week["values"] == 6
    assert week["min_v"] == pytest.approx(((200**2 + 260**2) / 2) ** 0.5)
    assert week["within_10"] == 1.0 and week["exact"] is True


def test_half_hour_means_stand_for_three_values_and_are_not_exact() -> None:
    got = voltage_compliance(_series([11.0, 12.5], 1800, "voltage_kv"), "voltage_kv", 11.0)
    (week,) = got.iter_rows(named=True)
    assert week["values"] == 6 and week["exact"] is False
    assert week["within_10"] == pytest.approx(0.5)  # 12.5 kV is +13.6%


def test_per_meter_weeks_with_a_nominal_column() -> None:
    frame = pl.concat(
        [
            _series([230.0] * 3, 600, "voltage_v").with_columns(meter_id=pl.lit("A")),
            _series([230.0, 230.0, 300.0], 600, "voltage_v").with_columns(meter_id=pl.lit("B")),
        ]
    ).with_columns(nominal=pl.lit(230.0))
    got = voltage_compliance(frame, "voltage_v", pl.col("nominal"), keys=("meter_id",))
    assert got["meter_id"].to_list() == ["A", "B"]
    assert got["within_10"].to_list() == pytest.approx([1.0, 2 / 3])


def test_frequency_year_shares_by_time() -> None:
    # 1000 one-minute means: 4 below 49.5 Hz (one at 46.9 Hz, below -6%)
    values = [50.0] * 996 + [49.4, 49.3, 49.45, 46.9]
    (year,) = frequency_compliance(_series(values, 60, "frequency_hz"))
    assert year.year == 2025
    assert year.within_1pct == pytest.approx(0.996)
    assert year.within_4_6pct == pytest.approx(0.999)
    assert year.compliant_995 is True and year.compliant_all is False
    assert year.proven_outside_1pct_hours == pytest.approx(4 / 60)
    assert year.coverage == pytest.approx(1000 * 60 / (365 * 86400))
    assert frequency_compliance(_series([], 60, "frequency_hz")) == []
