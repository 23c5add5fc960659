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

One extension, on by default and off with ``weekend=False``: each candidate is also
tried with a weekend term (a shift of use on Saturdays and Sundays), held to the same
rules (significant at p < 0.1, chosen by adjusted R²). A household's weekend is not its
weekday, and CalTRACK 2.0's day-blind model leaves that difference in its residuals;
eemeter 4's daily model splits weekdays from weekends for the same reason.

The search is vectorised: every balance point (pair) of a model family is fitted at
once through the normal equations, so a year of days costs milliseconds per meter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

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
    weekend_shift: float | None
    n: int
    p: int
    r2: float
    r2_adj: float
    cvrmse: float
    nmbe: float
    mean_kwh: float

    def predict(self, temperature_c: npt.ArrayLike, weekend: npt.ArrayLike) -> np.ndarray:
        """Use per day (kWh) at the given daily mean temperatures, on days that are
        (1) or are not (0) Saturdays or Sundays."""
        t = np.asarray(temperature_c, dtype=float)
        out = self.intercept + self.weather_part(t)
        if self.weekend_shift is not None:
            out = out + self.weekend_shift * np.asarray(weekend, dtype=float)
        return np.asarray(out)

    def predict_days(self, days: pl.DataFrame) -> np.ndarray:
        """Use per day for a frame with ``day`` and ``temperature_c``."""
        weekend = (days["day"].dt.weekday() >= 6).to_numpy()
        return self.predict(days["temperature_c"].to_numpy(), weekend)

    def weather_part(self, temperature_c: npt.ArrayLike) -> np.ndarray:
        """The degree-day terms alone: what the weather adds to a day's use (kWh)."""
        t = np.asarray(temperature_c, dtype=float)
        out = np.zeros(t.shape)
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
    weekend: bool
    r2_adj: float


def _adj(r2: np.ndarray, n: int, k: int) -> np.ndarray:
    """Adjusted R² with ``k`` explanatory variables besides the intercept."""
    return np.asarray(1.0 - (1.0 - r2) * (n - 1) / (n - k - 1))


def _degree_days_ok(dd: np.ndarray) -> np.ndarray:
    """Per column: enough days above zero and enough degree days in all."""
    return np.asarray(
        ((dd > 0).sum(axis=0) >= MIN_NONZERO_DAYS) & (dd.sum(axis=0) >= MIN_DEGREE_DAYS)
    )


class _Gram:
    """The cross-products every candidate's normal equations are assembled from: the
    fixed columns ``F`` (intercept, weekend) and the pool ``G`` of every HDD and CDD
    column. A candidate is ``F`` plus a few pool columns, so its ``X'X`` and ``X'y`` are
    gathered from these, never built from a candidates x days array."""

    def __init__(self, fixed: np.ndarray, pool: np.ndarray, y: np.ndarray) -> None:
        self.f = fixed.shape[1]
        self.ff, self.fg, self.gg = fixed.T @ fixed, fixed.T @ pool, pool.T @ pool
        self.fy, self.gy = fixed.T @ y, pool.T @ y
        self.yy, self.n = float(y @ y), y.size

    def fit(self, idx: np.ndarray, sst: float) -> tuple[np.ndarray, ...]:
        """Least squares for the candidates ``idx`` (candidates x pool columns):
        (beta, p-values of every coefficient after the intercept, R²). A singular
        design gets NaN and never qualifies."""
        # SciPy loads here, not with the module: every `metrify` command imports this one
        # (for its help) and SciPy took about a second of each command's start.
        from scipy import stats  # type: ignore[import-untyped]

        count = idx.shape[0]
        f, k, n = self.f, self.f + idx.shape[1], self.n
        xtx = np.empty((count, k, k))
        xtx[:, :f, :f] = self.ff
        xtx[:, :f, f:] = self.fg[:, idx].transpose(1, 0, 2)
        xtx[:, f:, :f] = xtx[:, :f, f:].transpose(0, 2, 1)
        xtx[:, f:, f:] = self.gg[idx[:, :, None], idx[:, None, :]]
        xty = np.concatenate([np.broadcast_to(self.fy, (count, f)), self.gy[idx]], axis=1)
        ok = np.abs(np.linalg.det(xtx)) > 1e-9
        inv = np.full(xtx.shape, np.nan)
        inv[ok] = np.linalg.inv(xtx[ok])
        beta = np.einsum("pab,pb->pa", inv, xty)
        with np.errstate(invalid="ignore", divide="ignore"):
            rss = np.maximum(self.yy - np.einsum("pa,pa->p", beta, xty), 0.0)
            sigma2 = rss / (n - k)
            diag = np.diagonal(inv, axis1=1, axis2=2)[:, 1:]
            t = np.abs(beta[:, 1:] / np.sqrt(sigma2[:, None] * diag))
            pval = 2.0 * stats.t.sf(t, n - k)
            r2 = 1.0 - rss / sst if sst > 0 else np.zeros(count)
        return beta, pval, r2


