"""A monotonic clock does not start at zero, and a lake URL picks its filesystem.

Found by the mutation run: the cache's period was only tested from a clock at 0 (where
``now + loaded_at`` and ``now - loaded_at`` agree), and no test gave a ``file://`` URL.
"""

from __future__ import annotations

import polars as pl
import pyarrow.fs as pafs

from metrify.stores.lake import _filesystem
from metrify.stores.meter_cache import MeterCache


def test_the_period_counts_from_the_load_on_a_clock_far_from_zero() -> None:
    asked: list[list[str]] = []

    def load(ids: pl.Series) -> pl.DataFrame:
        asked.append(sorted(ids.to_list()))
        return pl.DataFrame({"meter_id": ids.to_list(), "max_kw": [1.0] * ids.len()})

    now = [50_000.0]
    cache = MeterCache(load, 30.0, clock=lambda: now[0])
    cache.get(pl.Series(["a"]))
    now[0] += 29.0  # within the period: served from memory
    cache.get(pl.Series(["a"]))
    assert asked == [["a"]]
    now[0] += 2.0  # 31 s after the load: read again
    cache.get(pl.Series(["a"]))
    assert asked == [["a"], ["a"]]


def test_local_lakes_use_the_local_filesystem() -> None:
    for url, root in (("file:///srv/lake", "/srv/lake"), ("/srv/lake", "/srv/lake")):
        fs, path = _filesystem(url)
        assert isinstance(fs, pafs.LocalFileSystem), url
        assert path == root


def test_other_urls_go_through_fsspec() -> None:
    fs, root = _filesystem("memory://bucket/lake")
    assert isinstance(fs, pafs.PyFileSystem)
    assert root == "/bucket/lake"
