"""How a judged batch is cut into parts for the detectors and the writer."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest

from metrify.pipeline import stages
from metrify.pipeline.stages import _week_slices

UTC = dt.UTC
#: a Monday, so the first week is whole
START = dt.datetime(2021, 1, 4, tzinfo=UTC)


def _hourly(meters: int, days: int) -> pl.DataFrame:
    """Hourly rows of ``meters`` meters over ``days`` days, meter by meter."""
    hours = days * 24
    return pl.DataFrame(
        {
            "meter_id": [f"M{m}" for m in range(meters) for _ in range(hours)],
            "ts": [START + dt.timedelta(hours=h) for _ in range(meters) for h in range(hours)],
        },
        schema={"meter_id": pl.String(), "ts": pl.Datetime("us", "UTC")},
    )


def _week(ts: dt.datetime) -> dt.datetime:
    return (ts - dt.timedelta(days=ts.weekday())).replace(hour=0, minute=0, second=0)


def _check_cuts(frame: pl.DataFrame, parts: list[pl.DataFrame]) -> None:
    """The parts are the frame's rows, each once, in time order, cut at week starts."""
    assert sum(p.height for p in parts) == frame.height
    assert pl.concat(parts).sort("meter_id", "ts").equals(frame.sort("meter_id", "ts"))
    for before, after in itertools.pairwise(parts):
        last, first = before["ts"].max(), after["ts"].min()
        assert isinstance(last, dt.datetime) and isinstance(first, dt.datetime)
        assert last < first
        assert _week(last) < _week(first)  # no week is split between two parts


def test_a_long_history_of_one_meter_is_cut_by_its_weeks() -> None:
    # three years of one meter: far fewer rows than a part holds, but 157 weekly passes
    frame = _hourly(1, 3 * 364 + 7)
    weeks = 3 * 52 + 1
    parts = _week_slices(frame, rows=250_000)
    _check_cuts(frame, parts)
    assert len(parts) == -(-weeks // stages.PART_WEEKS)  # as few as PART_WEEKS allows
    for part in parts:
        first, last = part["ts"].min(), part["ts"].max()
        assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
        assert _week(last) - _week(first) < dt.timedelta(weeks=stages.PART_WEEKS)


def test_parts_of_many_meters_are_cut_by_rows_first() -> None:
    # 40 meters over 20 weeks (6,720 rows a week): parts of up to 80,000 rows, the
    # first three an eighth, a quarter and half of that, each as many whole weeks as fit
    frame = _hourly(40, 140)
    parts = _week_slices(frame, rows=80_000)
    _check_cuts(frame, parts)
    week_rows = 40 * 7 * 24
    fits = [max(1, target // week_rows) for target in (10_000, 20_000, 40_000, 80_000)]
    assert fits == [1, 2, 5, 11]
    expected = [*fits, 20 - sum(fits)]
    assert [p.height // week_rows for p in parts] == expected


@pytest.mark.parametrize("days", [10, 13 * 7])
def test_a_short_or_small_batch_stays_whole(days: int) -> None:
    # within STRETCH_DAYS (a fleet's day or two), or a quarter of one meter: one part
    frame = _hourly(2, days)
    assert len(_week_slices(frame, rows=250_000)) == 1
