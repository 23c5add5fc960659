"""The hourly time-of-week-and-temperature (TOWT) model, as CalTRACK's hourly method
(after LBNL's Mathieu et al. 2011) builds it.

Use in an hour is a coefficient for its hour of the week (168 indicators, no separate
intercept) plus a piecewise-linear function of the hour's temperature, with separate
temperature slopes for *occupied* and *unoccupied* hours of the week::

    use = a[tow] + sum_k occ[tow] * bo_k * T_k + sum_k (1 - occ[tow]) * bu_k * T_k

``T_k`` is the part of the temperature inside bin ``k`` of the bin endpoints
:data:`BIN_EDGES_C` (CalTRACK's 30, 45, 55, 65, 75, 90 °F), so use bends at each
endpoint. A bin with fewer than :data:`MIN_BIN_HOURS` hours of data is merged with its
neighbour (CalTRACK's rule), so a mild climate does not get a slope from a dozen hours.

Occupancy (CalTRACK 3.3.2): a first model of use against HDD at 50 °F and CDD at 65 °F
is fitted; an hour of the week is *occupied* when more than 65 % of its residuals are
positive, i.e. the building uses more then than the weather explains. Occupancy and the
bins (separately for occupied and unoccupied hours) are found per segment, on that
segment's weighted hours, as CalTRACK does.

Segmentation (CalTRACK's "three-month weighted"): one model per calendar month, fitted
on that month's hours with weight 1 and the two neighbouring months' with weight 0.5,
each month predicted by its own model; a month without its own data falls back to a
model of the whole baseline period.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl

from metrify.analytics.baselines import metrics

__all__ = ["BIN_EDGES_C", "HourlyModel", "fit_hourly", "occupancy"]

#: CalTRACK's temperature bin endpoints 30, 45, 55, 65, 75, 90 °F, in °C
BIN_EDGES_C: Final = tuple(round((f - 32.0) * 5.0 / 9.0, 2) for f in (30, 45, 55, 65, 75, 90))
MIN_BIN_HOURS: Final = 20
OCCUPIED_SHARE: Final = 0.65
#: CalTRACK's occupancy model balance points, 50 °F and 65 °F in °C
_OCC_HDD_C: Final = 10.0
_OCC_CDD_C: Final = 18.33
#: fewer hours than this and no model is fitted (a week of complete hours)
MIN_HOURS: Final = 168


def occupancy(frame: pl.DataFrame) -> np.ndarray:
    """Per hour of the week (168), whether it is occupied over the whole frame."""
    return _occupancy(
        frame["tow"].to_numpy().astype(int),
        frame["temperature_c"].to_numpy().astype(float),
        frame["kwh"].to_numpy().astype(float),
        np.ones(frame.height),
    )


def _occupancy(tow: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per hour of the week, whether more than 65 % (by weight) of its residuals from
    use against HDD(10 °C) and CDD(18.33 °C), fitted on the same weighted hours, are
    positive."""
    x = np.column_stack(
        [np.ones_like(t), np.maximum(_OCC_HDD_C - t, 0.0), np.maximum(t - _OCC_CDD_C, 0.0)]
    )
    root = np.sqrt(w)
    beta = np.linalg.lstsq(x * root[:, None], y * root, rcond=None)[0]
    above = (y - x @ beta) > 0
    weight = np.bincount(tow, weights=w, minlength=168)
    positive = np.bincount(tow, weights=w * above, minlength=168)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(weight > 0, positive / weight, 0.0)
    return np.asarray(share > OCCUPIED_SHARE)


