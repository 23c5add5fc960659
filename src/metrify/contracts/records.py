"""The data contracts: what a meter reading, grid measurement, weather observation and
reference record look like once they are inside Metrify.

These schemas travel everywhere (PostgreSQL, the lake, Kafka, the API), so the names,
units and quality bits below never change meaning. Every source decodes into these
schemas; everything downstream may rely on them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Final

import polars as pl

UTC: Final = "UTC"
TS = pl.Datetime("us", UTC)

#: meter, node and station ids: 1-64 chars of ``A-Za-z0-9_.:-``.
ID_PATTERN: Final = r"^[A-Za-z0-9_.:\-]{1,64}$"
ID_RE: Final = re.compile(ID_PATTERN)

#: readings' interval must lie in this range and divide the day.
MIN_INTERVAL_S: Final = 60
MAX_INTERVAL_S: Final = 86_400


class Quality(enum.IntFlag):
    """Quality flag bits, fixed forever (they travel through every store)."""

    MISSING = 1
    DUPLICATE = 2
    OUT_OF_RANGE = 4
    SPIKE = 8
    FLAT_LINE = 16
    REGISTER_MISMATCH = 32
    REGISTER_ROLLOVER = 64
    CLOCK = 128
    ESTIMATED = 256
    EDITED = 512
    ANOMALY = 1024


class Status(enum.StrEnum):
    """Status the pipeline assigns to each stored record."""

    VALID = "valid"
    SUSPECT = "suspect"
    ESTIMATED = "estimated"
    REJECTED = "rejected"


class Commodity(enum.StrEnum):
    """What a meter measures. Electricity, gas and heat readings carry energy in kWh
    (gas converted from its volume, see :mod:`metrify.contracts.commodities`); water
    carries its volume in m³ in ``import_kwh`` and ``volume_m3`` (see
    ``docs/guides/commodities.md`` for why)."""

    ELECTRICITY = "electricity"
    GAS = "gas"
    HEAT = "heat"
    WATER = "water"


class MeterEvent(enum.StrEnum):
    """What a meter reports beside its readings (the IEC 61968-9 end-device event
    families a meter data management system acts on). The source's own code (an IEC
    61968-9 EndDeviceEventType such as ``3.26.38.185``, a DLMS/COSEM event number) is
    kept as given in the event's ``code``."""

    POWER_FAILURE = "power_failure"
    POWER_RESTORE = "power_restore"
    TAMPER = "tamper"
    COVER_OPEN = "cover_open"
    COVER_CLOSE = "cover_close"
    CLOCK_SET = "clock_set"
    REVERSE_RUNNING = "reverse_running"
    MAGNETIC_FIELD = "magnetic_field"
    OTHER = "other"


