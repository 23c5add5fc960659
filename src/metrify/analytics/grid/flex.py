"""What moving flexible load out of peak hours would do to a node's peak, grounded in
what time-of-use households actually did.

**The observed effect** (:func:`tariff_effect`): each household's *peak share* is the
share of its energy used in the peak window (local hours, 16:00-20:00 by default, the
evening peak of British distribution tariffs). Households on a time-of-use tariff and on
the standard tariff are compared: the difference of the mean peak shares, with a
percentile bootstrap interval that resamples households within each group, and the
relative reduction (std - ToU) / std, which reads as "ToU households used this share
less of their peak-window energy in the peak window". It is an observed difference
between two groups, not a randomised effect: the groups may differ in other ways.
This is deliberately the small estimate the shift needs; a general comparison of
segments (with ACORN groups, seasons, intervals on every statistic) belongs with the
consumption patterns.

**The shift** (:func:`shift_peak`): a share of each meter's energy in the peak window,
each local day, moves into a target window of the same day (spread evenly over the
meter's intervals there), keeping every meter's daily energy. The node peak is then
computed again from scratch, since moving load into shoulder hours can make a new peak
there: the answer says where the new peak is and whether it left the peak window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from metrify.analytics.grid.days import local_day

__all__ = [
    "PeakWindow",
    "ShiftResult",
    "TariffEffect",
    "check_windows",
    "peak_share",
    "shift_peak",
    "tariff_effect",
]


@dataclass(frozen=True)
class PeakWindow:
    """Local hours [start, end); ``start > end`` wraps midnight within the same day
    (22-6 is 22:00-24:00 and 00:00-06:00)."""

    start: float = 16.0
    end: float = 20.0

    def __post_init__(self) -> None:
        if not (0 <= self.start < 24 and 0 < self.end <= 24) or self.start == self.end:
            raise ValueError(f"window {self.start}-{self.end}: expected local hours 0-24")

    def contains(self, hour: pl.Expr) -> pl.Expr:
        if self.start < self.end:
            return (hour >= self.start) & (hour < self.end)
        return (hour >= self.start) | (hour < self.end)

    def holds(self, hour: float) -> bool:
        """Whether local ``hour`` (a float, 16.5 = 16:30) lies in the window."""
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    @classmethod
    def parse(cls, text: str) -> PeakWindow:
        """``"16-20"`` or ``"16:30-19"``."""
        try:
            a, b = text.split("-")
            return cls(_hours(a), _hours(b))
        except ValueError:
            raise ValueError(f"window {text!r}: expected local hours like 16-20") from None


def check_windows(window: PeakWindow, into: PeakWindow) -> None:
    """ValueError when ``into`` has no minute outside ``window``.

    Only the part of the target outside the peak window takes energy (an interval in
    both gives and takes), so a target wholly inside it (``--window 20-16`` wraps
    midnight and holds 20-24) would move nothing: the answer would say "0 kWh moved,
    peak unchanged" as if that were the effect of shifting load, not a mistake."""
    if not any(into.holds(m / 60) and not window.holds(m / 60) for m in range(24 * 60)):
        raise ValueError(
            f"target hours {_text(into)} lie inside the peak window {_text(window)}, so no"
            " load could move there; give target hours outside the peak window"
        )


def _text(window: PeakWindow) -> str:
    def part(h: float) -> str:
        whole, minutes = int(h), round((h - int(h)) * 60)
        return f"{whole}:{minutes:02d}" if minutes else str(whole)

    return f"{part(window.start)}-{part(window.end)}"


def _hours(text: str) -> float:
    h, _, m = text.strip().partition(":")
    return int(h) + (int(m) / 60 if m else 0.0)


def _local(readings: pl.DataFrame, tz: str) -> pl.DataFrame:
    local = pl.col("ts").dt.convert_time_zone(tz)
    return readings.filter(pl.col("import_kwh").is_not_null()).with_columns(
        day=local_day(pl.col("ts"), tz),
        hour=local.dt.hour().cast(pl.Float64) + local.dt.minute().cast(pl.Float64) / 60.0,
    )


def peak_share(readings: pl.DataFrame, tz: str, window: PeakWindow | None = None) -> pl.DataFrame:
    """Per meter: ``meter_id``, ``kwh``, ``peak_kwh``, ``peak_share`` (energy in the
    window over all energy), from ``readings`` (``meter_id``, ``ts``, ``import_kwh``)."""
    win = window or PeakWindow()
    return (
        _local(readings, tz)
        .group_by("meter_id")
        .agg(
            kwh=pl.col("import_kwh").sum(),
            peak_kwh=pl.col("import_kwh").filter(win.contains(pl.col("hour"))).sum(),
        )
        .with_columns(
            peak_share=pl.when(pl.col("kwh") > 0).then(pl.col("peak_kwh") / pl.col("kwh"))
        )
        .sort("meter_id")
    )


@dataclass(frozen=True)
class TariffEffect:
    """Mean peak shares of the two groups, their difference (std - ToU) with a 95%
    bootstrap interval, and the relative reduction (difference / std) with its own."""

    n_std: int
    n_tou: int
    std_share: float
    tou_share: float
    difference: float
    difference_low: float
    difference_high: float
    relative: float
    relative_low: float
    relative_high: float
    resamples: int


