"""The CalTRACK daily method: use per day against heating and cooling degree days, with
the balance points found by a grid search.

CalTRACK 2.0 (section 3.4) fits four candidate models by ordinary least squares on the
baseline period's days::

    intercept-only   use = b0
    HDD-only         use = b0 + bh * HDD(Th)                 HDD(T) = max(T - t, 0)
    CDD-only         use = b0 + bc * CDD(Tc)                 CDD(T) = max(t - T, 0)
    HDD+CDD          use = b0 + bh * HDD(Th) + bc * CDD(Tc)  with Th <= Tc

where ``t`` is the day's mean temperature. Each balance point runs over a grid (CalTRACK
2.0: 30-90 °F in 1 °F steps; here :data:`BALANCE_POINTS`, -1 to 32 °C in 0.5 °C steps,
the same range in steps a little under 1 °F). A candidate qualifies when each of its
slopes is positive and significant (p-value below :data:`MAX_P_VALUE`, 0.1) and each of
its degree-day series has at least 10 days above zero and at least 20 °F-days in all
(11.1 °C-days); among the qualifying candidates of every balance point the one with the
highest adjusted R² is the model. The intercept-only model always qualifies.

The search is vectorised: every balance point (pair) of a model family is fitted at
once through the normal equations, so a year of days costs milliseconds per meter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats  # type: ignore[import-untyped]

from metrify.analytics.baselines import metrics

__all__ = ["BALANCE_POINTS", "MAX_P_VALUE", "DailyModel", "fit_daily"]

#: candidate balance points, °C
BALANCE_POINTS: Final = np.round(np.arange(-1.0, 32.0 + 1e-9, 0.5), 1)
MAX_P_VALUE: Final = 0.1
MIN_NONZERO_DAYS: Final = 10
#: 20 °F-days, in °C-days
MIN_DEGREE_DAYS: Final = 20.0 * 5.0 / 9.0
#: fewer days than this and no model is fitted
MIN_DAYS: Final = 15

Kind = Literal["intercept_only", "hdd_only", "cdd_only", "hdd_cdd"]


@dataclass(frozen=True)
class DailyModel:
    """A fitted daily model: coefficients in kWh per day and per °C-day, balance points
    in °C (None for the terms it does not have) and its fit on the baseline days."""

    kind: Kind
    intercept: float
    heating_balance_c: float | None
    heating_slope: float | None
    cooling_balance_c: float | None
    cooling_slope: float | None
    n: int
    p: int
    r2: float
    r2_adj: float
    cvrmse: float
    nmbe: float
    mean_kwh: float

    def predict(self, temperature_c: npt.ArrayLike) -> np.ndarray:
        """Use per day (kWh) at the given daily mean temperatures."""
        t = np.asarray(temperature_c, dtype=float)
        out = np.full(t.shape, self.intercept)
        if self.heating_slope is not None and self.heating_balance_c is not None:
            out += self.heating_slope * np.maximum(self.heating_balance_c - t, 0.0)
        if self.cooling_slope is not None and self.cooling_balance_c is not None:
            out += self.cooling_slope * np.maximum(t - self.cooling_balance_c, 0.0)
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Best:
    kind: Kind
    beta: tuple[float, ...]
    th: float | None
    tc: float | None
    r2_adj: float


def _adj(r2: np.ndarray, n: int, k: int) -> np.ndarray:
    """Adjusted R² with ``k`` explanatory variables besides the intercept."""
    return np.asarray(1.0 - (1.0 - r2) * (n - 1) / (n - k - 1))


def _degree_days_ok(dd: np.ndarray) -> np.ndarray:
    """Per column: enough days above zero and enough degree days in all."""
    return np.asarray(
        ((dd > 0).sum(axis=0) >= MIN_NONZERO_DAYS) & (dd.sum(axis=0) >= MIN_DEGREE_DAYS)
    )


def _single(y: np.ndarray, dd: np.ndarray, sst: float) -> tuple[np.ndarray, ...]:
    """Every one-slope fit ``y = b0 + b1 * dd[:, j]`` at once: (b0, b1, p-value, R²)."""
    n = y.size
    dmean = dd.mean(axis=0)
    dc = dd - dmean
    sxx = (dc**2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = (dc * (y - y.mean())[:, None]).sum(axis=0) / sxx
        b0 = y.mean() - b1 * dmean
        rss = np.maximum(sst - b1**2 * sxx, 0.0)
        se = np.sqrt(rss / (n - 2) / sxx)
        pval = 2.0 * stats.t.sf(np.abs(b1 / se), n - 2)
        r2 = 1.0 - rss / sst if sst > 0 else np.zeros_like(b1)
    return b0, b1, pval, r2


def _pair(y: np.ndarray, hdd: np.ndarray, cdd: np.ndarray, sst: float) -> tuple[np.ndarray, ...]:
    """Every two-slope fit over the (heating, cooling) balance-point pairs with heating
    <= cooling, by the 3x3 normal equations of each: (i, j, beta, p-values, R²)."""
    n = y.size
    i, j = np.nonzero(BALANCE_POINTS[:, None] <= BALANCE_POINTS[None, :])
    sh, sc = hdd.sum(axis=0), cdd.sum(axis=0)
    hh, cc, hc = (hdd**2).sum(axis=0), (cdd**2).sum(axis=0), hdd.T @ cdd
    xtx = np.empty((i.size, 3, 3))
    xtx[:, 0, 0] = n
    xtx[:, 0, 1] = xtx[:, 1, 0] = sh[i]
    xtx[:, 0, 2] = xtx[:, 2, 0] = sc[j]
    xtx[:, 1, 1] = hh[i]
    xtx[:, 2, 2] = cc[j]
    xtx[:, 1, 2] = xtx[:, 2, 1] = hc[i, j]
    xty = np.stack([np.full(i.size, y.sum()), (hdd.T @ y)[i], (cdd.T @ y)[j]], axis=1)
    # pairs whose degree days are all zero make a singular system; they never qualify
    ok = np.abs(np.linalg.det(xtx)) > 1e-9
    beta = np.full((i.size, 3), np.nan)
    inv = np.full((i.size, 3, 3), np.nan)
    inv[ok] = np.linalg.inv(xtx[ok])
    beta[ok] = np.einsum("kab,kb->ka", inv[ok], xty[ok])
    with np.errstate(invalid="ignore", divide="ignore"):
        rss = np.maximum(float(y @ y) - np.einsum("ka,ka->k", beta, xty), 0.0)
        sigma2 = rss / (n - 3)
        se = np.sqrt(sigma2[:, None] * np.stack([inv[:, 1, 1], inv[:, 2, 2]], axis=1))
        pval = 2.0 * stats.t.sf(np.abs(beta[:, 1:] / se), n - 3)
        r2 = 1.0 - rss / sst if sst > 0 else np.zeros(i.size)
    return i, j, beta, pval, r2


def fit_daily(days: pl.DataFrame) -> DailyModel:
    """Fit the CalTRACK daily model to ``days`` (columns ``kwh`` and ``temperature_c``,
    one row per day of the baseline period).

    Raises ValueError when fewer than :data:`MIN_DAYS` days are given."""
    y = days["kwh"].to_numpy().astype(float)
    t = days["temperature_c"].to_numpy().astype(float)
    n = y.size
    if n < MIN_DAYS:
        raise ValueError(f"{n} days with use and temperature; at least {MIN_DAYS} are needed")
    sst = float(((y - y.mean()) ** 2).sum())
    best = _Best("intercept_only", (float(y.mean()),), None, None, 0.0)

    hdd = np.maximum(BALANCE_POINTS[None, :] - t[:, None], 0.0)
    cdd = np.maximum(t[:, None] - BALANCE_POINTS[None, :], 0.0)
    h_ok, c_ok = _degree_days_ok(hdd), _degree_days_ok(cdd)
    for kind, dd, dd_ok in (("hdd_only", hdd, h_ok), ("cdd_only", cdd, c_ok)):
        b0, b1, pval, r2 = _single(y, dd, sst)
        adj = np.where(dd_ok & (b1 > 0) & (pval < MAX_P_VALUE), _adj(r2, n, 1), -np.inf)
        k = int(np.argmax(adj))
        if np.isfinite(adj[k]) and adj[k] > best.r2_adj:
            bp = float(BALANCE_POINTS[k])
            best = _Best(
                kind,  # type: ignore[arg-type]
                (float(b0[k]), float(b1[k])),
                bp if kind == "hdd_only" else None,
                bp if kind == "cdd_only" else None,
                float(adj[k]),
            )
    if n > 4:
        i, j, beta, pval, r2 = _pair(y, hdd, cdd, sst)
        qualifies = (
            h_ok[i]
            & c_ok[j]
            & (beta[:, 1] > 0)
            & (beta[:, 2] > 0)
            & (pval[:, 0] < MAX_P_VALUE)
            & (pval[:, 1] < MAX_P_VALUE)
        )
        adj = np.where(qualifies, _adj(r2, n, 2), -np.inf)
        k = int(np.argmax(adj))
        if np.isfinite(adj[k]) and adj[k] > best.r2_adj:
            best = _Best(
                "hdd_cdd",
                tuple(float(b) for b in beta[k]),
                float(BALANCE_POINTS[i[k]]),
                float(BALANCE_POINTS[j[k]]),
                float(adj[k]),
            )
    return _finish(best, y, t)


def _finish(best: _Best, y: np.ndarray, t: np.ndarray) -> DailyModel:
    b = best.beta
    heating = b[1] if best.kind in ("hdd_only", "hdd_cdd") else None
    cooling = b[2] if best.kind == "hdd_cdd" else (b[1] if best.kind == "cdd_only" else None)
    model = DailyModel(
        best.kind, b[0], best.th, heating, best.tc, cooling,
        n=y.size, p=len(b), r2=0.0, r2_adj=0.0, cvrmse=0.0, nmbe=0.0, mean_kwh=float(y.mean()),
    )  # fmt: skip
    yhat = model.predict(t)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - yhat) ** 2).sum()) / sst if sst > 0 else 0.0
    k = len(b) - 1
    return DailyModel(
        **{
            **asdict(model),
            "r2": r2,
            "r2_adj": float(_adj(np.array(r2), y.size, k)) if k else 0.0,
            "cvrmse": metrics.cvrmse(y, yhat, len(b)),
            "nmbe": metrics.nmbe(y, yhat, len(b)),
        }
    )
