"""Segment comparisons: the difference of group means by hand, an interval that covers
it and narrows with more households, and the calendar's holidays."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.patterns import (
    compare_groups,
    comparison,
    holiday_dates,
    local_half_hours,
    peak_share_difference,
    slot_difference,
)
from support.realdata import shared_data


def homes(tou: list[float], std: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "tariff": ["ToU"] * len(tou) + ["Std"] * len(std),
            "peak_share": tou + std,
            "load_factor": [0.3] * (len(tou) + len(std)),
        }
    )


def test_the_difference_is_the_difference_of_household_means() -> None:
    got = peak_share_difference(homes([0.10, 0.12, 0.14], [0.15, 0.17, 0.16, 0.20]))
    assert got.difference == pytest.approx(0.12 - 0.17)
    assert got.mean_treated == pytest.approx(0.12) and got.mean_control == pytest.approx(0.17)
    assert got.low <= got.difference <= got.high < 0  # clearly lower at peak
    assert (got.n_treated, got.n_control, got.level) == (3, 4, 0.95)


def test_the_interval_narrows_with_more_households_and_covers_zero_without_effect() -> None:
    rng = np.random.default_rng(1)
    small = peak_share_difference(
        homes(rng.normal(0.15, 0.03, 10).tolist(), rng.normal(0.15, 0.03, 10).tolist())
    )
    same = rng.normal(0.15, 0.03, 1000).tolist()  # no effect at all: the same households
    large = peak_share_difference(homes(same, same))
    assert large.high - large.low < (small.high - small.low) / 5
    assert large.difference == pytest.approx(0.0)
    assert large.low < 0 < large.high


def test_a_group_of_one_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="fewer than two"):
        peak_share_difference(homes([0.1], [0.2, 0.3]))


def test_compare_groups_means_and_order() -> None:
    table = compare_groups(homes([0.1, 0.3], [0.2, 0.2, 0.2]), "tariff", resamples=200)
    rows = table.to_dicts()
    assert [r["tariff"] for r in rows] == ["Std", "ToU"]  # the larger group first
    assert rows[0]["peak_share"] == pytest.approx(0.2)
    assert rows[0]["peak_share_low"] == rows[0]["peak_share_high"] == pytest.approx(0.2)
    assert rows[1]["peak_share"] == pytest.approx(0.2)
    assert rows[1]["peak_share_low"] < 0.2 < rows[1]["peak_share_high"]


def test_slot_difference_finds_where_in_the_day() -> None:
    base = np.full((6, 48), 1 / 48)
    shifted = base.copy()
    shifted[:3, 34] -= 0.01  # ToU households move 1% of the day from 17:00 to 02:00
    shifted[:3, 4] += 0.01
    got = slot_difference(shifted, ["ToU"] * 3 + ["Std"] * 3, resamples=200)
    rows = {r["slot"]: r for r in got.to_dicts()}
    assert rows[34]["difference"] == pytest.approx(-0.01)
    assert rows[4]["difference"] == pytest.approx(0.01)
    assert rows[20]["difference"] == pytest.approx(0.0)
    out = comparison(
        homes([0.1, 0.12], [0.2, 0.22]).with_columns(pl.Series("shape", shifted[:4].tolist())),
        "tariff",
        "ToU",
        "Std",
        (32, 38),
        resamples=200,
    )
    assert out["difference"]["difference"] == pytest.approx(-0.1)  # type: ignore[index]
    assert len(out["by_slot"]) == 48  # type: ignore[arg-type]


def test_holidays_are_englands_and_the_shared_csv_swaps_two_dates() -> None:
    got = set(holiday_dates([2013]))
    gov_uk = {  # England and Wales bank holidays 2013, from gov.uk
        dt.date(2013, 1, 1), dt.date(2013, 3, 29), dt.date(2013, 4, 1), dt.date(2013, 5, 6),
        dt.date(2013, 5, 27), dt.date(2013, 8, 26), dt.date(2013, 12, 25), dt.date(2013, 12, 26),
    }  # fmt: skip
    assert got == gov_uk
    path = shared_data() / "london-weather" / "uk_bank_holidays.csv"
    with path.open() as fh:
        listed = {
            dt.date.fromisoformat(r["Bank holidays"])
            for r in csv.DictReader(fh)
            if r["Bank holidays"].startswith("2013")
        }
    # the file has Easter Monday as 2013-01-04 and the early May one as 2013-06-05
    assert listed ^ gov_uk == {
        dt.date(2013, 1, 4),
        dt.date(2013, 4, 1),
        dt.date(2013, 6, 5),
        dt.date(2013, 5, 6),
    }


def test_the_calendar_decides_which_days_are_holidays() -> None:
    """Germany's Unity Day (3 October) is a holiday in a German calendar only; England's
    spring bank holiday 2013 (27 May) in the default calendar only."""
    days = [dt.date(2013, 5, 27), dt.date(2013, 10, 3)]
    frame = pl.DataFrame(
        {
            "id": ["m", "m"],
            "ts": [dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.UTC) for d in days],
            "kwh": [1.0, 1.0],
        }
    )
    england = local_half_hours(frame, "UTC")
    germany = local_half_hours(frame, "UTC", calendar="DE")
    assert england["kind"].to_list() == ["holiday", "weekday"]
    assert germany["kind"].to_list() == ["weekday", "holiday"]
    with pytest.raises(ValueError, match="unknown holiday calendar 'ZZ'"):
        local_half_hours(frame, "UTC", calendar="ZZ")
