"""CV(RMSE) and NMBE against the formulas worked by hand."""

from __future__ import annotations

import math

import pytest

from metrify.analytics.baselines import cvrmse, nmbe

OBSERVED = [10.0, 12.0, 8.0, 10.0]
PREDICTED = [9.0, 11.0, 10.0, 10.0]
# residuals 1, 1, -2, 0: squares sum to 6, residuals sum to 0... and mean use is 10


def test_cvrmse_over_n_minus_p() -> None:
    # sqrt(6 / (4 - 1)) / 10 with one parameter; sqrt(6 / 4) / 10 with none
    assert cvrmse(OBSERVED, PREDICTED, p=1) == pytest.approx(math.sqrt(2.0) / 10.0)
    assert cvrmse(OBSERVED, PREDICTED) == pytest.approx(math.sqrt(1.5) / 10.0)


def test_nmbe_sign_and_degrees_of_freedom() -> None:
    # residuals (observed - predicted) 2, 2, 2, 2 over (4 - 2) * mean 10 -> 0.4
    assert nmbe([10, 10, 10, 10], [8, 8, 8, 8], p=2) == pytest.approx(8.0 / 20.0)
    # the model predicting too much gives a negative NMBE
    assert nmbe([10, 10], [11, 11]) == pytest.approx(-2.0 / 20.0)
    assert nmbe(OBSERVED, PREDICTED) == pytest.approx(0.0)


def test_no_degrees_of_freedom_left_is_an_error() -> None:
    with pytest.raises(ValueError, match="degrees of freedom"):
        cvrmse([1.0, 2.0], [1.0, 2.0], p=2)
    with pytest.raises(ValueError, match="shape"):
        nmbe([1.0, 2.0], [1.0])