def fit_daily(days: pl.DataFrame, *, weekend: bool = True) -> DailyModel:
    """Fit the daily model to ``days`` (columns ``day``, ``kwh`` and ``temperature_c``,
    one row per day of the baseline period).

    With ``weekend`` (the default) every candidate is also tried with a weekend term, a
    shift of use on Saturdays and Sundays kept only when significant like the slopes
    (p < 0.1) and chosen, like everything else, by adjusted R²: households use more at
    weekends, and CalTRACK 2.0's day-blind model leaves that in its residuals.
    ``weekend=False`` is CalTRACK 2.0 exactly. Raises ValueError when fewer than
    :data:`MIN_DAYS` days are given."""
    y = days["kwh"].to_numpy().astype(float)
    t = days["temperature_c"].to_numpy().astype(float)
    n = y.size
    if n < MIN_DAYS:
        raise ValueError(f"{n} days with use and temperature; at least {MIN_DAYS} are needed")
    we = (days["day"].dt.weekday() >= 6).to_numpy().astype(float)
    sst = float(((y - y.mean()) ** 2).sum())
    best = _Best("intercept_only", (float(y.mean()),), None, None, False, 0.0)

    hdd = np.maximum(BALANCE_POINTS[None, :] - t[:, None], 0.0)
    cdd = np.maximum(t[:, None] - BALANCE_POINTS[None, :], 0.0)
    h_ok, c_ok = _degree_days_ok(hdd), _degree_days_ok(cdd)
    # only balance points whose degree days qualify are fitted at all; pool columns
    # 0..m-1 are the HDD columns, m..2m-1 the CDD ones
    m = BALANCE_POINTS.size
    hs, cs = np.nonzero(h_ok)[0], np.nonzero(c_ok)[0]
    pairs = np.nonzero(BALANCE_POINTS[hs][:, None] <= BALANCE_POINTS[cs][None, :])
    hi, ci = hs[pairs[0]], cs[pairs[1]]
    families: list[tuple[Kind, np.ndarray, np.ndarray | None, np.ndarray | None]] = [
        # kind, pool columns per candidate, heating index, cooling index
        ("hdd_only", hs[:, None], hs, None),
        ("cdd_only", m + cs[:, None], None, cs),
        ("hdd_cdd", np.column_stack([hi, m + ci]), hi, ci),
    ]
    pool = np.hstack([hdd, cdd])
    ones = np.ones(n)
    for with_weekend in (False, True) if weekend and 0 < we.sum() < n else (False,):
        fixed = np.column_stack([ones, we]) if with_weekend else ones[:, None]
        gram = _Gram(fixed, pool, y)
        f = fixed.shape[1]
        if with_weekend:
            beta, pval, r2 = gram.fit(np.zeros((1, 0), dtype=int), sst)
            adj = _adj(r2, n, 1)
            if pval[0, 0] < MAX_P_VALUE and adj[0] > best.r2_adj:
                best = _Best("intercept_only", (float(beta[0, 0]), float(beta[0, 1])), None,
                             None, True, float(adj[0]))  # fmt: skip
        for kind, idx, i, j in families:
            if idx.shape[0] == 0:
                continue
            beta, pval, r2 = gram.fit(idx, sst)
            slopes = beta[:, f:]
            qualifies = (slopes > 0).all(axis=1) & (pval < MAX_P_VALUE).all(axis=1)
            adj = np.where(qualifies, _adj(r2, n, f + idx.shape[1] - 1), -np.inf)
            k = int(np.argmax(adj))
            if np.isfinite(adj[k]) and adj[k] > best.r2_adj:
                best = _Best(
                    kind,
                    tuple(float(b) for b in beta[k]),
                    float(BALANCE_POINTS[i[k]]) if i is not None else None,
                    float(BALANCE_POINTS[j[k]]) if j is not None else None,
                    with_weekend,
                    float(adj[k]),
                )
    return _finish(best, y, t, we)


def _finish(best: _Best, y: np.ndarray, t: np.ndarray, we: np.ndarray) -> DailyModel:
    b = list(best.beta)
    intercept = b.pop(0)
    shift = b.pop(0) if best.weekend else None
    heating = b.pop(0) if best.kind in ("hdd_only", "hdd_cdd") else None
    cooling = b.pop(0) if best.kind in ("cdd_only", "hdd_cdd") else None
    p = len(best.beta)
    model = DailyModel(
        best.kind, intercept, best.th, heating, best.tc, cooling, shift,
        n=y.size, p=p, r2=0.0, r2_adj=0.0, cvrmse=0.0, nmbe=0.0, mean_kwh=float(y.mean()),
    )  # fmt: skip
    yhat = model.predict(t, we)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - yhat) ** 2).sum()) / sst if sst > 0 else 0.0
    return DailyModel(
        **{
            **asdict(model),
            "r2": r2,
            "r2_adj": float(_adj(np.array(r2), y.size, p - 1)) if p > 1 else 0.0,
            "cvrmse": metrics.cvrmse(y, yhat, p),
            "nmbe": metrics.nmbe(y, yhat, p),
        }
    )
