"""Forecast scores, defined once so the backtest, the CLI and the benchmark agree.

- MAE: mean absolute error of P50.
- MAPE: mean of |error| / |actual| in percent, over the points whose actual is not zero
  (a household at zero would make it infinite).
- MASE: MAE over the in-sample MAE of the weekly seasonal naive (``y[t] - y[t - 7 days]``)
  on the data before the test period: < 1 beats last week's value as it did in the past.
- rMAE: MAE over the MAE of the weekly seasonal naive on the same test points.
- pinball: the quantile (pinball) loss averaged over P10, P50 and P90: it rewards a band
  that is both narrow and right.
- coverage P10-P90: share of actuals inside [P10, P90]; 80% when the band is calibrated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

QUANTILES: tuple[float, float, float] = (0.1, 0.5, 0.9)


def pinball(actual: np.ndarray, predicted: np.ndarray, q: float) -> float:
    """Mean quantile loss of ``predicted`` as the ``q`` quantile of ``actual``."""
    diff = actual - predicted
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


def mean_pinball(actual: np.ndarray, bands: Sequence[np.ndarray]) -> float:
    """Pinball loss averaged over :data:`QUANTILES` (``bands`` = p10, p50, p90)."""
    return float(np.mean([pinball(actual, b, q) for b, q in zip(bands, QUANTILES, strict=True)]))


def weekly_naive_mae(values: np.ndarray, per_day: int) -> float:
    """In-sample MAE of ``y[t] - y[t - 7 days]`` over the pairs where both are known."""
    lag = 7 * per_day
    if values.shape[-1] <= lag:
        return float("nan")
    diff = np.abs(values[..., lag:] - values[..., :-lag])
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")


@dataclass
class Score:
    """One model's scores over a backtest; ``forecasts`` keeps the scored rows to plot."""

    model: str
    mae: float
    mape: float
    mase: float
    rmae: float
    pinball: float
    coverage_p10_p90: float
    n: int
    forecasts: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "mae": self.mae,
            "mape": self.mape,
            "mase": self.mase,
            "rmae": self.rmae,
            "pinball": self.pinball,
            "coverage_p10_p90": self.coverage_p10_p90,
            "n": self.n,
        }


def score(
    model: str, scored: pl.DataFrame, *, mase_scale: float, naive_mae: float | None = None
) -> Score:
    """Scores of one model from rows with ``actual, p10, p50, p90`` (nulls already dropped).

    ``naive_mae``: the weekly naive's MAE on the same rows (rMAE); ``mase_scale``: its
    in-sample MAE before the test period (MASE).
    """
    actual = scored["actual"].to_numpy()
    p10, p50, p90 = (scored[c].to_numpy() for c in ("p10", "p50", "p90"))
    n = int(actual.size)
    if n == 0:
        nan = float("nan")
        return Score(model, nan, nan, nan, nan, nan, nan, 0, scored)
    err = np.abs(actual - p50)
    mae = float(err.mean())
    nonzero = actual != 0
    mape = (
        float(100.0 * np.mean(err[nonzero] / np.abs(actual[nonzero])))
        if nonzero.any()
        else float("nan")
    )
    mase = mae / mase_scale if mase_scale and np.isfinite(mase_scale) else float("nan")
    rmae = mae / naive_mae if naive_mae else float("nan")
    cover = float(np.mean((actual >= p10) & (actual <= p90)))
    return Score(
        model=model,
        mae=mae,
        mape=mape,
        mase=mase,
        rmae=rmae,
        pinball=mean_pinball(actual, (p10, p50, p90)),
        coverage_p10_p90=cover,
        n=n,
        forecasts=scored,
    )
