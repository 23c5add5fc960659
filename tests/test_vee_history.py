"""The in-memory history window VEE judges batches against."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.quality.history import HISTORY_COLUMNS, HistoryCache
from metrify.records import READING

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 10, tzinfo=UTC)


def rows(meter: str, start: dt.datetime, n: int, step_h: float = 1.0) -> pl.DataFrame:
    stamps = [start + dt.timedelta(hours=step_h * i) for i in range(n)]
    data = {c: [None] * n for c in HISTORY_COLUMNS}
    data.update(
        meter_id=[meter] * n,
        ts=stamps,
        interval_s=[3600] * n,
        import_kwh=[float(i) for i in range(n)],
        quality=[0] * n,
        status=["valid"] * n,
        source=["test"] * n,
    )
    schema = {**READING.schema, "quality": pl.Int32(), "status": pl.String(), "source": pl.String()}
    return pl.DataFrame(data, schema=schema)


class Store:
    """Stands in for the database side: records what was asked, returns stored rows."""

    def __init__(self, stored: pl.DataFrame) -> None:
        self.stored = stored
        self.calls: list[list[str]] = []

    def load(self, ids: pl.Series, since: dt.datetime, until: dt.datetime) -> pl.DataFrame:
        self.calls.append(sorted(ids.to_list()))
        return self.stored.filter(
            pl.col("meter_id").is_in(ids.to_list()) & pl.col("ts").is_between(since, until)
        )


def test_loads_each_meter_once_then_serves_from_memory() -> None:
    store = Store(rows("A", T0 - dt.timedelta(days=3), 72))
    cache = HistoryCache(store.load, days=7)
    got = cache.get(pl.Series(["A", "B"]), T0 - dt.timedelta(days=7), T0)
    assert got.height == 72 and store.calls == [["A", "B"]]
    cache.remember(rows("A", T0, 24))  # what this process wrote next
    later = cache.get(
        pl.Series(["A"]),
        T0 + dt.timedelta(days=1) - dt.timedelta(days=7),
        T0 + dt.timedelta(days=1),
    )
    assert store.calls == [["A", "B"]]  # no second trip to the database
    assert later.height == 72 + 24


def test_window_is_trimmed_and_older_requests_go_to_the_database() -> None:
    store = Store(rows("A", T0 - dt.timedelta(days=30), 30 * 24))
    cache = HistoryCache(store.load, days=2)
    cache.get(pl.Series(["A"]), T0 - dt.timedelta(days=2), T0)
    cache.remember(rows("A", T0, 48))  # two more days: the window slides
    assert cache.rows == 2 * 24 + 1  # newest ts minus two days, inclusive
    cache.get(pl.Series(["A"]), T0 - dt.timedelta(days=5), T0)
    assert len(store.calls) == 2  # older than what memory covers: asked again


def test_new_versions_replace_cached_ones_and_forget_clears() -> None:
    store = Store(rows("A", T0, 3))
    cache = HistoryCache(store.load, days=7)
    cache.get(pl.Series(["A"]), T0 - dt.timedelta(days=1), T0 + dt.timedelta(hours=2))
    corrected = rows("A", T0, 1).with_columns(import_kwh=pl.lit(9.0))
    cache.remember(corrected)
    got = cache.get(pl.Series(["A"]), T0, T0 + dt.timedelta(hours=2)).sort("ts")
    assert got["import_kwh"].to_list() == [9.0, 1.0, 2.0]
    cache.forget()
    cache.get(pl.Series(["A"]), T0, T0 + dt.timedelta(hours=2))
    assert len(store.calls) == 2
