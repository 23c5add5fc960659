"""The severity of a burst (``metrify.anomaly.meters``) on both sides of each threshold.

The expectations follow the documented rule with the default settings: under
``burst_min_kw`` (4 kW) or at most ``record_margin`` (2x) the meter's recent record, a
burst is the home's routine (low); a meter without a record is low under 3x its typical
daily peak; otherwise medium, and high from 6x the typical daily peak.
"""

from __future__ import annotations

import polars as pl
import pytest

from metrify.anomaly.meters import _burst_severity
from metrify.settings.anomaly import AnomalyConfig

CFG = AnomalyConfig()


@pytest.mark.parametrize(
    ("value_kw", "peak_kw", "record_kw", "severity"),
    [
        # the 4 kW floor: 8x the peak and no record, yet ordinary for any home below it
        (3.99, 0.5, None, "low"),
        (4.0, 0.5, 1.0, "high"),
        # the record margin: at 2x the record, routine; just beyond it, new load
        (10.0, 1.0, 5.0, "low"),
        (10.0, 1.0, 4.99, "high"),
        # no record yet: judged on the typical peak alone
        (5.9, 2.0, None, "low"),  # 2.95x
        (6.0, 2.0, None, "medium"),  # 3x
        (11.9, 2.0, None, "medium"),  # 5.95x
        (12.0, 2.0, None, "high"),  # 6x
        # with a record far below: medium under 6x the peak (even under 3x), high from 6x
        (5.0, 2.0, 1.0, "medium"),  # 2.5x
        (8.0, 2.0, 1.0, "medium"),  # 4x
        (10.0, 2.0, 1.0, "medium"),  # 5x
        (11.9, 2.0, 1.0, "medium"),  # 5.95x
        (12.0, 2.0, 1.0, "high"),  # 6x
        (40.0, 2.0, 1.0, "high"),  # 20x
    ],
)
def test_burst_severity_thresholds(
    value_kw: float, peak_kw: float, record_kw: float | None, severity: str
) -> None:
    rows = pl.DataFrame(
        {"value": [value_kw], "peak_ref": [peak_kw], "record_ref": [record_kw]},
        schema={"value": pl.Float64, "peak_ref": pl.Float64, "record_ref": pl.Float64},
    )
    assert rows.select(_burst_severity(CFG)).item() == severity
