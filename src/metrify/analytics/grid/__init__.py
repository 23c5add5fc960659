"""Grid insight per node or feeder: how loaded it is, who makes its peak, what it loses,
whether its voltage and frequency meet EN 50160, and what moving flexible load would do.

Frames in, frames (or small frozen dataclasses) out; storage stays in
:mod:`metrify.stores.grid_insight`. The series these take:

- node load: ``ts`` (UTC start), ``interval_s``, ``load_mw`` (optionally ``voltage_kv``,
  ``frequency_hz``), as in ``grid_measurements``;
- meter readings: ``meter_id``, ``ts``, ``interval_s``, ``import_kwh`` (optionally
  ``voltage_v``), as in ``readings``, rejected rows already left out.
"""

from metrify.analytics.grid.coincidence import PeakDrivers, peak_drivers
from metrify.analytics.grid.compliance import (
    FrequencyYear,
    frequency_compliance,
    voltage_compliance,
)
from metrify.analytics.grid.flex import (
    PeakWindow,
    ShiftResult,
    TariffEffect,
    check_windows,
    peak_share,
    shift_peak,
    tariff_effect,
)
from metrify.analytics.grid.loading import Loading, duration_curve, loading
from metrify.analytics.grid.losses import Losses, losses

__all__ = [
    "FrequencyYear",
    "Loading",
    "Losses",
    "PeakDrivers",
    "PeakWindow",
    "ShiftResult",
    "TariffEffect",
    "check_windows",
    "duration_curve",
    "frequency_compliance",
    "loading",
    "losses",
    "peak_drivers",
    "peak_share",
    "shift_peak",
    "tariff_effect",
    "voltage_compliance",
]
