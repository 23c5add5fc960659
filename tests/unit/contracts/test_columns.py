from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.contracts.columns import filled


def test_filled_repeats_a_value_or_null_in_any_dtype() -> None:
    assert filled(False, pl.Boolean, 3).to_list() == [False, False, False]
    nulls = filled(None, pl.Datetime("us", "UTC"), 2)
    assert nulls.dtype == pl.Datetime("us", "UTC") and nulls.null_count() == 2
    assert filled(None, pl.UInt32, 0).len() == 0
    # a base to scatter into, as the detectors use it
    placed = filled(None, pl.Float64, 4).scatter([1, 3], [0.5, 1.5])
    assert placed.to_list() == [None, 0.5, None, 1.5]
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert filled(moment, pl.Datetime("us", "UTC"), 2).to_list() == [moment, moment]
