"""The pipeline's cache of meters' reference rows: read once, again after its period."""

from __future__ import annotations

import polars as pl

from metrify.stores.meter_cache import MeterCache


class Table:
    """A stand-in reference table that counts the ids it is asked for."""

    def __init__(self, rows: dict[str, float]) -> None:
        self.rows = rows
        self.asked: list[list[str]] = []

    def load(self, ids: pl.Series) -> pl.DataFrame:
        wanted = sorted(ids.to_list())
        self.asked.append(wanted)
        found = [(i, self.rows[i]) for i in wanted if i in self.rows]
        return pl.DataFrame(
            found, schema={"meter_id": pl.String(), "max_kw": pl.Float64()}, orient="row"
        )


def test_known_meters_are_read_once_within_the_period() -> None:
    table = Table({"a": 1.0, "b": 2.0})
    now = [0.0]
    cache = MeterCache(table.load, 30.0, clock=lambda: now[0])
    first = cache.get(pl.Series(["a", "b", "a"]))
    assert dict(first.iter_rows()) == {"a": 1.0, "b": 2.0}
    now[0] = 10.0
    again = cache.get(pl.Series(["b"]))
    assert dict(again.iter_rows()) == {"b": 2.0}
    assert table.asked == [["a", "b"]]


def test_unknown_meters_are_asked_again_and_found_once_registered() -> None:
    table = Table({"a": 1.0})
    now = [0.0]
    cache = MeterCache(table.load, 30.0, clock=lambda: now[0])
    assert cache.get(pl.Series(["a", "new"])).height == 1
    table.rows["new"] = 5.0  # registered by the batch that brought it
    got = cache.get(pl.Series(["a", "new"]))
    assert dict(got.iter_rows()) == {"a": 1.0, "new": 5.0}
    assert table.asked == [["a", "new"], ["new"]]
    cache.get(pl.Series(["new"]))
    assert len(table.asked) == 2


def test_edits_reach_the_cache_after_its_period_or_a_forget() -> None:
    table = Table({"a": 1.0})
    now = [0.0]
    cache = MeterCache(table.load, 30.0, clock=lambda: now[0])
    cache.get(pl.Series(["a"]))
    table.rows["a"] = 9.0
    now[0] = 29.0
    assert cache.get(pl.Series(["a"]))["max_kw"].to_list() == [1.0]
    now[0] = 31.0
    assert cache.get(pl.Series(["a"]))["max_kw"].to_list() == [9.0]
    table.rows["a"] = 4.0
    cache.forget()
    assert cache.get(pl.Series(["a"]))["max_kw"].to_list() == [4.0]
