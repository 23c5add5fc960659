"""Consumption patterns: typical days, load factor, base load, peak time and peak-hour
share per meter and per segment; households clustered by the shape of their day; and
segments compared with intervals (what time-of-use households did differently at peak).

Frames in, frames out: a frame of measured half-hours (``id``, ``ts`` UTC, ``kwh``;
gaps absent, not zero), a local zone and the definitions (:class:`Definitions`: peak
hours, the base-load percentile and night) go in; :func:`analyse` returns everything
the ``patterns`` job stores. :func:`peak_share_difference` is the time-of-use effect
at peak with its bootstrap interval, for whoever needs it (the grid analysis does).
"""

from metrify.analytics.patterns.analysis import Patterns, analyse, segment_series
from metrify.analytics.patterns.calendar import DAY_KINDS, SEASONS, holiday_dates
from metrify.analytics.patterns.clusters import (
    Clustering,
    Stability,
    cluster_shapes,
    stability,
    unusual,
)
from metrify.analytics.patterns.metrics import Definitions, PeakHours, metrics
from metrify.analytics.patterns.profiles import (
    SLOTS,
    complete_days,
    day_shapes,
    local_half_hours,
    slot_label,
    typical_days,
)
from metrify.analytics.patterns.segments import (
    PeakShareDifference,
    compare_groups,
    comparison,
    peak_share_difference,
    slot_difference,
)

__all__ = [
    "DAY_KINDS",
    "SEASONS",
    "SLOTS",
    "Clustering",
    "Definitions",
    "Patterns",
    "PeakHours",
    "PeakShareDifference",
    "Stability",
    "analyse",
    "cluster_shapes",
    "compare_groups",
    "comparison",
    "complete_days",
    "day_shapes",
    "holiday_dates",
    "local_half_hours",
    "metrics",
    "peak_share_difference",
    "segment_series",
    "slot_difference",
    "slot_label",
    "stability",
    "typical_days",
    "unusual",
]
