"""The planned days of ``lake verify|repair`` grouped for the bulk comparison: runs of
consecutive days of one kind, in the plan's order, none longer than a month."""

from __future__ import annotations

import datetime as dt

from metrify.pipeline.lakesync import _SPAN_DAYS, _kind_stretches

D = dt.date(2024, 1, 1)


def _day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def test_runs_break_at_a_missing_day_and_at_another_kind() -> None:
    plan = [("readings", _day(0)), ("readings", _day(1)), ("readings", _day(3))]
    plan += [("grid_measurements", _day(3)), ("grid_measurements", _day(4))]
    assert list(_kind_stretches(plan)) == [
        ("readings", [_day(0), _day(1)]),
        ("readings", [_day(3)]),
        ("grid_measurements", [_day(3), _day(4)]),
    ]


def test_a_long_run_is_cut_into_months_and_every_day_is_kept_once() -> None:
    plan = [("readings", _day(n)) for n in range(2 * _SPAN_DAYS + 5)]
    runs = list(_kind_stretches(plan))
    assert [len(days) for _, days in runs] == [_SPAN_DAYS, _SPAN_DAYS, 5]
    assert [("readings", d) for _, days in runs for d in days] == plan
    assert list(_kind_stretches([])) == []
