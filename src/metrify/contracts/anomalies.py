"""What an anomaly is, as the detectors, the stores and the doors all see it.

The anomaly stage writes incidents and detector state in these shapes; the stores keep
them in ``anomalies``, ``anomaly_state`` and ``anomaly_profile``; the CLI and the HTTP API
filter on these kinds, statuses and severities. Defined here, below all of them, so that
none has to import another to agree on them.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Final, Literal, get_args

import polars as pl

from metrify.contracts.records import TS

#: how bad an incident is, mildest first (the order alert thresholds and filters compare)
Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)

#: where an analyst has got to with an anomaly (the HTTP API's schema spells them out)
StatusName = Literal["open", "acknowledged", "resolved", "false_positive"]


class Kind(enum.StrEnum):
    """Anomaly kinds; stable names (the API and dashboards filter on them)."""

    UNUSUAL_CONSUMPTION = "unusual_consumption"  # far above the hour-of-week level
    SUSTAINED_DROP = "sustained_drop"  # bypass, tampering: the base load fell too
    VACANCY = "vacancy"  # use down to the base load, which stayed: nobody home
    LEVEL_SHIFT = "level_shift"  # sudden sustained rise (new load)
    UNEXPECTED_EXPORT = "unexpected_export"  # export / reverse flow without registered PV
    FREQUENCY_EXCURSION = "frequency_excursion"
    VOLTAGE_OUT_OF_BAND = "voltage_out_of_band"
    FEEDER_OVERLOAD = "feeder_overload"
    FEEDER_IMBALANCE = "feeder_imbalance"  # load not explained by the meters: losses / theft
    UNUSUAL_LOAD = "unusual_load"  # grid load far from its hour-of-week level
    WEATHER_JUMP = "weather_jump"
    STUCK_SENSOR = "stuck_sensor"
    PATTERN_CHANGE = "pattern_change"  # batch model: the whole daily pattern changed
    PEER_OUTLIER = "peer_outlier"  # batch: changed unlike similar customers


class Status(enum.StrEnum):
    """Where an analyst has got to with an anomaly."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


#: one row per incident candidate, as the detectors hand them to the store.
INCIDENT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "kind": pl.String(),
    "subject_type": pl.String(),
    "subject_id": pl.String(),
    "ts_start": TS,
    "ts_end": TS,
    "score": pl.Float64(),
    "severity": pl.String(),
    "detector": pl.String(),
    "detector_version": pl.String(),
    "evidence": pl.String(),
    "intervals": pl.Int64(),
}

#: detector state, one row per subject and profile slot (``anomaly_profile``): the 168
#: hours of the week, then the slots detectors keep beyond them
PROFILE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "subject_id": pl.String(),
    "how": pl.Int16(),
    "level": pl.Float64(),
    "spread": pl.Float64(),
    "weight": pl.Float64(),
}
#: detector state, one row of running values per subject (``anomaly_state``)
SCALAR_SCHEMA: Final[dict[str, pl.DataType]] = {
    "subject_id": pl.String(),
    "last_ts": TS,
    "ewm_obs": pl.Float64(),
    "ewm_exp": pl.Float64(),
    "drop_since": TS,
    "shift_since": TS,
    "last_value": pl.Float64(),
    "run_since": TS,
    "peak_kw": pl.Float64(),
    "peak_days": pl.Float64(),
    #: the end of the last row of the run ``shift_since`` began (a run left open in a dip
    #: at a batch's end: the next batch may resume it, see ``shift_bridge_hours``)
    "shift_until": TS,
}

#: one meter's use on one UTC day, as the daily model learns from it
DAILY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "meter_id": pl.String(),
    "day": pl.Date(),
    "total": pl.Float64(),
    "night": pl.Float64(),
    "peak_kw": pl.Float64(),
    "base_kw": pl.Float64(),
    "n": pl.Int64(),
}


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    """An anomaly row as plain JSON values (times ISO 8601): what an alert carries and
    what ``metrify anomalies list --json`` prints."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
    return out


__all__ = [
    "DAILY_SCHEMA",
    "INCIDENT_SCHEMA",
    "PROFILE_SCHEMA",
    "SCALAR_SCHEMA",
    "SEVERITIES",
    "Kind",
    "Severity",
    "Status",
    "StatusName",
    "to_json",
]
