"""Columns built whole, for the stages that assemble frames by position."""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["filled"]


def filled(value: Any, dtype: pl.DataType | type[pl.DataType], n: int) -> pl.Series:
    """A column of ``n`` copies of ``value`` (None: nulls) of ``dtype``.

    The base a scatter or a lookup table starts from. ``pl.repeat(..., eager=True)``
    plans and runs a query for it, some 0.13 ms whatever ``n``; repeating a one-value
    column's value costs a few µs, and the detectors build a dozen such columns for
    every week they judge."""
    return pl.Series([value], dtype=dtype).new_from_index(0, n)
