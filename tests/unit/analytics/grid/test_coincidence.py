"""Coincidence factors and peak shares on meters whose peaks are placed by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from metrify.analytics.grid import peak_drivers

from .frames import T0, node, readings


def test_a_meter_peaking_with_the_node_has_factor_one() -> None:
    # 4 half-hours. A peaks at slot 2 with the system; B peaks at slot 0
    data = readings({"A": [0.5, 0.5, 2.0, 0.5], "B": [1.5, 0.5, 0.5, 0.0]})
    got = peak_drivers(data)
    assert got.basis == "meters"
    # summed kW per slot: (0.5+1.5)*2=4, 2, 5, 1 -> peak 5 kW at slot 2
    assert got.peak_kw == pytest.approx(5.0)
    assert got.peak_ts == [T0 + dt.timedelta(hours=1)]
    rows = {r["meter_id"]: r for r in got.meters.iter_rows(named=True)}
    assert rows["A"]["own_peak_kw"] == pytest.approx(4.0)
    assert rows["A"]["coincidence_factor"] == pytest.approx(1.0)
    assert rows["A"]["share_of_peak"] == pytest.approx(4.0 / 5.0)
    assert rows["B"]["own_peak_kw"] == pytest.approx(3.0)
    assert rows["B"]["coincidence_factor"] == pytest.approx(1.0 / 3.0)
    assert rows["B"]["share_of_peak"] == pytest.approx(1.0 / 5.0)
    assert got.meters["meter_id"].to_list() == ["A", "B"]  # largest share first
    assert got.sum_of_peaks_kw == pytest.approx(7.0)
    assert got.group_coincidence == pytest.approx(5.0 / 7.0)


def test_node_peak_at_five_minutes_meets_half_hour_meters() -> None:
    # the node (5-minute) peaks at 00:40, inside the meters' 00:30-01:00 interval
    loads: list[float | None] = [0.001] * 12
    loads[8] = 0.010  # 10 kW at 00:40
    data = readings({"A": [0.5, 2.0], "B": [1.0, 0.25]})
    got = peak_drivers(data, node(loads, interval_s=300))
    assert got.basis == "node"
    assert got.peak_kw == pytest.approx(10.0)
    assert got.peak_ts == [T0 + dt.timedelta(minutes=40)]
    rows = {r["meter_id"]: r for r in got.meters.iter_rows(named=True)}
    assert rows["A"]["at_peak_kw"] == pytest.approx(4.0)
    assert rows["A"]["share_of_peak"] == pytest.approx(0.4)
    assert rows["B"]["at_peak_kw"] == pytest.approx(0.5)
    assert rows["B"]["coincidence_factor"] == pytest.approx(0.25)


def test_top_intervals_average_and_a_meter_missing_at_the_peak() -> None:
    data = readings({"A": [1.0, 3.0, 2.0, 0.0], "B": [1.0, None, 1.0, 0.0]})
    got = peak_drivers(data, top=2)
    # sums in kW: 4, 6, 6, 0 -> top two are slots 1 and 2 (mean 6 kW)
    assert got.peak_kw == pytest.approx(6.0)
    rows = {r["meter_id"]: r for r in got.meters.iter_rows(named=True)}
    assert rows["A"]["at_peak_kw"] == pytest.approx(5.0)  # (6 + 4) / 2
    assert rows["B"]["at_peak_kw"] == pytest.approx(2.0)  # read at slot 2 only
    assert rows["B"]["at_peak_intervals"] == 1
    with pytest.raises(ValueError):
        peak_drivers(data, top=0)
