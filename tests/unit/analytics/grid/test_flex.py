"""Peak shares, the tariff comparison and the shift of peak load, on days built by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.analytics.grid import PeakWindow, peak_share, shift_peak, tariff_effect

from .frames import readings

DAY = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)  # winter: London time is UTC


def _day(profile: dict[int, float], base: float = 0.1) -> list[float | None]:
    """A half-hourly day at ``base`` kWh with ``profile`` {half-hour index: kWh}."""
    return [profile.get(i, base) for i in range(48)]


def test_peak_share_counts_local_hours() -> None:
    # 16:00-20:00 are half-hours 32..39 (8 of them) at 1 kWh; 40 others at 0.1 kWh
    data = readings({"A": _day({i: 1.0 for i in range(32, 40)})}, start=DAY)
    (row,) = peak_share(data, "Europe/London").iter_rows(named=True)
    assert row["peak_kwh"] == pytest.approx(8.0)
    assert row["peak_share"] == pytest.approx(8.0 / 12.0)
    # in summer London is UTC+1: the same local window is 15:00-19:00 UTC
    summer = dt.datetime(2025, 7, 7, tzinfo=dt.UTC)
    data = readings({"A": _day({i: 1.0 for i in range(30, 38)})}, start=summer)
    (row,) = peak_share(data, "Europe/London").iter_rows(named=True)
    assert row["peak_kwh"] == pytest.approx(8.0)


def test_tariff_effect_difference_and_interval() -> None:
    shares = pl.DataFrame(
        {
            "tariff": ["Std"] * 4 + ["tou"] * 4,
            "peak_share": [0.30, 0.32, 0.28, 0.30, 0.25, 0.27, 0.23, 0.25],
        }
    )
    got = tariff_effect(shares, resamples=500)
    assert got.n_std == 4 and got.n_tou == 4
    assert got.std_share == pytest.approx(0.30) and got.tou_share == pytest.approx(0.25)
    assert got.difference == pytest.approx(0.05)
    assert got.relative == pytest.approx(0.05 / 0.30)
    assert got.difference_low <= 0.05 <= got.difference_high
    assert got.difference_low > 0  # the groups do not overlap
    with pytest.raises(ValueError, match="two households"):
        tariff_effect(shares.head(5))


def test_shift_lowers_the_peak_and_keeps_energy() -> None:
    # two meters, 1 kWh per half-hour in 17:00-19:00 (half-hours 34..37), 0.1 elsewhere
    prof = _day({i: 1.0 for i in range(34, 38)})
    data = readings({"A": prof, "B": prof}, start=DAY)
    got = shift_peak(data, 0.2, tz="Europe/London")
    # peak: 2 kWh per half-hour = 4 kW; after: 0.8 kWh each -> 3.2 kW
    assert got.peak_kw == pytest.approx(4.0)
    assert got.new_peak_kw == pytest.approx(3.2)
    assert got.reduction_share == pytest.approx(0.2)
    assert got.new_peak_in_window is True
    # moved: 20% of each meter's peak-window energy (4 half-hours x 0.1 + 4 x 1.0 = 4.4)
    assert got.moved_kwh == pytest.approx(2 * 0.2 * 4.4)
    before = got.after["kw_before"].sum()
    assert got.after["kw_after"].sum() == pytest.approx(before)


def test_shift_can_make_a_new_peak_in_the_shoulder() -> None:
    # peak 1.0 kWh at 18:00; 0.9 kWh at 20:00 (shoulder, half-hour 40); moving 50% of
    # the 16-20 energy (7 x 0.1 + 1.0 = 1.7 kWh) into 20-21 (2 half-hours) adds 0.425 to each
    data = readings({"A": _day({36: 1.0, 40: 0.9})}, start=DAY)
    got = shift_peak(data, 0.5, tz="Europe/London", into=PeakWindow(20, 21))
    assert got.peak_ts == DAY + dt.timedelta(hours=18)
    assert got.new_peak_ts == DAY + dt.timedelta(hours=20)
    assert got.new_peak_kw == pytest.approx((0.9 + 0.425) * 2)
    assert got.new_peak_in_window is False
    assert got.reduction_kw == pytest.approx(2.0 - 2.65)  # the peak grew


def test_window_parsing() -> None:
    assert PeakWindow.parse("16:30-19") == PeakWindow(16.5, 19.0)
    w = PeakWindow.parse("22-6")
    assert w.start == 22 and w.end == 6
    with pytest.raises(ValueError):
        PeakWindow.parse("25-3")
    with pytest.raises(ValueError):
        shift_peak(readings({"A": [1.0]}), 1.5, tz="UTC")


@pytest.mark.parametrize(
    ("window", "into"),
    [("20-16", "20-24"), ("16-20", "17-19"), ("22-6", "0-6")],
)
def test_a_target_inside_the_peak_window_is_refused(window: str, into: str) -> None:
    # every hour of the target lies in the (possibly wrapping) peak window, so nothing
    # could move; the old code answered "0 kWh moved, peak unchanged" as a finding
    data = readings({"A": _day({i: 1.0 for i in range(32, 40)})}, start=DAY)
    with pytest.raises(ValueError, match=r"target hours .* lie inside the peak window"):
        shift_peak(
            data, 0.2, tz="UTC", window=PeakWindow.parse(window), into=PeakWindow.parse(into)
        )


def test_a_target_partly_outside_the_peak_window_still_moves() -> None:
    # 16-20 into 18-22: only 20-22 takes, 4 half-hours; 20% of 8 kWh moves there
    data = readings({"A": _day({i: 1.0 for i in range(32, 40)})}, start=DAY)
    got = shift_peak(
        data, 0.2, tz="UTC", window=PeakWindow.parse("16-20"), into=PeakWindow.parse("18-22")
    )
    assert got.moved_kwh == pytest.approx(1.6)
