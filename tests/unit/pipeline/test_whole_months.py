"""Which judged rows a part of a long batch writes now, and which wait for their month."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.pipeline.stages import _whole_months

UTC = dt.UTC


def _rows(meters: list[str], first: dt.datetime, last: dt.datetime) -> pl.DataFrame:
    """Hourly rows of ``meters`` from ``first`` to ``last``, meter by meter."""
    hours = int((last - first).total_seconds() // 3600) + 1
    return pl.DataFrame(
        {
            "meter_id": [m for m in meters for _ in range(hours)],
            "ts": [first + dt.timedelta(hours=h) for _ in meters for h in range(hours)],
        },
        schema={"meter_id": pl.String(), "ts": pl.Datetime("us", "UTC")},
    )


JAN_14 = dt.datetime(2013, 1, 14, tzinfo=UTC)
FEB_3_END = dt.datetime(2013, 2, 3, 23, tzinfo=UTC)
FEB_4 = dt.datetime(2013, 2, 4, tzinfo=UTC)
MARCH_1 = dt.datetime(2013, 3, 1, tzinfo=UTC)


def test_the_month_the_next_part_starts_in_is_held() -> None:
    part = _rows(["A", "B"], JAN_14, FEB_3_END)
    ready, held = _whole_months(None, part, FEB_4, "meter_id")
    assert ready.equals(part.filter(pl.col("ts") < dt.datetime(2013, 2, 1, tzinfo=UTC)))
    assert held is not None
    assert held.equals(part.filter(pl.col("ts") >= dt.datetime(2013, 2, 1, tzinfo=UTC)))


def test_held_rows_go_with_the_next_part_in_key_order() -> None:
    held = _rows(["A", "B"], dt.datetime(2013, 2, 1, tzinfo=UTC), FEB_3_END)
    part = _rows(["A", "B"], FEB_4, dt.datetime(2013, 3, 10, tzinfo=UTC))
    ready, still = _whole_months(held, part, dt.datetime(2013, 3, 11, tzinfo=UTC), "meter_id")
    february = pl.concat([held, part]).filter(pl.col("ts") < MARCH_1)
    assert ready.height == february.height == 2 * 28 * 24
    assert ready["meter_id"].to_list() == ["A"] * (28 * 24) + ["B"] * (28 * 24)
    assert ready.equals(ready.sort("meter_id", "ts"))
    assert still is not None
    assert still.height == 2 * (9 * 24 + 1)
    assert still["ts"].min() == MARCH_1


def test_a_part_inside_one_month_is_written_whole() -> None:
    # holding it would leave nothing to write: the database would wait on the detectors
    part = _rows(["A"], FEB_4, dt.datetime(2013, 2, 10, tzinfo=UTC))
    ready, held = _whole_months(None, part, dt.datetime(2013, 2, 11, tzinfo=UTC), "meter_id")
    assert ready.equals(part) and held is None


def test_the_last_part_takes_everything_held() -> None:
    held = _rows(["B", "A"], dt.datetime(2013, 2, 1, tzinfo=UTC), FEB_3_END)
    part = _rows(["B", "A"], FEB_4, dt.datetime(2013, 2, 5, tzinfo=UTC))
    ready, still = _whole_months(held, part, None, "meter_id")
    assert still is None
    assert ready.height == held.height + part.height
    assert ready.equals(ready.sort("meter_id", "ts"))