def bin_edges(temperature: np.ndarray, weights: np.ndarray | None = None) -> list[float]:
    """CalTRACK's bin endpoints, merged until every bin holds :data:`MIN_BIN_HOURS`."""
    t = temperature if weights is None else temperature[weights > 0]
    edges = list(BIN_EDGES_C)
    while edges:
        counts = np.bincount(np.searchsorted(edges, t, side="left"), minlength=len(edges) + 1)
        small = counts < MIN_BIN_HOURS
        if not small.any():
            break
        # from the outside in (the tails are sparsest): the lowest bin merges upwards,
        # the highest downwards; only then does a middle bin merge with the next one up
        drop = set()
        if small[0]:
            drop.add(edges[0])
        if small[-1]:
            drop.add(edges[-1])
        if not drop:
            drop = {edges[i] for i in range(1, len(edges)) if small[i]}
        edges = [e for e in edges if e not in drop]
    return edges


def temperature_terms(t: np.ndarray, edges: list[float]) -> np.ndarray:
    """The piecewise-linear terms: column k is the part of ``t`` inside bin k."""
    if not edges:
        return t[:, None].copy()
    cols = [np.minimum(t, edges[0])]
    for lo, hi in itertools.pairwise(edges):
        cols.append(np.clip(t - lo, 0.0, hi - lo))
    cols.append(np.maximum(t - edges[-1], 0.0))
    return np.column_stack(cols)


@dataclass(frozen=True)
class _Segment:
    """One fitted segment: its occupied hours of the week, the bin edges of occupied
    and of unoccupied hours, coefficients (168 time-of-week, then occupied and
    unoccupied temperature slopes) and the rank of its design (its ``p``)."""

    occupied: np.ndarray
    edges: list[float]
    edges_unoccupied: list[float]
    beta: np.ndarray
    rank: int


def _temperature_part(
    tow: np.ndarray,
    t: np.ndarray,
    occupied: np.ndarray,
    edges: list[float],
    edges_unoccupied: list[float],
) -> np.ndarray:
    """The temperature columns of the design: occupied hours' terms, then unoccupied."""
    occ = occupied[tow].astype(float)[:, None]
    return np.hstack(
        [temperature_terms(t, edges) * occ, temperature_terms(t, edges_unoccupied) * (1.0 - occ)]
    )


def _fit_segment(tow: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray) -> _Segment:
    """One segment, as CalTRACK fits it: occupancy and the bins (separately for
    occupied and unoccupied hours) from the segment's own weighted hours, then weighted
    least squares through the normal equations, built from the design's structure (the
    168 time-of-week indicators make a diagonal block, so the system costs O(hours x
    temperature terms) to build, not a dense hours x 180 product)."""
    keep = w > 0
    tow, t, y, w = tow[keep], t[keep], y[keep], w[keep]
    occupied = _occupancy(tow, t, y, w)
    is_occ = occupied[tow]
    edges, edges_unocc = bin_edges(t[is_occ]), bin_edges(t[~is_occ])
    z = _temperature_part(tow, t, occupied, edges, edges_unocc)
    k = z.shape[1]
    a = np.zeros((168 + k, 168 + k))
    a[np.arange(168), np.arange(168)] = np.bincount(tow, weights=w, minlength=168)
    wz = z * w[:, None]
    cross = np.column_stack([np.bincount(tow, weights=wz[:, j], minlength=168) for j in range(k)])
    a[:168, 168:] = cross
    a[168:, :168] = cross.T
    a[168:, 168:] = z.T @ wz
    b = np.concatenate([np.bincount(tow, weights=w * y, minlength=168), wz.T @ y])
    return _Segment(occupied, edges, edges_unocc, *_solve(a, b))


def _solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """The normal equations' solution and its rank. Columns without data (an hour of
    the week never seen, a bin only occupied hours reach) get 0 and do not count; the
    rest is solved by Cholesky, ten times faster than an SVD at this size, with the
    SVD as the fallback when they are collinear."""
    keep = np.diagonal(a) > 1e-12
    beta = np.zeros(b.size)
    sub, rhs = a[np.ix_(keep, keep)], b[keep]
    # SciPy loads here, not with the module: every `metrify` command imports this one
    # (for its help) and SciPy took about a second of each command's start.
    import scipy.linalg  # type: ignore[import-untyped]

    try:
        factor = scipy.linalg.cho_factor(sub, check_finite=False)
        beta[keep] = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
        return beta, int(keep.sum())
    except np.linalg.LinAlgError:
        solved, _, rank, _ = np.linalg.lstsq(sub, rhs, rcond=None)
        beta[keep] = solved
        return beta, int(rank)


