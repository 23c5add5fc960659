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

One extension, on by default (``shrink=False`` is CalTRACK exactly): a month's 168
hour-of-week coefficients, fitted on about two months of a household's noisy hours,
carry much of that noise. So the whole-period model is fitted first, and each month's
segment is a *correction* to it: fitted to what the whole-period model leaves, with a
ridge penalty on its hour-of-week coefficients (an unpenalised level and temperature
slopes), the penalty chosen per month from :data:`SHRINKAGES` by the leave-one-out
error over the month's own hours (exact, from the hat matrix's diagonal). The month
predicts as the whole-period model plus its correction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl

from metrify.analytics.baselines import metrics

__all__ = ["BIN_EDGES_C", "SHRINKAGES", "HourlyModel", "fit_hourly", "occupancy"]

#: CalTRACK's temperature bin endpoints 30, 45, 55, 65, 75, 90 °F, in °C
BIN_EDGES_C: Final = tuple(round((f - 32.0) * 5.0 / 9.0, 2) for f in (30, 45, 55, 65, 75, 90))
MIN_BIN_HOURS: Final = 20
OCCUPIED_SHARE: Final = 0.65
#: CalTRACK's occupancy model balance points, 50 °F and 65 °F in °C
_OCC_HDD_C: Final = 10.0
_OCC_CDD_C: Final = 18.33
#: fewer hours than this and no model is fitted (a week of complete hours)
MIN_HOURS: Final = 168
#: the ridge penalties a month's correction to the whole-period model chooses from
SHRINKAGES: Final = (0.0, 0.5, 1.0, 2.0, 4.0)


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
    unoccupied temperature slopes) and the rank of its design (its ``p``); a shrunk
    correction also has an unpenalised ``level`` (a shift of the whole month)."""

    occupied: np.ndarray
    edges: list[float]
    edges_unoccupied: list[float]
    beta: np.ndarray
    rank: int
    level: float = 0.0


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
    occupied, edges, edges_unocc, _, a, wz = _normal_equations(tow, t, y, w)
    b = np.concatenate([np.bincount(tow, weights=w * y, minlength=168), wz.T @ y])
    return _Segment(occupied, edges, edges_unocc, *_solve(a, b))


def _normal_equations(
    tow: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, list[float], list[float], np.ndarray, np.ndarray, np.ndarray]:
    """Occupancy, bins, the temperature columns ``z`` and ``X'WX`` of a segment's hours
    (and ``W z`` for the right-hand sides)."""
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
    return occupied, edges, edges_unocc, z, a, wz


def _fit_correction(
    tow: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    offset: np.ndarray,
    penalties: tuple[float, ...],
) -> tuple[_Segment, float]:
    """A month's correction to the whole-period model: the segment's coefficients
    fitted to ``y - offset`` with a ridge penalty on the hour-of-week coefficients
    (each scaled by its own weighted count, so a penalty of 1 roughly halves every
    coefficient) and an unpenalised level (a shift of the whole month) and temperature
    slopes. The penalty is
    the one of ``penalties`` with the smallest leave-one-out error over the month's
    own hours (weight 1), from the hat matrix's diagonal: no refit per hour. Occupancy
    and bins come from ``y`` itself, as CalTRACK's do. Returns the segment and the
    penalty chosen."""
    keep = w > 0
    tow, t, y, w, offset = tow[keep], t[keep], y[keep], w[keep], offset[keep]
    occupied, edges, edges_unocc, z, a, wz = _normal_equations(tow, t, y, w)
    target = y - offset
    k = z.shape[1]
    counts = np.diagonal(a)[:168].copy()
    seen = counts > 0
    cross = a[:168, 168:]
    own = w >= 1.0
    tw, z_own = tow[own], z[own]
    b_tow = np.bincount(tow, weights=w * target, minlength=168)
    b_z = np.concatenate([wz.T @ target, [(w * target).sum()]])
    best: tuple[float, float, _Segment] | None = None
    for penalty in penalties:
        # the system by blocks: D (the indicators' diagonal, penalised), C (indicators
        # x temperature columns and level), E (those columns among themselves); with
        # no penalty the level is the indicators' sum and is left out
        cols = k + 1 if penalty > 0 else k
        d = counts * (1.0 + penalty)
        c = np.column_stack([cross, counts])[:, :cols]
        e = np.zeros((cols, cols))
        e[:k, :k] = a[168:, 168:]
        if cols > k:
            e[k, :k] = e[:k, k] = wz.sum(axis=0)
            e[k, k] = w.sum()
        d_inv = np.where(seen, 1.0 / np.where(seen, d, 1.0), 0.0)
        dc = c * d_inv[:, None]
        schur = e - c.T @ dc
        try:
            s_inv = np.linalg.inv(schur)
        except np.linalg.LinAlgError:
            s_inv = np.linalg.pinv(schur)
        rhs_z = b_z[:cols] - dc.T @ b_tow
        beta_z = s_inv @ rhs_z
        beta_tow = d_inv * b_tow - dc @ beta_z
        u = np.column_stack([z_own, np.ones(tw.size)])[:, :cols]
        # the hat matrix's diagonal for hour i (weight 1): x_i' M^-1 x_i, with the
        # inverse's blocks D^-1 + D^-1 C S^-1 C' D^-1, -D^-1 C S^-1 and S^-1
        g = dc[tw] @ s_inv
        h = d_inv[tw] + np.einsum("ia,ia->i", g, dc[tw]) - 2.0 * np.einsum("ia,ia->i", g, u)
        h += np.einsum("ia,ab,ib->i", u, s_inv, u)
        resid = target[own] - beta_tow[tw] - u @ beta_z
        loo = float(np.sum((resid / np.maximum(1.0 - h, 1e-6)) ** 2))
        if best is None or loo < best[0]:
            rank = int(seen.sum()) + int(np.linalg.matrix_rank(schur))
            level = float(beta_z[k]) if cols > k else 0.0
            seg = _Segment(
                occupied, edges, edges_unocc, np.concatenate([beta_tow, beta_z[:k]]), rank, level
            )
            best = (loo, penalty, seg)
    assert best is not None
    return best[2], best[1]


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
        seg.level
        + seg.beta[tow]
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
    #: None: each month's segment is a model of its own (CalTRACK); else each month's
    #: segment is a correction to ``whole``, ridge-shrunk by the penalty given per month
    shrinkage: dict[int, float] | None = None

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Use per hour (kWh) for rows with ``tow``, ``month`` and ``temperature_c``."""
        tow = frame["tow"].to_numpy().astype(int)
        t = frame["temperature_c"].to_numpy().astype(float)
        month = frame["month"].to_numpy().astype(int)
        return self._predict(tow, t, month)

    def _predict(self, tow: np.ndarray, t: np.ndarray, month: np.ndarray) -> np.ndarray:
        out = np.empty(tow.size)
        for m in np.unique(month):
            rows = month == m
            seg = self.months.get(int(m))
            if seg is None:
                out[rows] = _predict_segment(self.whole, tow[rows], t[rows])
            elif self.shrinkage is None:
                out[rows] = _predict_segment(seg, tow[rows], t[rows])
            else:
                out[rows] = _predict_segment(self.whole, tow[rows], t[rows]) + _predict_segment(
                    seg, tow[rows], t[rows]
                )
        return out

    def summary(self) -> dict[str, object]:
        return {
            "segmentation": self.segmentation,
            # the ridge penalty each month's correction chose (None: CalTRACK's segments)
            "shrinkage": (
                None if self.shrinkage is None else {str(m): v for m, v in self.shrinkage.items()}
            ),
            "occupied_hours_of_week": int(self.occupied.sum()),
            "months": sorted(self.months),
            "bin_edges_c": self.whole.edges,
            "n": self.n,
            "p": self.p,
            "cvrmse": self.cvrmse,
            "nmbe": self.nmbe,
            "mean_kwh": self.mean_kwh,
        }


