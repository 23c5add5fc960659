"""Which monthly partition each row of a batch goes to."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.stores.partitions import by_partition, months_of

UTC = dt.UTC


def _ts(*values: dt.datetime) -> pl.Series:
    return pl.Series("ts", list(values), dtype=pl.Datetime("us", "UTC"))


def test_months_are_utc_calendar_months_including_their_edges_and_before_1970() -> None:
    ts = _ts(
        dt.datetime(2024, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        dt.datetime(2024, 4, 1, tzinfo=UTC),
        dt.datetime(1969, 12, 31, 12, tzinfo=UTC),  # before the epoch: day -1
        dt.datetime(1970, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 3, 1, tzinfo=UTC),
        # 00:30 on 1 May in Amsterdam is still April in UTC
        dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    expected = sorted({dt.date(t.year, t.month, 1) for t in ts.to_list()})
    assert months_of(ts) == expected
    assert months_of(ts) == [
        dt.date(1969, 12, 1),
        dt.date(1970, 1, 1),
        dt.date(2024, 3, 1),
        dt.date(2024, 4, 1),
    ]
    assert months_of(_ts()) == []


def test_rows_go_to_their_month_in_order_and_keep_their_order() -> None:
    times = [
        dt.datetime(2024, 4, 1, tzinfo=UTC),
        dt.datetime(2024, 3, 31, 23, 30, tzinfo=UTC),
        dt.datetime(2024, 12, 31, 23, 30, tzinfo=UTC),
        dt.datetime(2025, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 3, 1, tzinfo=UTC),
        dt.datetime(2024, 4, 30, 23, 59, tzinfo=UTC),
    ]
    frame = pl.DataFrame({"ts": _ts(*times), "n": list(range(len(times)))})
    parts = by_partition("readings", frame)
    assert [name for name, _ in parts] == [
        "readings_p2024_03",
        "readings_p2024_04",
        "readings_p2024_12",
        "readings_p2025_01",
    ]
    for name, part in parts:
        year, month = int(name[-7:-3]), int(name[-2:])
        expected = [n for n, t in enumerate(times) if (t.year, t.month) == (year, month)]
        assert part["n"].to_list() == expected  # every row of the month, in input order
    assert sum(part.height for _, part in parts) == frame.height
    # one month: the frame itself
    (only,) = by_partition("readings", frame.head(0).vstack(frame[[1, 4]]))
    assert only[0] == "readings_p2024_03" and only[1]["n"].to_list() == [1, 4]
