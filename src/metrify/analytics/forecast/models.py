"""The forecast models: the weekly seasonal naive reference and LightGBM quantile models.

- ``seasonal_naive_weekly``: P50 is the value at the same time one week earlier; the band
  adds the 10th and 90th percentiles of that rule's own errors over the 4 weeks before
  issue. It is the yardstick MASE and rMAE are measured against.
- ``lightgbm``: LightGBM models on calendar, holiday, lagged-load and (when given)
  temperature features: P10 and P90 with the quantile (pinball) objective; P50 with
  the quantile objective too (``center="median"``, the fleet-of-meters fast path) or
  with the squared error (``center="mean"``, one aggregate series: national, fleet or
  node demand). LightGBM's quantile objective sets each leaf to a quantile of its
  residuals instead of taking gradient steps, which fits a smooth aggregate worse: on
  GB demand the squared-error P50 scored a MAPE of 2.72% against 2.82% in the
  validation year (2012-03..2013-02). On a single household, whose load is skewed,
  the mean is the wrong point for MAE, so meters keep the median. The mean P50 is
  itself a blend (:class:`MeanBlend`): 0.7 x LightGBM fitted per daypart (an eighth of
  the day each) + 0.3 x a ridge regression per interval of the day on day-type dummies
  and the lagged levels. On GB demand's validation year this took the P50's MAPE from
  2.74% to 2.50% (test year, full backtest: 2.76% -> 2.49%; see
  bench/results/forecast-2026-12-07.md and bench/forecast_ideas_embedded.py).
- ``lightgbm_linear``: the same with ``linear_tree`` (a linear model in each leaf), the
  linear quantile model: scikit-learn's QuantileRegressor solves a linear programme and
  takes minutes on a year of half-hours, this takes seconds.
- ``metrify``: the model the backtests chose (see docs/guides/forecasting.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from metrify.analytics.forecast.features import Design
from metrify.analytics.forecast.metrics import QUANTILES
from metrify.analytics.forecast.series import Panel

NAIVE = "seasonal_naive_weekly"
MODELS: tuple[str, ...] = ("metrify", NAIVE, "lightgbm", "lightgbm_linear")
#: what ``metrify`` means (chosen by the backtests in bench/forecast.py)
CHOSEN = "lightgbm"

BASE_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "reg_lambda": 1.0,
    "verbose": -1,
    "max_bin": 63,
    # one thread: OpenMP threads spin against each other on a shared 2-core machine
    # (a fit took 10x longer with 2); parallelism is across models (see _fit_all)
    "n_jobs": 1,
}


def _fit_all(jobs: list[tuple[float, np.ndarray, np.ndarray]], fit: Any) -> list[Any]:
    """``fit(q, x, y)`` for every job, the models trained side by side on threads.

    Each model is single-threaded (``n_jobs=1``, so each is deterministic) and LightGBM
    releases the GIL while it boosts, so the three quantiles of a fit use every core
    instead of one: the fleet-and-nodes forecast has a 10-second budget.
    """
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [fit(*job) for job in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrify-fit") as pool:
        return list(pool.map(lambda job: fit(*job), jobs))


def check_model(model: str) -> str:
    """The inner model ``model`` names (``metrify`` -> :data:`CHOSEN`); ValueError if unknown."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return CHOSEN if model == "metrify" else model


def naive_bands(panel: Panel, k: int, targets: np.ndarray) -> np.ndarray:
    """(series, targets, 3) P10/P50/P90 of the weekly seasonal naive at one issue time."""
    p = panel.per_day
    lag = targets - 7 * p
    values = panel.values
    ok = (lag >= 0) & (lag < k)
    p50 = np.where(ok, values[:, np.where(ok, lag, 0)], np.nan)
    lo = max(7 * p, k - 28 * p)
    resid = (
        values[:, lo:k] - values[:, lo - 7 * p : k - 7 * p]
        if k > lo
        else np.empty((values.shape[0], 0))
    )
    q = np.full((values.shape[0], 2), 0.0)
    for s in range(values.shape[0]):
        r = resid[s][np.isfinite(resid[s])]
        if r.size:
            q[s] = np.quantile(r, [QUANTILES[0], QUANTILES[2]])
    out = np.stack([p50 + q[:, :1], p50, p50 + q[:, 1:]], axis=-1)
    return out


#: weight of the tree models in the mean P50; the rest is the per-slot ridge
TREE_WEIGHT = 0.7
#: dayparts the mean P50's tree models split the day into
DAYPARTS = 8
#: fewest training rows per daypart before the day is split (else one tree model)
MIN_DAYPART_ROWS = 1000
#: features of the per-slot ridge (besides day-type dummies and season terms); a missing
#: lag (before the series starts, a gap) is replaced by the last day's mean
RIDGE_LEVELS: tuple[str, ...] = ("mean24", "mean24_week_before", "recent_days_back")
RIDGE_LAGS: tuple[str, ...] = ("week_lag", "recent_same_slot", "week_lag_adjusted")
RIDGE_ALPHA = 1.0


