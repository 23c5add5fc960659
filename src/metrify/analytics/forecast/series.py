"""One or many load series laid on a regular UTC grid, the shape every model reads.

Models index lags by position (``i - 7 days`` is ``i - 7 * per_day``), which is only right
on a gap-free grid; so a history is checked here once (columns, time zone, one interval
length that divides the day, timestamps on that grid) and its gaps become NaN rather
than missing rows. A series the models cannot use raises :class:`BadSeries` with what
is wrong, so the doors above can turn it into a clear 4xx / exit-2 message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

UTC = dt.UTC
DAY_S = 86_400


class BadSeries(ValueError):
    """A history the forecast models cannot use (wrong columns, irregular, too short)."""


@dataclass(frozen=True)
class Panel:
    """Series on one regular UTC grid: ``values[s, i]`` is series ``s`` at ``t0 + i*step``.

    NaN marks a gap (a missing or null reading). ``names`` keeps the caller's ids in order.
    """

    names: tuple[str, ...]
    t0: dt.datetime
    step_s: int
    values: np.ndarray  # (series, intervals) float64

    @property
    def per_day(self) -> int:
        return DAY_S // self.step_s

    @property
    def n(self) -> int:
        return int(self.values.shape[1])

    def ts(self, i: int) -> dt.datetime:
        return self.t0 + dt.timedelta(seconds=self.step_s * i)

    def index_at_or_after(self, t: dt.datetime) -> int:
        """Grid position of the first interval starting at or after ``t`` (may be past the end)."""
        seconds = (t - self.t0).total_seconds()
        return int(np.ceil(seconds / self.step_s))

    def available(self, issue: dt.datetime) -> int:
        """How many leading intervals had ENDED by ``issue``: the data known at issue time
        (an interval that started before ``issue`` but is still running is not known)."""
        seconds = (issue - self.t0).total_seconds()
        return max(0, min(self.n, int(seconds // self.step_s)))

    def extended(self, n: int) -> Panel:
        """The same panel padded with NaN to ``n`` intervals (room for future targets)."""
        if n <= self.n:
            return self
        pad = np.full((self.values.shape[0], n - self.n), np.nan)
        return Panel(self.names, self.t0, self.step_s, np.concatenate([self.values, pad], axis=1))

    def grid(self) -> pl.Series:
        """The grid's timestamps (UTC, microseconds) as a Polars series."""
        start = self.t0
        return pl.datetime_range(
            start,
            start + dt.timedelta(seconds=self.step_s * (self.n - 1)),
            dt.timedelta(seconds=self.step_s),
            time_unit="us",
            time_zone="UTC",
            eager=True,
        ).alias("ts")


def _clean(history: pl.DataFrame, label: str) -> pl.DataFrame:
    """Check columns and types; UTC timestamps, sorted, one value per timestamp."""
    if not isinstance(history, pl.DataFrame):
        raise BadSeries(f"{label}: expected a Polars DataFrame, got {type(history).__name__}")
    missing = {"ts", "value"} - set(history.columns)
    if missing:
        raise BadSeries(f"{label}: history lacks column(s) {sorted(missing)} (needs ts, value)")
    ts_type = history.schema["ts"]
    if not isinstance(ts_type, pl.Datetime):
        raise BadSeries(f"{label}: column ts must be a Datetime, got {ts_type}")
    if not history.schema["value"].is_numeric():
        raise BadSeries(f"{label}: column value must be numeric, got {history.schema['value']}")
    ts = pl.col("ts")
    # a naive timestamp is taken as UTC (the data contract's time base)
    ts = (
        ts.dt.replace_time_zone("UTC")
        if ts_type.time_zone is None
        else ts.dt.convert_time_zone("UTC")
    )
    frame = (
        history.select(ts.dt.cast_time_unit("us").alias("ts"), pl.col("value").cast(pl.Float64))
        .filter(pl.col("ts").is_not_null())
        .with_columns(pl.col("value").fill_nan(None))
        .sort("ts")
        # a repeated timestamp keeps its last non-null value (a later correction)
        .group_by("ts", maintain_order=True)
        .agg(pl.col("value").drop_nulls().last())
    )
    if frame.height < 2:
        raise BadSeries(
            f"{label}: history has {frame.height} timestamp(s); at least two are needed"
        )
    return frame


def infer_step(frame: pl.DataFrame, label: str = "series") -> int:
    """The interval length in seconds: the most common gap between consecutive readings.

    It must divide the day (the contract's ``interval_s`` rule), else day-based lags
    and local-day targets have no meaning.
    """
    diffs = frame["ts"].diff().drop_nulls().dt.total_microseconds()
    step_us = int(diffs.mode().min())  # type: ignore[arg-type]
    if step_us % 1_000_000 or step_us < 60_000_000 or (DAY_S * 1_000_000) % step_us:
        raise BadSeries(
            f"{label}: interval of {step_us / 1e6:g} s does not divide the day (60..86400 s)"
        )
    return step_us // 1_000_000


def panel_from_frames(
    frames: Mapping[str, pl.DataFrame], *, until: dt.datetime | None = None
) -> Panel:
    """Lay every frame on one UTC grid (the union of their spans) with NaN for gaps.

    ``until``: keep only the intervals that had ended by then (the issue time), so
    nothing later can even reach the models. Every series must share one interval length.
    """
    if not frames:
        raise BadSeries("no series given")
    cleaned: dict[str, pl.DataFrame] = {}
    step: int | None = None
    for name, history in frames.items():
        frame = _clean(history, name)
        if until is not None:
            frame = frame.filter(pl.col("ts") < until)
            if frame.height < 2:
                raise BadSeries(f"{name}: fewer than two readings before {until.isoformat()}")
        own = infer_step(frame, name)
        if until is not None:  # only intervals that had ended by the issue time
            frame = frame.filter(pl.col("ts") + dt.timedelta(seconds=own) <= until)
            if frame.height < 2:
                raise BadSeries(f"{name}: fewer than two readings before {until.isoformat()}")
        if step is None:
            step = own
        elif own != step:
            raise BadSeries(f"{name}: interval {own} s differs from the other series' {step} s")
        cleaned[name] = frame
    assert step is not None
    t0 = min(f["ts"][0] for f in cleaned.values())
    t_end = max(f["ts"][-1] for f in cleaned.values())
    origin = t0.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (t0 - origin).total_seconds() % step
    n = int((t_end - t0).total_seconds() // step) + 1
    values = np.full((len(cleaned), n), np.nan)
    for row, (name, frame) in enumerate(cleaned.items()):
        micros = (frame["ts"] - t0).dt.total_microseconds().to_numpy()
        off = micros % (step * 1_000_000) != 0
        if off.any() or offset:
            bad = frame["ts"][int(np.argmax(off))] if off.any() else t0
            raise BadSeries(
                f"{name}: timestamp {bad} is off the {step} s grid (readings must start on"
                " interval boundaries)"
            )
        idx = (micros // (step * 1_000_000)).astype(np.int64)
        values[row, idx] = frame["value"].to_numpy().astype(np.float64)
    return Panel(tuple(cleaned), t0, step, values)
