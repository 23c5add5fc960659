"""How groups of households differ: per-group means with intervals, and the time-of-use
effect at peak.

Households are the unit of every comparison: one value per household (its peak share,
load factor...), so a household with more data does not weigh more, and intervals come
from resampling households, not half-hours (half-hours of one home are far from
independent). Intervals are bootstrap percentile intervals, stratified by group: each
group is resampled with replacement at its own size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = [
    "PeakShareDifference",
    "compare_groups",
    "comparison",
    "peak_share_difference",
    "slot_difference",
]


@dataclass(frozen=True)
class PeakShareDifference:
    """``treated`` minus ``control`` in the mean of ``value`` over households, with a
    bootstrap percentile interval at ``level``."""

    value: str
    treated: str
    control: str
    n_treated: int
    n_control: int
    mean_treated: float
    mean_control: float
    difference: float
    low: float
    high: float
    level: float
    resamples: int


def _groups(frame: pl.DataFrame, group: str, value: str) -> dict[str, np.ndarray]:
    kept = frame.filter(pl.col(group).is_not_null() & pl.col(value).is_not_null())
    return {
        str(key[0]): part[value].to_numpy().astype(float)
        for key, part in kept.group_by(group, maintain_order=True)
    }


def _boot_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(values), (resamples, len(values)))
    means: np.ndarray = values[idx].mean(axis=1)
    return means


def peak_share_difference(
    households: pl.DataFrame,
    group: str = "tariff",
    treated: str = "ToU",
    control: str = "Std",
    value: str = "peak_share",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PeakShareDifference:
    """What the time-of-use households did differently at peak.

    ``households`` holds one row per household with its ``group`` (tariff) and
    ``value`` (by default ``peak_share``: the share of its energy used in the peak hours,
    see :mod:`metrify.analytics.patterns.metrics`). Returns the difference of the group
    means, treated minus control (negative: the time-of-use households put a smaller
    share of their energy in the peak), with a stratified bootstrap percentile interval.

    Used beyond the patterns: the grid analysis scales the flexible share of peak load
    by this difference (and its interval) to estimate what moving load out of the peak
    could do, grounded in what households on a time-of-use tariff actually did.
    ValueError when either group has fewer than two households.
    """
    by = _groups(households, group, value)
    for name in (treated, control):
        if len(by.get(name, ())) < 2:
            raise ValueError(f"{group} {name!r}: fewer than two households with a {value}")
    rng = np.random.default_rng(seed)
    t, c = by[treated], by[control]
    diffs = _boot_means(t, resamples, rng) - _boot_means(c, resamples, rng)
    tail = (1 - level) / 2
    return PeakShareDifference(
        value=value,
        treated=treated,
        control=control,
        n_treated=len(t),
        n_control=len(c),
        mean_treated=float(t.mean()),
        mean_control=float(c.mean()),
        difference=float(t.mean() - c.mean()),
        low=float(np.quantile(diffs, tail)),
        high=float(np.quantile(diffs, 1 - tail)),
        level=level,
        resamples=resamples,
    )


def compare_groups(
    households: pl.DataFrame,
    group: str,
    values: Sequence[str] = ("peak_share", "load_factor", "base_load_kw", "mean_daily_kwh"),
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """Per group: ``households`` and, for each of ``values``, the mean over households
    with a bootstrap percentile interval (``<value>``, ``<value>_low``, ``<value>_high``);
    groups in order of size, largest first. Values missing from the frame are skipped."""
    values = [v for v in values if v in households.columns]
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2
    rows: dict[str, dict[str, object]] = {}
    for value in values:
        for name, data in _groups(households, group, value).items():
            row = rows.setdefault(name, {group: name, "households": 0})
            row["households"] = max(int(row["households"]), len(data))  # type: ignore[call-overload]
            means = _boot_means(data, resamples, rng)
            row[value] = float(data.mean())
            row[f"{value}_low"] = float(np.quantile(means, tail))
            row[f"{value}_high"] = float(np.quantile(means, 1 - tail))
    schema = {group: pl.String, "households": pl.Int64} | {
        f"{v}{s}": pl.Float64 for v in values for s in ("", "_low", "_high")
    }
    frame = pl.DataFrame(list(rows.values()), schema=schema)
    return frame.sort(["households", group], descending=[True, False])


def slot_difference(
    shapes: np.ndarray,
    groups: Sequence[str],
    treated: str = "ToU",
    control: str = "Std",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """Slot by slot, treated minus control in the mean day shape (share of daily energy
    per half-hour; ``shapes`` one row per household, ``groups`` its group), with a
    stratified bootstrap interval: where in the day the difference lies. Columns slot,
    difference, low, high."""
    labels = np.asarray(groups)
    t, c = shapes[labels == treated], shapes[labels == control]
    if len(t) < 2 or len(c) < 2:
        raise ValueError(f"{treated!r} and {control!r} need two households each")
    rng = np.random.default_rng(seed)
    ti = rng.integers(0, len(t), (resamples, len(t)))
    ci = rng.integers(0, len(c), (resamples, len(c)))
    diffs = t[ti].mean(axis=1) - c[ci].mean(axis=1)
    tail = (1 - level) / 2
    return pl.DataFrame(
        {
            "slot": np.arange(shapes.shape[1], dtype=np.int32),
            "difference": t.mean(axis=0) - c.mean(axis=0),
            "low": np.quantile(diffs, tail, axis=0),
            "high": np.quantile(diffs, 1 - tail, axis=0),
        }
    )


def comparison(
    households: pl.DataFrame,
    by: str,
    treated: str | None = None,
    control: str | None = None,
    peak: tuple[int, int] | None = None,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, object]:
    """Everything a segment comparison shows, as plain data: per group means with
    intervals (:func:`compare_groups`); with ``treated`` and ``control`` named, their
    difference in peak share (:func:`peak_share_difference`) and, when ``households``
    has a ``shape`` column (48 shares per household) and ``peak`` slots are given, the
    slot-by-slot difference of their day shapes over the day."""
    groups = compare_groups(households, by, resamples=resamples, level=level, seed=seed)
    out: dict[str, object] = {
        "by": by,
        "level": level,
        "resamples": resamples,
        "groups": groups.to_dicts(),
        "difference": None,
        "by_slot": None,
    }
    if treated is None or control is None:
        return out
    diff = peak_share_difference(
        households, by, treated, control, resamples=resamples, level=level, seed=seed
    )
    out["difference"] = diff.__dict__ | {"peak_slots": list(peak) if peak else None}
    if "shape" in households.columns:
        shaped = households.filter(
            pl.col("shape").is_not_null() & pl.col(by).is_in([treated, control])
        )
        if shaped.height:
            matrix = np.vstack([np.asarray(s, dtype=float) for s in shaped["shape"].to_list()])
            slots = slot_difference(
                matrix, shaped[by].to_list(), treated, control, resamples, level, seed
            )
            out["by_slot"] = slots.to_dicts()
    return out