def _ridge_x(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The per-slot ridge's inputs: one dummy per day type (a holiday counts as Sunday), a
    holiday-nearby flag, two yearly harmonics and the lagged levels over the 7-day level.

    Why linear beside the trees: within one interval of the day, next day's load is close
    to linear in last week's and yesterday's loads with a shift per day type; trees fit
    that line as a staircase, and the two models' errors are far from identical, so the
    blend beats both (GB validation: trees 2.67%, ridge 2.92%, blend 2.48%).
    """
    col = {n: x[:, i] for i, n in enumerate(names)}
    day_type = col["day_type"]
    doy = col["doy"]
    parts = [(day_type == t).astype(np.float64) for t in range(1, 8)]
    parts.append(col["holiday_near"])
    for m in (1, 2):
        parts += [np.sin(2 * np.pi * m * doy / 365.25), np.cos(2 * np.pi * m * doy / 365.25)]
    parts += [col[n] for n in RIDGE_LEVELS]
    for n in RIDGE_LAGS:
        parts.append(np.where(np.isfinite(col[n]), col[n], col["mean24"]))
    return np.stack(parts, axis=1)


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (+1e-9) of ``x`` over its non-NaN values, 0
    for a column with none: ``np.nanmean`` without its empty-slice warning, which only a
    process-wide (not thread-safe) warnings filter could silence, and the fits run on
    threads."""
    known = ~np.isnan(x)
    n = np.maximum(known.sum(axis=0), 1)
    mu = np.where(known, x, 0.0).sum(axis=0) / n
    var = (np.where(known, x - mu, 0.0) ** 2).sum(axis=0) / n
    return mu, np.sqrt(var) + 1e-9


@dataclass
class SlotRidge:
    """One ridge regression per interval of the day (``slot``), on standardised inputs."""

    coef: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, float]] = field(default_factory=dict)

    def fit(self, x: np.ndarray, y: np.ndarray, slot: np.ndarray) -> SlotRidge:
        self.coef = {}
        for s in np.unique(slot):
            rows = slot == s
            xs, ys = x[rows], y[rows]
            mu, sd = _mean_std(xs)
            z = np.nan_to_num((xs - mu) / sd)
            y0 = float(ys.mean())
            beta = np.linalg.solve(z.T @ z + RIDGE_ALPHA * np.eye(z.shape[1]), z.T @ (ys - y0))
            self.coef[int(s)] = (mu, sd, beta, y0)
        return self

    def predict(self, x: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """NaN for a slot it never saw (the caller keeps the trees' value there)."""
        out = np.full(x.shape[0], np.nan)
        for s, (mu, sd, beta, y0) in self.coef.items():
            rows = slot == s
            if rows.any():
                out[rows] = np.nan_to_num((x[rows] - mu) / sd) @ beta + y0
        return out


@dataclass
class MeanBlend:
    """The mean P50 of one aggregate series: squared-error LightGBM per daypart, blended
    with :class:`SlotRidge` (weights :data:`TREE_WEIGHT` and 1 - it).

    Dayparts: one model per eighth of the day learns each part's response to the lags
    without spending splits on telling the parts apart (GB validation: 2.74% -> 2.67%,
    London sum 9.36% -> 9.26%); a short history (fewer than :data:`MIN_DAYPART_ROWS` rows
    per part) keeps one model.
    """

    params: dict[str, Any]
    names: tuple[str, ...]
    per_day: int
    trees: dict[int, lgb.LGBMRegressor] = field(default_factory=dict)
    ridge: SlotRidge = field(default_factory=SlotRidge)
    parts: int = 1

    def _part(self, x: np.ndarray) -> np.ndarray:
        slot = x[:, self.names.index("slot")].astype(np.int64)
        return np.clip(slot * self.parts // self.per_day, 0, self.parts - 1)

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int) -> MeanBlend:
        self.parts = DAYPARTS if y.size >= DAYPARTS * MIN_DAYPART_ROWS else 1
        part = self._part(x)
        self.trees = {}
        for q in np.unique(part):
            rows = part == q
            self.trees[int(q)] = lgb.LGBMRegressor(
                objective="regression", random_state=seed, **self.params
            ).fit(x[rows], y[rows])
        slot = x[:, self.names.index("slot")]
        self.ridge = SlotRidge().fit(_ridge_x(x, self.names), y, slot)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        part = self._part(x)
        trees = np.full(x.shape[0], np.nan)
        for q, model in self.trees.items():
            rows = part == q
            if rows.any():
                trees[rows] = model.predict(x[rows])
        missing = np.isnan(trees)
        if missing.any():  # a part unseen in training: the nearest part's model
            parts = np.array(sorted(self.trees))
            for q in np.unique(part[missing]):
                near = int(parts[np.argmin(np.abs(parts - q))])
                rows = missing & (part == q)
                trees[rows] = self.trees[near].predict(x[rows])
        ridge = self.ridge.predict(_ridge_x(x, self.names), x[:, self.names.index("slot")])
        return np.where(np.isfinite(ridge), TREE_WEIGHT * trees + (1 - TREE_WEIGHT) * ridge, trees)


@dataclass
class QuantileGBM:
    """One LightGBM model per quantile, trained on scaled targets, with a calibrated band.

    Quantile boosting fits its own training rows too well, so its P10-P90 band is too
    narrow out of sample (about 55% coverage on GB demand instead of 80%). The band is
    therefore conformalised (CQR, Romano et al. 2019): P10 and P90 are first fitted
    without the most recent ``calibration_days`` of issue times, their misses on those
    days give the widening (or narrowing) that makes the band hold 80% out of sample,
    then every quantile is refitted on all rows.
    """

    linear: bool = False
    center: str = "median"  # how P50 is fitted: "median" (pinball) or "mean" (squared error)
    params: dict[str, Any] = field(default_factory=dict)
    calibration_days: int = 28
    models: list[Any] = field(default_factory=list)  # LGBMRegressor, or MeanBlend for P50
    widen: float = 0.0

    def _params(self) -> dict[str, Any]:
        params = {**BASE_PARAMS, **self.params}
        if self.linear:
            params.update(linear_tree=True, linear_lambda=0.1, num_leaves=8, n_estimators=150)
        return params

    def _fit_one(
        self,
        q: float,
        x: np.ndarray,
        y: np.ndarray,
        seed: int,
        names: tuple[str, ...] = (),
        per_day: int = 48,
    ) -> Any:
        if q == QUANTILES[1] and self.center == "mean":
            if self.linear:  # the linear-tree variant stays one squared-error model
                model = lgb.LGBMRegressor(
                    objective="regression", random_state=seed, **self._params()
                )
            else:
                return MeanBlend(self._params(), names, per_day).fit(x, y, seed)
        else:
            model = lgb.LGBMRegressor(
                objective="quantile", alpha=q, random_state=seed, **self._params()
            )
        model.fit(x, y)
        return model

    def fit(
        self, train: Design, per_day: int, max_rows: int = 400_000, seed: int = 0
    ) -> QuantileGBM:
        ok = np.isfinite(train.y) & np.isfinite(train.scale)
        x, y, k = train.x[ok], train.y[ok], train.issue_k[ok]
        if y.size < 100:
            raise ValueError(f"only {y.size} usable training rows")
        if y.size > max_rows:  # the fast path: a sample is enough to learn shapes
            pick = np.sort(np.random.default_rng(seed).choice(y.size, max_rows, replace=False))
            x, y, k = x[pick], y[pick], k[pick]
        recent = k >= k.max() - self.calibration_days * per_day
        self.widen = 0.0
        if recent.sum() >= 200 and (~recent).sum() >= 2 * recent.sum():
            early_x, early_y = x[~recent], y[~recent]
            lo, hi = _fit_all(
                [(QUANTILES[0], early_x, early_y), (QUANTILES[2], early_x, early_y)],
                lambda q, xs, ys: self._fit_one(q, xs, ys, seed),
            )
            miss = np.maximum(lo.predict(x[recent]) - y[recent], y[recent] - hi.predict(x[recent]))
            level = min(1.0, (QUANTILES[2] - QUANTILES[0]) * (1 + 1 / miss.size))
            self.widen = float(np.quantile(miss, level))
        self.models = _fit_all(
            [(q, x, y) for q in QUANTILES],
            lambda q, xs, ys: self._fit_one(q, xs, ys, seed, train.names, per_day),
        )
        return self

    def predict(self, rows: Design) -> np.ndarray:
        """(rows, 3) P10/P50/P90 in the series' units, ordered so the band never crosses.

        A median P50 is sorted with the band (three quantile models may cross); a mean
        P50 is kept as it is (it is the point forecast) and the band widened to hold it.
        """
        raw = np.stack([m.predict(rows.x) for m in self.models], axis=-1)
        raw[:, 0] -= self.widen
        raw[:, 2] += self.widen
        if self.center == "mean":
            raw[:, 0] = np.minimum(raw[:, 0], raw[:, 1])
            raw[:, 2] = np.maximum(raw[:, 2], raw[:, 1])
        else:
            raw = np.sort(raw, axis=-1)
        raw = raw * rows.scale[:, None]
        return np.asarray(raw, dtype=np.float64)
