"""Cheap steps on the detectors' frames: picking columns and keeping rows.

A Polars DataFrame method plans and runs a query, which costs a tenth of a millisecond
or more whatever the frame holds; a year's load judges its households week by week, a
few hundred such steps a week. Picking columns needs no query at all (the frame's own
Series are taken), and a filter column by column runs without one. So these do what
``select`` of plain names, ``drop`` and ``filter`` do, at a tenth of the cost on a
week's frame; on a fleet's frame (millions of rows) the filter is Polars' own, which
spreads the columns over its threads.
"""

from __future__ import annotations

from typing import Final

import polars as pl

#: rows above which a filter is left to Polars (it filters the columns in parallel)
SMALL: Final = 250_000


def columns(frame: pl.DataFrame, *names: str) -> pl.DataFrame:
    """``frame``'s columns ``names``, in that order (as ``frame.select(*names)``)."""
    return pl.DataFrame([frame.get_column(name) for name in names])


def without(frame: pl.DataFrame, *names: str) -> pl.DataFrame:
    """``frame`` without the columns ``names`` (as ``frame.drop(*names)``)."""
    gone = set(names)
    return pl.DataFrame([c for c in frame.iter_columns() if c.name not in gone])


def where(frame: pl.DataFrame, mask: pl.Series | str) -> pl.DataFrame:
    """The rows of ``frame`` where ``mask`` holds (null counts as not), as
    ``frame.filter(mask)``. ``mask``: a boolean Series of ``frame``'s height, or the
    name of such a column of ``frame``, which the result then leaves out."""
    if isinstance(mask, str):
        keep, frame = frame.get_column(mask), without(frame, mask)
    else:
        keep = mask
    if frame.height > SMALL:
        return frame.filter(keep)
    return pl.DataFrame([c.filter(keep) for c in frame.iter_columns()])
