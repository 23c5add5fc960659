"""Goodness of fit of a baseline: CV(RMSE) and NMBE as ASHRAE Guideline 14 and CalTRACK
define them.

Both are divided by ``n - p``, the residual degrees of freedom, where ``n`` is the
number of observations (days for a daily model, hours for an hourly one) and ``p`` the
number of fitted regression coefficients (the intercept and every slope; a balance point
found by the grid search is not counted, as CalTRACK does not count it)::

    CV(RMSE) = sqrt( sum (y_i - yhat_i)^2 / (n - p) ) / ybar
    NMBE     =       sum (y_i - yhat_i)   / ((n - p) * ybar)

with ``ybar`` the mean observed use. NMBE is positive when the model under-predicts.
Both are fractions (0.25 is 25 %); Guideline 14 asks for CV(RMSE) <= 0.30 and
|NMBE| <= 0.10 on hourly data, <= 0.15 and 0.05 on monthly data.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["cvrmse", "nmbe", "rmse"]

Array = npt.ArrayLike


def _pair(observed: Array, predicted: Array) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(observed, dtype=float)
    yhat = np.asarray(predicted, dtype=float)
    if y.shape != yhat.shape:
        raise ValueError(f"observed {y.shape} and predicted {yhat.shape} differ in shape")
    return y, yhat


def _dof(n: int, p: int) -> int:
    if p < 0 or n - p <= 0:
        raise ValueError(f"{n} observations leave no degrees of freedom for {p} parameters")
    return n - p


def rmse(observed: Array, predicted: Array, p: int = 0) -> float:
    """Root mean squared error over ``n - p`` degrees of freedom."""
    y, yhat = _pair(observed, predicted)
    return float(np.sqrt(np.sum((y - yhat) ** 2) / _dof(y.size, p)))


def cvrmse(observed: Array, predicted: Array, p: int = 0) -> float:
    """CV(RMSE): the RMSE over ``n - p`` degrees of freedom divided by the mean use
    (NaN when the mean use is zero)."""
    y, yhat = _pair(observed, predicted)
    mean = float(np.mean(y))
    return rmse(y, yhat, p) / mean if mean else float("nan")


def nmbe(observed: Array, predicted: Array, p: int = 0) -> float:
    """NMBE: the summed error (observed minus predicted) over ``(n - p) * mean use``."""
    y, yhat = _pair(observed, predicted)
    mean = float(np.mean(y))
    return float(np.sum(y - yhat)) / (_dof(y.size, p) * mean) if mean else float("nan")
