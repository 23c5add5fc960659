"""Load factor, base load, peak time and peak-hour share of each id's half-hours.

Definitions (what a utility's load analyst would compute, stated so results can be
checked by hand):

* **load factor**: mean demand over peak demand of the measured half-hours
  (kW = kWh / 0.5 h); 1 for a flat load, small for a peaky one;
* **base load**: the :attr:`Definitions.base_quantile` (10th percentile by default) of
  half-hourly demand between :attr:`Definitions.night_start` and
  :attr:`Definitions.night_end` local time (00:00-05:00): the always-on load (fridge,
  standby, heating pumps) without the odd zero of a measurement glitch;
* **peak time**: the local half-hour with the highest mean demand over complete days
  (the typical day's peak, not the single highest reading);
* **peak share**: energy in the peak hours (:class:`PeakHours`, 16:00-19:00 local by
  default, the GB distribution red band) over all energy, on complete days only, so a
  gap at one time of day does not tilt it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from metrify.analytics.patterns.profiles import complete_days, slot_label

__all__ = ["Definitions", "PeakHours", "metrics"]

_PEAK_TEXT = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class PeakHours:
    """Local peak hours as half-hour slots [start_slot, end_slot) of the day (0-48):
    16:00-19:00 is slots 32-38."""

    start_slot: int = 32
    end_slot: int = 38

    def __post_init__(self) -> None:
        if not 0 <= self.start_slot < self.end_slot <= 48:
            raise ValueError("peak hours must end after they start, within one local day")

    @classmethod
    def parse(cls, text: str) -> PeakHours:
        """``HH:MM-HH:MM`` on half-hours, e.g. ``16:00-19:00`` (``24:00`` is midnight)."""
        match = _PEAK_TEXT.match(text.strip())
        if not match:
            raise ValueError(f"peak hours {text!r}: expected HH:MM-HH:MM, like 16:00-19:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if m1 not in (0, 30) or m2 not in (0, 30) or h1 > 23 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"peak hours {text!r}: times are half-hours from 00:00 to 24:00")
        try:
            return cls(h1 * 2 + m1 // 30, h2 * 2 + m2 // 30)
        except ValueError as exc:
            raise ValueError(f"peak hours {text!r}: {exc}") from None

    def __str__(self) -> str:
        return f"{slot_label(self.start_slot)}-{slot_label(self.end_slot)}"


@dataclass(frozen=True)
class Definitions:
    """The choices behind the figures, kept with every stored run."""

    peak: PeakHours = PeakHours()
    base_quantile: float = 0.10
    night_start: int = 0  # local hour, inclusive
    night_end: int = 5  # local hour, exclusive


def metrics(local: pl.DataFrame, definitions: Definitions | None = None) -> pl.DataFrame:
    """One row per id of :func:`~metrify.analytics.patterns.profiles.local_half_hours`'s
    frame: ``days`` (local days with any data), ``complete_days``, ``mean_daily_kwh``
    (over complete days), ``mean_kw``, ``peak_kw``, ``load_factor``, ``base_load_kw``,
    ``peak_slot``/``peak_time`` and ``peak_share`` (None where no complete day)."""
    d = definitions or Definitions()
    overall = local.group_by("id").agg(
        pl.col("date").n_unique().alias("days"),
        pl.col("kw").mean().alias("mean_kw"),
        pl.col("kw").max().alias("peak_kw"),
    )
    overall = overall.with_columns(
        pl.when(pl.col("peak_kw") > 0)
        .then(pl.col("mean_kw") / pl.col("peak_kw"))
        .otherwise(None)
        .alias("load_factor")
    )
    night = local.filter((pl.col("slot") >= 2 * d.night_start) & (pl.col("slot") < 2 * d.night_end))
    base = night.group_by("id").agg(
        pl.col("kw").quantile(d.base_quantile, interpolation="linear").alias("base_load_kw")
    )
    full = complete_days(local)
    in_peak = (pl.col("slot") >= d.peak.start_slot) & (pl.col("slot") < d.peak.end_slot)
    shares = full.group_by("id").agg(
        pl.col("date").n_unique().alias("complete_days"),
        (pl.col("kwh").sum() / pl.col("date").n_unique()).alias("mean_daily_kwh"),
        pl.when(pl.col("kwh").sum() > 0)
        .then(pl.col("kwh").filter(in_peak).sum() / pl.col("kwh").sum())
        .otherwise(None)
        .alias("peak_share"),
    )
    by_slot = full.group_by("id", "slot").agg(pl.col("kw").mean())
    peak_slot = (
        by_slot.sort(["id", "kw", "slot"], descending=[False, True, False])
        .group_by("id", maintain_order=True)
        .first()
        .select("id", pl.col("slot").alias("peak_slot"))
    )
    out = (
        overall.join(base, on="id", how="left")
        .join(shares, on="id", how="left")
        .join(peak_slot, on="id", how="left")
        .with_columns(
            pl.col("complete_days").fill_null(0),
            pl.col("peak_slot").map_elements(slot_label, return_dtype=pl.String).alias("peak_time"),
        )
    )
    return out.select(
        "id",
        "days",
        "complete_days",
        "mean_daily_kwh",
        "mean_kw",
        "peak_kw",
        "load_factor",
        "base_load_kw",
        "peak_slot",
        "peak_time",
        "peak_share",
    ).sort("id")
