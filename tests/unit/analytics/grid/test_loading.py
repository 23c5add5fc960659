"""Utilisation against capacity on loads whose answers are known by construction."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.analytics.grid import duration_curve, loading

from .frames import T0, node


def test_three_hours_at_ninety_percent_are_three_hours_above_80() -> None:
    # a day of half-hours at 50% of a 10 MW capacity, with 6 half-hours (3 h) at 90%
    loads: list[float | None] = [5.0] * 48
    loads[34:40] = [9.0] * 6
    got = loading(node(loads), 10.0)
    assert got.hours == pytest.approx(24.0)
    assert got.hours_above_80 == pytest.approx(3.0)
    assert got.hours_above_100 == pytest.approx(0.0)
    assert got.peak_mw == 9.0
    assert got.peak_ts == T0 + dt.timedelta(hours=17)
    assert got.headroom_mw == pytest.approx(1.0)
    assert got.peak_utilisation == pytest.approx(0.9)
    assert got.mean_mw == pytest.approx((42 * 5 + 6 * 9) / 48)
    assert got.load_factor == pytest.approx(got.mean_mw / 9.0)  # type: ignore[operator]
    # 3 of 24 hours are at 9 MW: the load met or exceeded 90% of the time is 5 MW ...
    assert loading(node(loads), 10.0, percentile=0.5).load_at_percentile_mw == 5.0
    # ... and the 0.9 quantile (21.6 h of 24 at or below) falls in the 9 MW hours
    q = loading(node(loads), 10.0, percentile=0.9)
    assert q.load_at_percentile_mw == 9.0
    assert q.headroom_at_percentile_mw == pytest.approx(1.0)


def test_overload_counts_time_strictly_above_capacity_by_duration() -> None:
    # 5-minute rows: 12 of them (1 h) at 110%, 6 (30 min) exactly at capacity
    loads: list[float | None] = [2.0] * 100 + [11.0] * 12 + [10.0] * 6
    got = loading(node(loads, interval_s=300), 10.0)
    assert got.hours_above_100 == pytest.approx(1.0)
    assert got.hours_above_80 == pytest.approx(1.5)
    assert got.headroom_mw == pytest.approx(-1.0)


def test_missing_loads_and_no_capacity() -> None:
    got = loading(node([1.0, None, 3.0]), None)
    assert got.missing == 1 and got.intervals == 2
    assert got.peak_mw == 3.0
    assert got.hours_above_80 is None and got.headroom_mw is None
    assert loading(node([None]), 5.0).peak_mw is None
    with pytest.raises(ValueError, match="percentile"):
        loading(node([1.0]), 5.0, percentile=0)


def test_duration_curve_is_sorted_and_weighted_by_time() -> None:
    # one hour at 4 MW then three hours at 2 MW: the curve holds 4 MW for the first
    # quarter of the time and 2 MW after
    frame = pl.concat(
        [node([4.0], interval_s=3600), node([2.0] * 3, 3600, T0 + dt.timedelta(hours=1))]
    )
    curve = duration_curve(frame, 8.0, points=5)
    assert curve["time_share"].to_list() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve["load_mw"].to_list() == [4.0, 2.0, 2.0, 2.0, 2.0]
    assert curve["hours"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert curve["utilisation"].to_list() == [0.5, 0.25, 0.25, 0.25, 0.25]


def test_a_node_without_measured_load_is_loaded_by_its_meters_sum() -> None:
    # an LV feeder without SCADA: two meters, 0.5 and 1.0 kWh per half-hour, one half-hour
    # at 2.0 + 2.5 kWh; capacity 10 kW. The answer was nulls with 0 hours.
    from metrify.analytics.grid.report import loading_answer

    from .frames import readings

    a = [0.5] * 48
    b = [1.0] * 48
    a[36], b[36] = 2.0, 2.5  # 18:00: (2.0 + 2.5) kWh / 0.5 h = 9 kW
    meters = readings({"A": a, "B": b})
    feeder = {"node_id": "F", "capacity_mw": 0.010}
    got = loading_answer(feeder, node([]), readings=meters)
    assert got["basis"] == "meters"
    assert got["hours"] == pytest.approx(24.0)
    assert got["peak_mw"] == pytest.approx(0.009)
    assert got["peak_ts"] == T0 + dt.timedelta(hours=18)
    assert got["peak_utilisation"] == pytest.approx(0.9)
    assert got["hours_above_80"] == pytest.approx(0.5)
    assert got["mean_mw"] == pytest.approx((47 * 3.0 + 9.0) / 48 / 1000)
    # a measured node keeps its own load, whatever its meters say
    measured = loading_answer(feeder, node([0.004] * 48), readings=meters)
    assert measured["basis"] == "node" and measured["peak_mw"] == pytest.approx(0.004)
