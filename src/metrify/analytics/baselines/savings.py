"""Savings after a change (a new boiler, a heat pump, a tariff): the baseline fitted on
the period before predicts what the meter would have used in the reporting period after,
with that period's weather; savings are predicted minus actual use.

The uncertainty is ASHRAE Guideline 14's (annex B, eq. B-14, with the autocorrelation
correction), at 90 % confidence::

    U = 1.26 * t(0.90, n - p) * CV * (E_pred / m) * sqrt( m * (n / n') * (1 + 2 / n') )

with ``n`` baseline points, ``p`` model coefficients, ``m`` reporting points, ``CV``
the baseline CV(RMSE) over ``n - p`` degrees of freedom, ``E_pred`` the predicted use
over the reporting period, and ``n' = n (1 - rho) / (1 + rho)`` the effective number of
baseline points for residuals with lag-1 autocorrelation ``rho`` (``n' = n`` when
``rho <= 0``). Savings smaller than ``U`` are not distinguishable from zero at 90 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

__all__ = ["CONFIDENCE", "Savings", "savings"]

CONFIDENCE: Final = 0.90


@dataclass(frozen=True)
class Savings:
    """Savings over the reporting period in kWh (positive: less use than predicted)."""

    model: str
    baseline_points: int
    reporting_points: int
    p: int
    predicted_kwh: float
    actual_kwh: float
    savings_kwh: float
    savings_pct: float | None
    uncertainty_kwh: float
    confidence: float
    cvrmse: float
    rho: float
    n_prime: float

    @property
    def significant(self) -> bool:
        return abs(self.savings_kwh) > self.uncertainty_kwh

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"significant": self.significant}


def lag1_autocorrelation(residuals: np.ndarray) -> float:
    """Lag-1 autocorrelation of the residuals (0 for fewer than three)."""
    r = residuals - residuals.mean()
    denominator = float(r @ r)
    if r.size < 3 or denominator == 0:
        return 0.0
    return float(r[1:] @ r[:-1]) / denominator


def savings(
    model: str,
    baseline_residuals: np.ndarray,
    p: int,
    cvrmse: float,
    predicted: np.ndarray,
    actual: np.ndarray,
) -> Savings:
    """Savings and their uncertainty from a fitted baseline's residuals and parameter
    count and its predictions for the reporting points with actual use."""
    n, m = baseline_residuals.size, predicted.size
    if m == 0:
        raise ValueError("the reporting period has no point with use and a temperature")
    from scipy import stats  # type: ignore[import-untyped]  # late: see baselines.daily

    rho = lag1_autocorrelation(baseline_residuals)
    n_prime = n * (1 - rho) / (1 + rho) if rho > 0 else float(n)
    e_pred, e_actual = float(predicted.sum()), float(actual.sum())
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, max(n - p, 1)))
    u = 1.26 * t * cvrmse * (e_pred / m) * np.sqrt(m * (n / n_prime) * (1 + 2 / n_prime))
    return Savings(
        model=model,
        baseline_points=n,
        reporting_points=m,
        p=p,
        predicted_kwh=e_pred,
        actual_kwh=e_actual,
        savings_kwh=e_pred - e_actual,
        savings_pct=(e_pred - e_actual) / e_pred * 100 if e_pred else None,
        uncertainty_kwh=float(abs(u)),
        confidence=CONFIDENCE,
        cvrmse=cvrmse,
        rho=rho,
        n_prime=float(n_prime),
    )
