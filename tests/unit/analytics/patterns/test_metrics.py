"""Load factor, base load, peak time, peak share and typical days on synthetic homes
whose answers are known by hand."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from metrify.analytics.patterns import (
    Definitions,
    PeakHours,
    complete_days,
    local_half_hours,
    metrics,
    typical_days,
)
from unit.analytics.patterns.synthetic import household

MONDAY = dt.date(2013, 3, 4)


def one(frame: pl.DataFrame, definitions: Definitions | None = None) -> dict[str, object]:
    rows = metrics(local_half_hours(frame, "UTC", []), definitions).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_a_flat_load_has_load_factor_one_and_its_peak_share_is_the_peak_hours_share() -> None:
    got = one(household("flat", [0.25] * 48, MONDAY, 7))
    assert got["load_factor"] == pytest.approx(1.0)
    assert got["peak_kw"] == pytest.approx(0.5)  # 0.25 kWh in half an hour
    assert got["base_load_kw"] == pytest.approx(0.5)
    assert got["mean_daily_kwh"] == pytest.approx(12.0)
    assert got["peak_share"] == pytest.approx(6 / 48)  # 16:00-19:00 is 6 of 48 half-hours
    assert got["complete_days"] == got["days"] == 7


def test_an_evening_peak_by_hand() -> None:
    # 0.1 kWh all day, 1.0 kWh from 17:00 to 18:00 (slots 34, 35), 0.05 from 02:00-03:00
    day = [0.1] * 48
    day[34] = day[35] = 1.0
    day[4] = day[5] = 0.05
    got = one(household("evening", day, MONDAY, 3))
    total = 0.1 * 44 + 2 * 1.0 + 2 * 0.05
    assert got["mean_daily_kwh"] == pytest.approx(total)
    assert got["peak_share"] == pytest.approx((4 * 0.1 + 2 * 1.0) / total)
    assert got["load_factor"] == pytest.approx((total / 48 / 0.5) / 2.0)
    assert got["peak_time"] == "17:00" and got["peak_slot"] == 34
    # night 00:00-05:00 is 10 slots a day: 8 at 0.2 kW, 2 at 0.1 kW; p10 of 30 values
    # (6 at 0.1, 24 at 0.2) by linear interpolation lies at rank 2.9: 0.1
    assert got["base_load_kw"] == pytest.approx(0.1)


def test_peak_hours_are_configurable_and_checked() -> None:
    day = [0.0] * 48
    day[14] = 1.0  # 07:00-07:30
    frame = household("morning", day, MONDAY, 2)
    assert one(frame)["peak_share"] == 0.0
    assert one(frame, Definitions(peak=PeakHours.parse("07:00-09:00")))["peak_share"] == 1.0
    assert PeakHours.parse("16:00-19:00") == PeakHours(32, 38)
    assert str(PeakHours.parse("22:00-24:00")) == "22:00-24:00"
    for bad in ("16:15-19:00", "19:00-16:00", "4pm-7pm", "16:00-25:00"):
        with pytest.raises(ValueError):
            PeakHours.parse(bad)


def test_gaps_are_not_zeros_and_incomplete_days_stay_out_of_shapes() -> None:
    frame = household("gappy", [0.2] * 48, MONDAY, 2)
    frame = frame.filter(~((pl.col("ts").dt.day() == 5) & (pl.col("ts").dt.hour() == 17)))
    got = one(frame)
    assert got["load_factor"] == pytest.approx(1.0)  # the gap does not lower the mean
    assert got["days"] == 2 and got["complete_days"] == 1
    assert got["peak_share"] == pytest.approx(6 / 48)


def test_typical_days_by_kind_and_season() -> None:
    # a week in winter: weekdays 0.1 per slot, weekend 0.3; New Year's Day a holiday
    start = dt.date(2012, 12, 31)  # Monday
    frames = [
        household("h", [0.3 if (start + dt.timedelta(d)).weekday() >= 5 else 0.1] * 48,
                  start + dt.timedelta(d), 1)
        for d in range(7)
    ]  # fmt: skip
    local = local_half_hours(pl.concat(frames), "Europe/London", [dt.date(2013, 1, 1)])
    days = typical_days(complete_days(local))
    kinds = {
        (r["kind"], r["season"]): (r["kwh"], r["days"])
        for r in days.filter(pl.col("slot") == 0).to_dicts()
    }
    assert kinds[("weekday", "winter")] == (pytest.approx(0.1), 4)
    assert kinds[("weekend", "all")] == (pytest.approx(0.3), 2)
    assert kinds[("holiday", "winter")] == (pytest.approx(0.1), 1)
    assert days.height == 6 * 48  # 3 kinds x (winter, all)


def test_the_clock_change_days_count_for_load_but_not_for_shapes() -> None:
    # London's spring day 2013-03-31 has 46 half-hours, the autumn one 2013-10-27 has 50
    for day in (dt.date(2013, 3, 31), dt.date(2013, 10, 27)):
        start = dt.datetime.combine(day, dt.time(), ZoneInfo("Europe/London")).astimezone(dt.UTC)
        hours = 23 if day.month == 3 else 25
        ts = [start + dt.timedelta(minutes=30 * i) for i in range(2 * hours)]
        frame = pl.DataFrame(
            {"id": "h", "ts": ts, "kwh": [0.5] * len(ts)},
            schema={"id": pl.String, "ts": pl.Datetime("us", "UTC"), "kwh": pl.Float64},
        )
        local = local_half_hours(frame, "Europe/London", [])
        assert local["date"].unique().to_list() == [day]
        assert complete_days(local).height == 0
        got = metrics(local).to_dicts()[0]
        assert got["days"] == 1 and got["complete_days"] == 0 and got["peak_share"] is None
        assert got["load_factor"] == pytest.approx(1.0)