def tariff_effect(
    shares: pl.DataFrame,
    *,
    tou: str = "ToU",
    std: str = "Std",
    resamples: int = 2000,
    seed: int = 0,
) -> TariffEffect:
    """Compare ``peak_share`` between the households whose ``tariff`` is ``tou`` and
    ``std`` (labels compared case-insensitively)."""
    label = pl.col("tariff").str.to_lowercase()
    ok = shares.filter(pl.col("peak_share").is_not_null())
    a = ok.filter(label == std.lower())["peak_share"].to_numpy().astype(float)
    b = ok.filter(label == tou.lower())["peak_share"].to_numpy().astype(float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"need at least two households on each tariff ({std}: {len(a)}, {tou}: {len(b)})"
        )
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
    mb = b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1)
    diff, rel = ma - mb, (ma - mb) / ma
    d = float(a.mean() - b.mean())
    return TariffEffect(
        n_std=len(a),
        n_tou=len(b),
        std_share=float(a.mean()),
        tou_share=float(b.mean()),
        difference=d,
        difference_low=float(np.quantile(diff, 0.025)),
        difference_high=float(np.quantile(diff, 0.975)),
        relative=d / float(a.mean()),
        relative_low=float(np.quantile(rel, 0.025)),
        relative_high=float(np.quantile(rel, 0.975)),
        resamples=resamples,
    )


@dataclass(frozen=True)
class ShiftResult:
    """The meters' summed peak before and after the shift (kW, interval start UTC)."""

    share: float
    moved_kwh: float
    peak_kw: float | None
    peak_ts: dt.datetime | None
    new_peak_kw: float | None
    new_peak_ts: dt.datetime | None
    reduction_kw: float | None
    reduction_share: float | None
    new_peak_in_window: bool | None
    after: pl.DataFrame  # ts, interval_s, kw_before, kw_after


def shift_peak(
    readings: pl.DataFrame,
    share: float,
    *,
    tz: str,
    window: PeakWindow | None = None,
    into: PeakWindow | None = None,
) -> ShiftResult:
    """Move ``share`` of each meter's peak-window energy, each local day, into the
    ``into`` window (default 20:00-24:00, the hours just after the evening peak,
    where households who delay use tend to put it) and recompute the summed peak."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"shift {share}: expected a share between 0 and 1")
    win, dest = window or PeakWindow(), into or PeakWindow(20.0, 24.0)
    check_windows(win, dest)
    rows = _local(readings, tz).with_columns(
        in_peak=win.contains(pl.col("hour")), in_dest=dest.contains(pl.col("hour"))
    )
    # an interval in both windows gives and takes: only the part outside the peak takes
    rows = rows.with_columns(in_dest=pl.col("in_dest") & ~pl.col("in_peak"))
    per_day = rows.group_by("meter_id", "day").agg(
        moved=(pl.col("import_kwh").filter(pl.col("in_peak")).sum() * share),
        slots=pl.col("in_dest").sum(),
    )
    rows = rows.join(per_day, on=["meter_id", "day"]).with_columns(
        moved=pl.when(pl.col("slots") > 0).then(pl.col("moved")).otherwise(0.0)
    )
    rows = rows.with_columns(
        after_kwh=pl.when(pl.col("in_peak") & (pl.col("slots") > 0))
        .then(pl.col("import_kwh") * (1.0 - share))
        .when(pl.col("in_dest"))
        .then(pl.col("import_kwh") + pl.col("moved") / pl.col("slots"))
        .otherwise(pl.col("import_kwh"))
    )
    moved = float(
        rows.filter(pl.col("in_peak") & (pl.col("slots") > 0))
        .select((pl.col("import_kwh") * share).sum())
        .item()
        or 0.0
    )
    to_kw = 3600.0 / pl.col("interval_s")
    after = (
        rows.group_by("ts")
        .agg(
            pl.col("interval_s").max(),
            kw_before=(pl.col("import_kwh") * to_kw).sum(),
            kw_after=(pl.col("after_kwh") * to_kw).sum(),
            in_peak=pl.col("in_peak").any(),
        )
        .sort("ts")
    )
    if after.is_empty():
        return ShiftResult(share, 0.0, None, None, None, None, None, None, None, after)
    before_at = after.sort(["kw_before", "ts"], descending=[True, False]).row(0, named=True)
    after_at = after.sort(["kw_after", "ts"], descending=[True, False]).row(0, named=True)
    peak, new = float(before_at["kw_before"]), float(after_at["kw_after"])
    return ShiftResult(
        share=share,
        moved_kwh=moved,
        peak_kw=peak,
        peak_ts=before_at["ts"],
        new_peak_kw=new,
        new_peak_ts=after_at["ts"],
        reduction_kw=peak - new,
        reduction_share=(peak - new) / peak if peak > 0 else None,
        new_peak_in_window=bool(after_at["in_peak"]),
        after=after.drop("in_peak"),
    )