def _predict_segment(seg: _Segment, tow: np.ndarray, t: np.ndarray) -> np.ndarray:
    out: np.ndarray = (
        seg.beta[tow]
        + _temperature_part(tow, t, seg.occupied, seg.edges, seg.edges_unoccupied) @ seg.beta[168:]
    )
    return out


@dataclass(frozen=True)
class HourlyModel:
    """A fitted TOWT model: the occupied hours of the week, one segment per month (and
    one for the whole period), and its in-sample fit."""

    occupied: np.ndarray
    months: dict[int, _Segment]
    whole: _Segment
    n: int
    p: int
    cvrmse: float
    nmbe: float
    mean_kwh: float
    segmentation: str = field(default="three_month_weighted")

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Use per hour (kWh) for rows with ``tow``, ``month`` and ``temperature_c``."""
        tow = frame["tow"].to_numpy().astype(int)
        t = frame["temperature_c"].to_numpy().astype(float)
        month = frame["month"].to_numpy().astype(int)
        out = np.empty(tow.size)
        for m in np.unique(month):
            rows = month == m
            seg = self.months.get(int(m), self.whole)
            out[rows] = _predict_segment(seg, tow[rows], t[rows])
        return out

    def summary(self) -> dict[str, object]:
        return {
            "segmentation": self.segmentation,
            "occupied_hours_of_week": int(self.occupied.sum()),
            "months": sorted(self.months),
            "bin_edges_c": self.whole.edges,
            "n": self.n,
            "p": self.p,
            "cvrmse": self.cvrmse,
            "nmbe": self.nmbe,
            "mean_kwh": self.mean_kwh,
        }


def fit_hourly(frame: pl.DataFrame, *, segmentation: str = "three_month_weighted") -> HourlyModel:
    """Fit TOWT to an hourly frame (``kwh``, ``temperature_c``, ``tow``, ``month``), as
    :func:`metrify.analytics.baselines.prepare.hourly_frame` makes it.

    ``segmentation`` is ``three_month_weighted`` (CalTRACK's default) or ``all`` (one
    model for the whole period). Raises ValueError on too few hours."""
    if segmentation not in ("three_month_weighted", "all"):
        raise ValueError(f"segmentation {segmentation!r}: use three_month_weighted or all")
    if frame.height < MIN_HOURS:
        raise ValueError(f"{frame.height} complete hours; at least {MIN_HOURS} are needed")
    y = frame["kwh"].to_numpy().astype(float)
    t = frame["temperature_c"].to_numpy().astype(float)
    tow = frame["tow"].to_numpy().astype(int)
    month = frame["month"].to_numpy().astype(int)
    occupied = occupancy(frame)
    whole = _fit_segment(tow, t, y, np.ones_like(y))
    months: dict[int, _Segment] = {}
    if segmentation == "three_month_weighted":
        for m in np.unique(month):
            before, after = (m - 2) % 12 + 1, m % 12 + 1
            w = np.where(month == m, 1.0, np.where((month == before) | (month == after), 0.5, 0.0))
            months[int(m)] = _fit_segment(tow, t, y, w)
    model = HourlyModel(occupied, months, whole, y.size, 0, 0.0, 0.0, float(y.mean()), segmentation)
    yhat = model.predict(frame)
    # p: the coefficients the hours were predicted with; with monthly segments each
    # month's rows carry that month's (the mean over the hours)
    p = round(float(np.mean([months[int(m)].rank for m in month]))) if months else whole.rank
    return HourlyModel(
        occupied,
        months,
        whole,
        y.size,
        p,
        metrics.cvrmse(y, yhat, p),
        metrics.nmbe(y, yhat, p),
        float(y.mean()),
        segmentation,
    )
