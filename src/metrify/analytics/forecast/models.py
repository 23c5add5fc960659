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
  the mean is the wrong point for MAE, so meters keep the median.
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
    models: list[lgb.LGBMRegressor] = field(default_factory=list)
    widen: float = 0.0

    def _params(self) -> dict[str, Any]:
        params = {**BASE_PARAMS, **self.params}
        if self.linear:
            params.update(linear_tree=True, linear_lambda=0.1, num_leaves=8, n_estimators=150)
        return params

    def _fit_one(self, q: float, x: np.ndarray, y: np.ndarray, seed: int) -> lgb.LGBMRegressor:
        if q == QUANTILES[1] and self.center == "mean":
            model = lgb.LGBMRegressor(objective="regression", random_state=seed, **self._params())
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
            [(q, x, y) for q in QUANTILES], lambda q, xs, ys: self._fit_one(q, xs, ys, seed)
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