def fit_hourly(
    frame: pl.DataFrame,
    *,
    segmentation: str = "three_month_weighted",
    shrink: bool = True,
) -> HourlyModel:
    """Fit TOWT to an hourly frame (``kwh``, ``temperature_c``, ``tow``, ``month``), as
    :func:`metrify.analytics.baselines.prepare.hourly_frame` makes it.

    ``segmentation`` is ``three_month_weighted`` (CalTRACK's default) or ``all`` (one
    model for the whole period). With ``shrink`` (the default) each month's segment is
    a correction to the whole-period model, ridge-shrunk by the penalty of
    :data:`SHRINKAGES` its leave-one-out error prefers; ``shrink=False`` is CalTRACK
    exactly (each month a model of its own). Raises ValueError on too few hours."""
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
    base = _predict_segment(whole, tow, t) if shrink else None
    months: dict[int, _Segment] = {}
    chosen: dict[int, float] = {}
    if segmentation == "three_month_weighted":
        for m in np.unique(month):
            before, after = (m - 2) % 12 + 1, m % 12 + 1
            w = np.where(month == m, 1.0, np.where((month == before) | (month == after), 0.5, 0.0))
            if base is None:
                months[int(m)] = _fit_segment(tow, t, y, w)
            else:
                months[int(m)], chosen[int(m)] = _fit_correction(tow, t, y, w, base, SHRINKAGES)
    model = HourlyModel(
        occupied, months, whole, y.size, 0, 0.0, 0.0, float(y.mean()), segmentation,
        chosen if months and shrink else None,
    )  # fmt: skip
    yhat = model._predict(tow, t, month)
    # p: the coefficients the hours were predicted with; with monthly segments each
    # month's rows carry that month's (the mean over the hours; a shrunk correction
    # counts its own rank, the whole-period model's is shared by every month)
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
        model.shrinkage,
    )