class MeterStatus(enum.StrEnum):
    """Lifecycle of a meter in the reference table."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    REMOVED = "removed"
    UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class Contract:
    """One record kind: its fields, which are keys, and how values are checked.

    ``nonnegative`` fields must be >= 0; ``bounded`` fields must lie in a closed range.
    Sources decode into ``schema``; the pipeline relies on ``key``.
    """

    kind: str
    table: str
    schema: dict[str, pl.DataType]
    key: tuple[str, ...]
    required: tuple[str, ...]
    time_series: bool = True
    nonnegative: tuple[str, ...] = ()
    bounded: dict[str, tuple[float, float]] = field(default_factory=dict)
    id_field: str = ""

    @property
    def fields(self) -> list[str]:
        return list(self.schema)

    @property
    def value_fields(self) -> list[str]:
        return [f for f in self.schema if f not in self.key]

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema)


F64 = pl.Float64()

READING = Contract(
    kind="readings",
    table="readings",
    schema={
        "meter_id": pl.String(),
        "ts": TS,
        "interval_s": pl.Int32(),
        "import_kwh": F64,
        "export_kwh": F64,
        "register_kwh": F64,
        "voltage_v": F64,
        "current_a": F64,
        "power_factor": F64,
        "active_power_kw": F64,
        "reactive_power_kvar": F64,
        "frequency_hz": F64,
        "generation_kwh": F64,
        "volume_m3": F64,
        "export_register_kwh": F64,
    },
    key=("meter_id", "ts"),
    required=("meter_id", "ts", "interval_s", "import_kwh"),
    nonnegative=(
        "import_kwh",
        "export_kwh",
        "generation_kwh",
        "volume_m3",
        "export_register_kwh",
        "register_kwh",
        "voltage_v",
        "current_a",
    ),
    bounded={"power_factor": (-1.0, 1.0)},
    id_field="meter_id",
)

GRID = Contract(
    kind="grid",
    table="grid_measurements",
    schema={
        "node_id": pl.String(),
        "ts": TS,
        "interval_s": pl.Int32(),
        "load_mw": F64,
        "generation_mw": F64,
        "frequency_hz": F64,
        "voltage_kv": F64,
        "price_per_mwh": F64,
    },
    key=("node_id", "ts"),
    required=("node_id", "ts", "interval_s", "load_mw"),
    nonnegative=("generation_mw", "voltage_kv", "frequency_hz"),
    id_field="node_id",
)

WEATHER = Contract(
    kind="weather",
    table="weather_observations",
    schema={
        "station_id": pl.String(),
        "ts": TS,
        "temperature_c": F64,
        "humidity_pct": F64,
        "wind_speed_ms": F64,
        "wind_dir_deg": F64,
        "pressure_hpa": F64,
        "precipitation_mm": F64,
        "solar_wm2": F64,
        "cloud_cover_pct": F64,
    },
    key=("station_id", "ts"),
    required=("station_id", "ts", "temperature_c"),
    nonnegative=("wind_speed_ms", "pressure_hpa", "precipitation_mm", "solar_wm2"),
    bounded={
        "temperature_c": (-90.0, 60.0),
        "humidity_pct": (0.0, 100.0),
        "wind_dir_deg": (0.0, 360.0),
        "cloud_cover_pct": (0.0, 100.0),
    },
    id_field="station_id",
)

METER = Contract(
    kind="meters",
    table="meters",
    schema={
        "meter_id": pl.String(),
        "site_id": pl.String(),
        "region": pl.String(),
        "node_id": pl.String(),
        "station_id": pl.String(),
        "tariff": pl.String(),
        "interval_s": pl.Int32(),
        "max_kw": F64,
        "rated_current_a": F64,
        "register_digits": pl.Int16(),
        "nominal_voltage_v": F64,
        "has_pv": pl.Boolean(),
        "timezone": pl.String(),
        "install_date": pl.Date(),
        "status": pl.String(),
        "latitude": F64,
        "longitude": F64,
        "commodity": pl.String(),
        "unit": pl.String(),
        "calorific_value_mj_m3": F64,
        "correction_factor": F64,
    },
    key=("meter_id",),
    required=("meter_id",),
    time_series=False,
    nonnegative=("max_kw", "rated_current_a", "nominal_voltage_v"),
    bounded={
        "latitude": (-90.0, 90.0),
        "longitude": (-180.0, 180.0),
        "calorific_value_mj_m3": (1.0, 100.0),
        "correction_factor": (0.5, 2.0),
    },
    id_field="meter_id",
)

NODE = Contract(
    kind="nodes",
    table="grid_nodes",
    schema={
        "node_id": pl.String(),
        "parent_id": pl.String(),
        "kind": pl.String(),
        "name": pl.String(),
        "capacity_mw": F64,
        "nominal_kv": F64,
        "status": pl.String(),
    },
    key=("node_id",),
    required=("node_id",),
    time_series=False,
    nonnegative=("capacity_mw", "nominal_kv"),
    id_field="node_id",
)

STATION = Contract(
    kind="stations",
    table="weather_stations",
    schema={
        "station_id": pl.String(),
        "name": pl.String(),
        "latitude": F64,
        "longitude": F64,
        "elevation_m": F64,
        "status": pl.String(),
    },
    key=("station_id",),
    required=("station_id",),
    time_series=False,
    bounded={"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0)},
    id_field="station_id",
)

EVENT = Contract(
    kind="events",
    table="meter_events",
    schema={
        "meter_id": pl.String(),
        "ts": TS,
        "event": pl.String(),
        "code": pl.String(),
        "details": pl.String(),
    },
    key=("meter_id", "ts", "event"),
    required=("meter_id", "ts", "event"),
    time_series=False,
    id_field="meter_id",
)

CONTRACTS: Final[dict[str, Contract]] = {
    c.kind: c for c in (READING, GRID, WEATHER, METER, NODE, STATION, EVENT)
}

#: which reference table an unknown id of a time-series kind is registered into.
REFERENCE_FOR: Final[dict[str, Contract]] = {"readings": METER, "grid": NODE, "weather": STATION}


def contract(kind: str) -> Contract:
    """Look up a contract by kind, with an error that lists the valid kinds."""
    try:
        return CONTRACTS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(CONTRACTS)}") from None


def interval_is_valid(interval_s: int) -> bool:
    """An interval is valid when it is 60..86400 s and divides the day evenly."""
    return MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S and MAX_INTERVAL_S % interval_s == 0
