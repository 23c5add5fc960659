"""Feeder losses against meter energy: a complete day gives a loss, a day with a gap
says so instead of calling the gap a loss."""

from __future__ import annotations

import polars as pl
import pytest

from metrify.analytics.grid import losses

from .frames import node, readings

METERS = pl.DataFrame({"meter_id": ["A", "B"], "interval_s": [1800, 1800]})


def test_complete_day_loss_and_gap_day_flagged() -> None:
    # day 1: node 0.1 MW for 24 h = 2400 kWh; meters 2 x 48 x 24 kWh = 2304 -> 96 kWh lost
    # day 2: same node, but meter B misses 4 half-hours
    b: list[float | None] = [24.0] * 96
    b[50:54] = [None] * 4
    data = readings({"A": [24.0] * 96, "B": b})
    got = losses(node([0.1] * 96), data, METERS)
    d1, d2 = got.days.iter_rows(named=True)
    assert d1["node_kwh"] == pytest.approx(2400.0)
    assert d1["meters_kwh"] == pytest.approx(2304.0)
    assert d1["loss_kwh"] == pytest.approx(96.0)
    assert d1["loss_share"] == pytest.approx(0.04)
    assert d1["complete"] and d1["meters_missing"] == 0
    assert d2["complete"] is False
    assert d2["meters_missing"] == 1 and d2["missing_readings"] == 4
    assert d2["loss_kwh"] == pytest.approx(96.0 + 4 * 24.0)
    # the range's loss counts the complete day only; the raw figure both
    assert got.complete_days == 1 and got.incomplete_days == 1
    assert got.loss_kwh == pytest.approx(96.0)
    assert got.loss_share == pytest.approx(0.04)
    assert got.raw_loss_kwh == pytest.approx(96.0 * 2 + 96.0)


def test_a_meter_with_no_readings_and_a_node_gap() -> None:
    meters = pl.DataFrame({"meter_id": ["A", "B", "C"], "interval_s": [1800, 1800, None]})
    loads: list[float | None] = [0.1] * 48
    loads[10] = None
    got = losses(node(loads), readings({"A": [24.0] * 48, "B": [24.0] * 48}), meters)
    (day,) = got.days.iter_rows(named=True)
    assert day["meters"] == 3 and day["meters_complete"] == 2 and day["meters_missing"] == 1
    assert day["missing_readings"] == 48  # C owes the common interval's 48
    assert day["node_complete"] is False and day["complete"] is False
    assert got.loss_kwh is None


def test_local_days_across_a_clock_change() -> None:
    # London's 2025-03-30 has 23 hours: 46 half-hours make it whole
    import datetime as dt

    start = dt.datetime(2025, 3, 30, 0, 0, tzinfo=dt.UTC)  # 00:00 GMT = local midnight
    got = losses(
        node([0.05] * 46, start=start),
        readings({"A": [20.0] * 46}, start=start),
        pl.DataFrame({"meter_id": ["A"]}),
        tz="Europe/London",
    )
    (day,) = got.days.iter_rows(named=True)
    assert day["day"] == dt.date(2025, 3, 30)
    assert day["complete"] is True
    assert day["loss_kwh"] == pytest.approx(46 * (25.0 - 20.0))
