"""Fleet simulator: a realistic, deterministic smart-metering fleet with labelled faults.

Why it exists: the pipeline, the detectors and the benchmarks need data that looks like a
utility's (households and small businesses, rooftop PV, weather-driven heating, a grid whose
feeders carry what their meters draw) and whose errors are *known*, so that a detector can
be scored against ground truth. Real data has no such labels; this does.

How it stays fast and exact:

* Every random number that belongs to a reading is a counter-based hash of
  ``(seed, stream, meter, interval)``, not a draw from a stateful generator. Any meter at
  any time can therefore be simulated on its own and gives the same value as inside the
  full fleet. That is what makes the rollover fault exact (the register start of a
  rollover meter is solved from its own simulated consumption up to the chosen wrap) and
  makes the data independent of ``chunk_days``.
* A chunk is a few ``(meters, intervals)`` numpy arrays; daily, weekly and seasonal shapes
  are table look-ups, weather is a smooth function of time evaluated per station.
* Faults are planned up front from their own random stream, so a fleet with
  ``fault_rate=0`` is the clean twin of the same fleet with faults: every row a label does
  not cover is identical in both, except ``register_kwh`` of a rollover meter (its start
  is moved) and of a theft meter after the theft starts. Labels are exact.

Label semantics (``Fleet.labels()``): ``start``/``end`` are the true interval-start times of
the affected rows, ``end`` exclusive. ``gap``: rows removed. ``spike``: ``import_kwh``
multiplied by ``factor`` (applied to at least the meter's typical interval energy so it is
always visible). ``flat_line``: ``import_kwh`` (and ``export_kwh``, ``active_power_kw``)
stuck at ``value``; the register keeps counting real use. ``negative``: ``import_kwh``
negated. ``clock_shift``: those rows carry ``ts + offset_s``. ``duplicate``: those rows are
sent twice, the copies appended to the end of their chunk. ``rollover``: the interval at
whose end the cumulative register wraps at ``10**digits`` kWh. ``theft``: from ``start`` to
the end of the window the meter records ``scale`` of the real import (register included),
while the feeder still carries the real load.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.contracts.records import (
    GRID,
    MAX_INTERVAL_S,
    METER,
    MIN_INTERVAL_S,
    NODE,
    READING,
    STATION,
    TS,
    WEATHER,
    interval_is_valid,
)

__all__ = [
    "FAULT_KINDS",
    "LABEL_SCHEMA",
    "LOSS_MAX",
    "LOSS_MIN",
    "TIMEZONE",
    "Fleet",
    "FleetSpec",
    "write_fleet",
]

F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]

#: every simulated meter and station lies in Great Britain and keeps its local clock.
TIMEZONE: Final = "Europe/London"
FAULT_KINDS: Final = (
    "gap",
    "spike",
    "flat_line",
    "negative",
    "clock_shift",
    "duplicate",
    "rollover",
    "theft",
)
LABEL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "meter_id": pl.String(),
    "kind": pl.String(),
    "start": TS,
    "end": TS,
    "detail": pl.String(),
}
#: feeder losses as a share of the load its meters draw (grows with loading).
LOSS_MIN: Final = 0.01
LOSS_MAX: Final = 0.06
#: clock shifts: a DST-like hour either way, and two offsets that break interval alignment.
CLOCK_OFFSETS_S: Final = (3600, -3600, 420, 37)

_TZ: Final = ZoneInfo(TIMEZONE)
_DAY_S: Final = 86_400
_MIN_LOAD_KW: Final = 0.05  # standby never drops below this, so night import is never 0 Wh
_FINE_STEP_S: Final = 900  # long intervals are simulated in sub-steps of at most this
_PAD: Final = 60  # minutes of padding around each day table so a per-meter shift needs no modulo
_W: Final = 1440 + 2 * _PAD
_ISO_Z: Final = "%Y-%m-%dT%H:%M:%SZ"
#: (meter, sub-step) values generated at once: big enough to amortise Python, small
#: enough that numpy's temporaries stay in reused heap memory.
_BLOCK_CELLS: Final = 1 << 19

# Hash streams: one per kind of randomness, so that adding one never changes another.
_S_LOAD, _S_AUX, _S_PV, _S_FLICKER, _S_GRID, _S_FREQ, _S_WEATHER = range(1, 8)

_UK_LAT: Final = (50.6, 55.3)
_UK_LON: Final = (-4.2, 1.2)
_REGION_NAMES: Final = (
    "North",
    "South",
    "East",
    "West",
    "Midlands",
    "Coast",
    "Valley",
    "Borders",
)
_BUSINESS_RATINGS_A: Final = (100.0, 160.0, 200.0, 250.0, 315.0, 400.0, 630.0, 800.0)


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class FleetSpec:
    """What fleet to simulate. Validated on construction: a bad spec is a clear ValueError.

    ``start`` is a day: its UTC midnight is the first interval. ``fault_rate`` is the share
    of meters with at least one injected fault (0 gives a clean fleet). ``stations`` and
    ``feeders`` of 0 size the network from ``meters``. ``chunk_days`` is how many days each
    yielded chunk holds; it changes memory use, never the data.
    """

    meters: int = 200
    days: int = 30
    interval_s: int = 900
    seed: int = 0
    start: dt.date = dt.date(2025, 1, 1)
    business_share: float = 0.15
    pv_share: float = 0.2
    fault_rate: float = 0.05
    stations: int = 0
    feeders: int = 0
    chunk_days: int = 1

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.meters, int) or self.meters < 1:
            problems.append(f"meters must be a whole number >= 1, got {self.meters!r}")
        if not isinstance(self.days, int) or self.days < 1:
            problems.append(f"days must be a whole number >= 1, got {self.days!r}")
        if not isinstance(self.interval_s, int) or not interval_is_valid(self.interval_s):
            problems.append(
                f"interval_s must be {MIN_INTERVAL_S}..{MAX_INTERVAL_S} seconds and divide the "
                f"day evenly (e.g. 300, 900, 1800, 3600), got {self.interval_s!r}"
            )
        if not isinstance(self.start, dt.date):
            problems.append(f"start must be a date, got {self.start!r}")
        for name in ("business_share", "pv_share", "fault_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                problems.append(f"{name} must be between 0 and 1, got {value!r}")
        for name in ("stations", "feeders"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                problems.append(f"{name} must be >= 0 (0 picks a size from meters), got {value!r}")
        if not isinstance(self.chunk_days, int) or self.chunk_days < 1:
            problems.append(f"chunk_days must be a whole number >= 1, got {self.chunk_days!r}")
        if not isinstance(self.seed, int):
            problems.append(f"seed must be an integer, got {self.seed!r}")
        if problems:
            raise ValueError("invalid fleet spec: " + "; ".join(problems))

    @property
    def n_stations(self) -> int:
        """Weather stations: as asked, else about one per 50 meters."""
        return self.stations or max(1, round(self.meters / 50))

    @property
    def n_feeders(self) -> int:
        """Feeders: as asked, else about one per 25 meters."""
        return self.feeders or max(1, round(self.meters / 25))


# --------------------------------------------------------------------------- hashing


_M64: Final = (1 << 64) - 1
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_MASK21 = np.uint64((1 << 21) - 1)


def _splitmix(x: int) -> int:
    """The splitmix64 finaliser on a Python int (used to derive per-stream salts)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _hash(salt: int, a: U64Array, b: U64Array) -> U64Array:
    """64 random bits for every pair (a[i], b[j]): a stateless, vectorised splitmix64.

    Counter-based on purpose: the value for one (meter, interval) never depends on which
    other meters or intervals are generated alongside it.
    """
    z: U64Array = np.left_shift(a, np.uint64(32))[:, None] | b[None, :]
    z ^= np.uint64(salt)
    z *= _C1
    tmp = np.right_shift(z, np.uint64(30))
    z ^= tmp
    z *= _C2
    np.right_shift(z, np.uint64(27), out=tmp)
    z ^= tmp
    z *= _C3
    np.right_shift(z, np.uint64(31), out=tmp)
    z ^= tmp
    return z


def _uniform(bits: U64Array) -> F64Array:
    """A uniform in (0, 1) from 53 of the bits."""
    u: F64Array = np.right_shift(bits, np.uint64(11)).astype(np.float64)
    u += 0.5
    u *= 2.0**-53
    return u


def _uniforms3(bits: U64Array) -> tuple[F64Array, F64Array, F64Array]:
    """Three independent uniforms in (0, 1) from the three 21-bit slices of the bits."""
    out = []
    for shift in (43, 22, 0):
        piece = np.right_shift(bits, np.uint64(shift)) & _MASK21
        u: F64Array = piece.astype(np.float64)
        u += 0.5
        u *= 2.0**-21
        out.append(u)
    return out[0], out[1], out[2]


def _normalish(bits: U64Array) -> F64Array:
    """Approximately standard normal (Irwin-Hall of three 21-bit uniforms), bounded +-3.

    Cheaper than Box-Muller (no log or trig) and good enough for measurement noise.
    """
    s = np.right_shift(bits, np.uint64(43))
    s += np.right_shift(bits, np.uint64(22)) & _MASK21
    s += bits & _MASK21
    z: F64Array = s.astype(np.float64)
    z *= 2.0 / 2**21
    z -= 3.0 - 3.0 / 2**21
    return z


# --------------------------------------------------------------------------- load shapes

_HOUR = np.arange(1440, dtype=np.float64) / 60.0


def _bump(center_h: float, width_h: float, amp: float) -> F64Array:
    """A Gaussian bump around a time of day (circular, so it may cross midnight)."""
    d = np.abs(_HOUR - center_h)
    d = np.minimum(d, 24.0 - d)
    out: F64Array = amp * np.exp(-0.5 * (d / width_h) ** 2)
    return out


def _block(start_h: float, end_h: float, amp: float, edge_h: float = 0.5) -> F64Array:
    """A plateau from start to end hour with smooth edges (end may pass midnight)."""
    best = np.zeros(1440)
    for shift in (-24.0, 0.0, 24.0):
        x = _HOUR + shift
        up = 0.5 + 0.5 * np.tanh((x - start_h) / (edge_h / 2))  # logistic, overflow-free
        down = 0.5 + 0.5 * np.tanh((end_h - x) / (edge_h / 2))
        best = np.maximum(best, up * down)
    out: F64Array = amp * best
    return out


def _flat(level: float) -> F64Array:
    return np.full(1440, level)


# Each archetype: (weekday, saturday, sunday-or-holiday) relative activity by local minute.
_HOUSEHOLD: Final[dict[str, tuple[F64Array, F64Array, F64Array]]] = {
    "commuter": (
        0.25 + _bump(7.0, 0.8, 1.3) + _bump(12.5, 2.0, 0.25) + _bump(19.0, 1.8, 2.4),
        0.28 + _bump(9.5, 1.4, 1.4) + _bump(13.0, 2.0, 0.9) + _bump(18.5, 2.0, 2.3),
        0.28 + _bump(9.5, 1.4, 1.3) + _bump(13.0, 1.8, 1.3) + _bump(18.0, 2.0, 2.2),
    ),
    "home": (
        0.3
        + _bump(8.0, 1.2, 1.0)
        + _block(9.5, 16.5, 0.55)
        + _bump(12.5, 1.2, 0.8)
        + _bump(18.0, 2.0, 2.0),
        0.3
        + _bump(8.5, 1.3, 1.0)
        + _block(10.0, 16.5, 0.6)
        + _bump(12.5, 1.2, 0.9)
        + _bump(18.0, 2.0, 2.1),
        0.3
        + _bump(8.5, 1.3, 1.0)
        + _block(10.0, 16.5, 0.6)
        + _bump(13.0, 1.5, 1.2)
        + _bump(18.0, 2.0, 2.0),
    ),
    "family": (
        0.3
        + _bump(6.9, 0.9, 1.8)
        + _bump(16.0, 1.2, 0.9)
        + _bump(18.3, 1.5, 2.4)
        + _bump(20.8, 1.3, 1.2),
        0.32 + _bump(8.8, 1.5, 1.7) + _bump(13.0, 2.2, 1.1) + _bump(18.0, 1.8, 2.5),
        0.32 + _bump(9.0, 1.5, 1.6) + _bump(13.0, 1.8, 1.6) + _bump(18.0, 1.8, 2.3),
    ),
    "late": (
        0.35 + _bump(8.6, 1.0, 0.8) + _bump(21.0, 2.2, 2.4) + _bump(0.7, 1.2, 1.0),
        0.38
        + _bump(11.0, 1.6, 1.0)
        + _bump(15.0, 2.5, 0.7)
        + _bump(21.5, 2.2, 2.4)
        + _bump(1.2, 1.3, 1.1),
        0.38
        + _bump(11.0, 1.6, 1.1)
        + _bump(15.0, 2.5, 0.8)
        + _bump(21.0, 2.2, 2.2)
        + _bump(1.0, 1.3, 0.9),
    ),
}
# Economy 7: a commuter household with storage heating / hot water on the cheap night rate.
_HOUSEHOLD["economy7"] = (
    _HOUSEHOLD["commuter"][0] + _block(0.5, 7.5, 1.6, 0.1),
    _HOUSEHOLD["commuter"][1] + _block(0.5, 7.5, 1.6, 0.1),
    _HOUSEHOLD["commuter"][2] + _block(0.5, 7.5, 1.6, 0.1),
)
_BUSINESS: Final[dict[str, tuple[F64Array, F64Array, F64Array]]] = {
    "office": (
        0.22 + _block(7.5, 18.5, 1.25, 0.6) + _bump(12.5, 1.0, 0.15),
        0.22 + _block(9.0, 13.0, 0.2),
        _flat(0.2),
    ),
    "retail": (
        0.28 + _block(8.5, 18.5, 1.3, 0.4),
        0.28 + _block(8.5, 18.5, 1.45, 0.4),
        0.28 + _block(10.0, 16.5, 1.1, 0.4),
    ),
    "hospitality": (
        0.35 + _block(10.5, 23.5, 0.9) + _bump(12.8, 1.0, 0.6) + _bump(19.5, 1.5, 0.9),
        0.35 + _block(10.5, 24.5, 1.0) + _bump(13.0, 1.2, 0.8) + _bump(19.5, 1.5, 1.1),
        0.35 + _block(10.5, 22.5, 1.0) + _bump(13.0, 1.5, 1.0) + _bump(18.5, 1.5, 0.7),
    ),
}
_HOUSEHOLD_P: Final = (0.35, 0.2, 0.25, 0.12, 0.08)
_BUSINESS_P: Final = (0.45, 0.35, 0.2)
_N_HOUSEHOLD_ARCH: Final = len(_HOUSEHOLD)


def _padded(day: F64Array) -> F64Array:
    return np.concatenate([day[-_PAD:], day, day[:_PAD]])


def _shape_table() -> F64Array:
    """All archetypes as one flat table: [archetype][daytype][padded minute].

    Normalised to a weekly mean of 1, so a meter's ``scale`` is its mean active load and
    weekday/weekend differences survive.
    """
    rows: list[F64Array] = []
    for days in (*_HOUSEHOLD.values(), *_BUSINESS.values()):
        week = (5 * days[0].mean() + days[1].mean() + days[2].mean()) / 7.0
        rows.extend(_padded(d / week) for d in days)
    return np.concatenate(rows)


def _schedules() -> dict[str, F64Array]:
    """When heating, cooling and lighting run: [class][daytype][minute], class 0 household."""
    heat_h = (
        0.45 + _block(6.0, 9.0, 0.55) + _block(16.0, 23.0, 0.55),
        0.45 + _block(7.0, 23.0, 0.55),
        0.45 + _block(7.0, 23.0, 0.55),
    )
    heat_b = (0.3 + _block(7.0, 18.5, 0.7), 0.3 + _block(8.5, 17.0, 0.5), _flat(0.3))
    cool_h = (0.2 + _block(12.0, 22.5, 0.8),) * 3
    awake_h = (
        _block(6.0, 8.5, 1.0) + _block(16.0, 23.5, 1.0),
        _block(7.5, 9.5, 1.0) + _block(16.0, 24.0, 1.0),
        _block(7.5, 9.5, 1.0) + _block(16.0, 23.5, 1.0),
    )
    zero = (_flat(0.0),) * 3
    return {
        "heat": np.array([heat_h, heat_b]),
        "cool": np.array([cool_h, heat_b]),
        "light": np.array([awake_h, zero]),
    }


_SHAPES: Final = _shape_table()
_SCHEDULES: Final = _schedules()


# --------------------------------------------------------------------------- weather


def _sines(t_s: F64Array, periods_s: F64Array, amps: F64Array, phases: F64Array) -> F64Array:
    """Sum of sinusoids. phases (K,) gives a (T,) series; phases (S, K) gives (S, T)."""
    if phases.ndim == 1:
        out = np.zeros(t_s.shape)
        for k in range(periods_s.size):
            out += amps[k] * np.sin(2.0 * np.pi * t_s / periods_s[k] + phases[k])
        return out
    out = np.zeros((phases.shape[0], t_s.size))
    for k in range(periods_s.size):
        out += amps[k] * np.sin(2.0 * np.pi * t_s[None, :] / periods_s[k] + phases[:, k : k + 1])
    return out


@dataclass(frozen=True)
class _Climate:
    """Weather as smooth functions of time per station, so any instant can be evaluated.

    Temperature = station mean + season + diurnal cycle (damped by cloud) + weather systems
    (a fleet-wide and a station part, sums of slow sinusoids with random phases). The same
    function feeds the hourly observations and the meters' heating and PV, which is why
    temperature and cloud visibly drive load.
    """

    lat: F64Array
    lon: F64Array
    mean_c: F64Array
    salt: int
    temp_p: F64Array
    temp_a: F64Array
    temp_ph: F64Array
    temp_st_p: F64Array
    temp_st_a: F64Array
    temp_st_ph: F64Array
    cloud_p: F64Array
    cloud_a: F64Array
    cloud_ph: F64Array
    cloud_st_p: F64Array
    cloud_st_a: F64Array
    cloud_st_ph: F64Array

    @classmethod
    def draw(
        cls, rng: np.random.Generator, lat: F64Array, lon: F64Array, elevation: F64Array, salt: int
    ) -> _Climate:
        n = lat.size
        day = float(_DAY_S)

        def periods(k: int, lo: float, hi: float) -> F64Array:
            return np.exp(rng.uniform(math.log(lo), math.log(hi), k)) * day

        mean_c = 10.6 - 0.0065 * elevation - 0.55 * (lat - 52.0) + rng.normal(0.0, 0.3, n)
        return cls(
            lat=lat,
            lon=lon,
            mean_c=mean_c,
            salt=salt,
            temp_p=periods(8, 2.0, 20.0),
            temp_a=np.full(8, 1.2),
            temp_ph=rng.uniform(0, 2 * np.pi, 8),
            temp_st_p=periods(3, 1.0, 8.0),
            temp_st_a=np.full(3, 0.5),
            temp_st_ph=rng.uniform(0, 2 * np.pi, (n, 3)),
            cloud_p=periods(6, 0.25, 6.0),
            cloud_a=np.full(6, 0.9),
            cloud_ph=rng.uniform(0, 2 * np.pi, 6),
            cloud_st_p=periods(3, 0.1, 2.0),
            cloud_st_a=np.full(3, 0.5),
            cloud_st_ph=rng.uniform(0, 2 * np.pi, (n, 3)),
        )

    def fields(self, t_s: F64Array, st: I64Array) -> dict[str, F64Array]:
        """Weather of stations ``st`` at instants ``t_s``, each field shaped (len(st), T).

        temperature_c; cloud (0..1); sin_el, the sine of the solar elevation; ghi_clear,
        clear-sky irradiance in W/m2; signal, the weather-system index behind cloud, wind
        and pressure.
        """
        days = t_s / _DAY_S
        annual = -np.cos(2.0 * np.pi * (days - 19.0) / 365.2422)
        decl = 0.409 * np.sin(2.0 * np.pi * (days - 80.0) / 365.2422)
        utc_h = (t_s % _DAY_S) / 3600.0
        solar_h = utc_h[None, :] + self.lon[st][:, None] / 15.0
        lat = np.radians(self.lat[st])[:, None]
        hour_angle = np.cos(2.0 * np.pi * (solar_h - 12.0) / 24.0)
        sin_el = np.sin(lat) * np.sin(decl)[None, :]
        sin_el += np.cos(lat) * np.cos(decl)[None, :] * hour_angle
        signal = _sines(t_s, self.cloud_p, self.cloud_a, self.cloud_ph)[None, :] + _sines(
            t_s, self.cloud_st_p, self.cloud_st_a, self.cloud_st_ph[st]
        )
        cloud = 1.0 / (1.0 + np.exp(-(0.8 + signal)))
        diurnal_amp = (3.2 + 1.5 * decl / 0.409)[None, :] * (1.0 - 0.45 * cloud)
        temp = (
            self.mean_c[st][:, None]
            + 6.5 * annual[None, :]
            + diurnal_amp * np.cos(2.0 * np.pi * (solar_h - 15.0) / 24.0)
            + _sines(t_s, self.temp_p, self.temp_a, self.temp_ph)[None, :]
            + _sines(t_s, self.temp_st_p, self.temp_st_a, self.temp_st_ph[st])
        )
        ghi = 1080.0 * np.power(np.clip(sin_el, 0.0, None), 1.2)
        return {
            "temperature_c": temp,
            "cloud": cloud,
            "sin_el": sin_el,
            "ghi_clear": ghi,
            "signal": signal,
        }


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class _Fault:
    """One planned fault in global interval indices [start, stop)."""

    meter: int
    kind: str
    start: int
    stop: int
    value: float = 0.0


def _detail(f: _Fault) -> str:
    if f.kind in ("gap", "negative", "duplicate"):
        return f"rows={f.stop - f.start}"
    if f.kind == "spike":
        return f"factor={f.value:g}"
    if f.kind == "flat_line":
        return f"value={f.value:g}"
    if f.kind == "clock_shift":
        return f"offset_s={int(f.value):+d}"
    if f.kind == "rollover":
        return f"digits={int(f.value)}"
    return f"scale={f.value:g}"


# --------------------------------------------------------------------------- the fleet


@dataclass
class _TimeContext:
    """Per-timestamp facts shared by every meter: local minute, day type, season."""

    lm: I64Array
    daytype: I64Array
    season: F64Array


class Fleet:
    """A simulated fleet: reference tables up front, time series streamed in chunks.

    Construction draws the meters, grid, stations and the fault plan (cheap); readings and
    grid measurements are generated lazily by :meth:`chunks`, one ``chunk_days`` block at a
    time, so memory stays flat however long the window.
    """

    spec: FleetSpec
    meters: pl.DataFrame  #: records.METER schema
    nodes: pl.DataFrame  #: records.NODE schema: regions, substations, feeders
    stations: pl.DataFrame  #: records.STATION schema

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self._n_day = _DAY_S // spec.interval_s
        self._n = spec.days * self._n_day
        sub = max(1, -(-spec.interval_s // _FINE_STEP_S))
        while spec.interval_s % sub:
            sub += 1
        self._sub = sub
        start = dt.datetime(spec.start.year, spec.start.month, spec.start.day, tzinfo=dt.UTC)
        self._epoch_s = int(start.timestamp())
        seed = spec.seed % (1 << 64)
        self._salt = {s: _splitmix(_splitmix(seed) ^ s) for s in range(1, 8)}
        self._offsets: dict[int, int] = {}
        self._build_reference(np.random.default_rng([seed, 1]))
        self._plan_faults(np.random.default_rng([seed, 2]))

    # ------------------------------------------------------------------ reference data

    def _build_reference(self, rng: np.random.Generator) -> None:
        """Draw the grid, stations and meters (and every per-meter load parameter)."""
        spec = self.spec
        m, f_n, s_n = spec.meters, spec.n_feeders, spec.n_stations
        sub_n = max(1, math.ceil(f_n / 6))
        reg_n = max(1, math.ceil(sub_n / 4))
        # Children are contiguous blocks of their parents: sums are np.add.reduceat.
        feeder_sub = np.arange(f_n) * sub_n // f_n
        sub_reg = np.arange(sub_n) * reg_n // sub_n
        meter_feeder = np.arange(m) * f_n // m
        feeder_station = np.arange(f_n) * s_n // f_n

        reg_lat = rng.uniform(51.0, 54.5, reg_n)
        reg_lon = rng.uniform(-3.5, 0.5, reg_n)
        sub_lat = np.clip(reg_lat[sub_reg] + rng.normal(0, 0.25, sub_n), *_UK_LAT)
        sub_lon = np.clip(reg_lon[sub_reg] + rng.normal(0, 0.35, sub_n), *_UK_LON)
        fdr_lat = np.clip(sub_lat[feeder_sub] + rng.normal(0, 0.04, f_n), *_UK_LAT)
        fdr_lon = np.clip(sub_lon[feeder_sub] + rng.normal(0, 0.06, f_n), *_UK_LON)
        m_lat = np.clip(fdr_lat[meter_feeder] + rng.normal(0, 0.01, m), *_UK_LAT)
        m_lon = np.clip(fdr_lon[meter_feeder] + rng.normal(0, 0.015, m), *_UK_LON)

        st_lat = rng.uniform(*_UK_LAT, s_n)
        st_lon = rng.uniform(*_UK_LON, s_n)
        counts = np.bincount(feeder_station, minlength=s_n)
        has = counts > 0
        st_lat[has] = np.bincount(feeder_station, fdr_lat, s_n)[has] / counts[has]
        st_lon[has] = np.bincount(feeder_station, fdr_lon, s_n)[has] / counts[has]
        st_lat = np.clip(st_lat + rng.normal(0, 0.02, s_n), *_UK_LAT)
        st_lon = np.clip(st_lon + rng.normal(0, 0.03, s_n), *_UK_LON)
        elevation = np.round(rng.uniform(5.0, 250.0, s_n), 0)
        self._climate = _Climate.draw(rng, st_lat, st_lon, elevation, self._salt[_S_WEATHER])

        # ---- meters: class, archetype and load parameters
        biz = rng.random(m) < spec.business_share
        arch = np.where(
            biz,
            _N_HOUSEHOLD_ARCH + rng.choice(len(_BUSINESS), m, p=_BUSINESS_P),
            rng.choice(_N_HOUSEHOLD_ARCH, m, p=_HOUSEHOLD_P),
        )
        shift = np.where(biz, rng.integers(-30, 31, m), rng.integers(-45, 46, m))
        scale = np.where(
            biz,
            np.clip(rng.lognormal(math.log(8.0), 0.6, m), 1.5, 80.0),
            rng.lognormal(math.log(0.2), 0.35, m),
        )
        base = np.where(biz, 0.0, rng.uniform(0.05, 0.12, m))
        electric_heat = rng.random(m) < 0.1
        heat = np.where(
            biz,
            rng.uniform(0.01, 0.04, m) * scale,
            np.where(electric_heat, rng.uniform(0.06, 0.18, m), rng.uniform(0.003, 0.012, m)),
        )
        has_ac = rng.random(m) < 0.08
        cool = np.where(
            biz,
            rng.uniform(0.01, 0.05, m) * scale,
            np.where(has_ac, rng.uniform(0.1, 0.35, m), 0.0),
        )
        light = np.where(biz, 0.0, rng.uniform(0.05, 0.2, m))
        sigma = np.where(biz, rng.uniform(0.06, 0.15, m), rng.uniform(0.25, 0.45, m))
        has_pv = rng.random(m) < spec.pv_share
        kwp = np.where(biz, rng.uniform(0.4, 1.2, m) * scale, rng.uniform(2.5, 6.0, m)) * has_pv
        orient = rng.uniform(0.75, 1.0, m)
        pf0 = np.where(biz, rng.uniform(0.9, 0.96, m), rng.uniform(0.95, 0.99, m))
        vpos = rng.uniform(-4.0, 6.0, m)
        drop = np.where(biz, rng.uniform(0.02, 0.08, m), rng.uniform(0.3, 0.9, m))
        pq = rng.random(m) < 0.3
        hh_rated = rng.choice(np.array([60.0, 80.0, 100.0]), m, p=[0.2, 0.3, 0.5])
        need_kw = 3.0 * scale + 15.0 * heat + 10.0 * cool
        ratings = np.array(_BUSINESS_RATINGS_A)
        biz_rated = ratings[np.minimum(np.searchsorted(ratings * 0.693, need_kw), ratings.size - 1)]
        rated = np.where(biz, biz_rated, hh_rated)
        max_kw = np.round(np.where(biz, rated * 0.693, rated * 0.23), 2)
        install_ago = rng.integers(30, 3650, m)

        # Registers never wrap by themselves: the window's most possible import must fit.
        cap_kw = 0.9 * max_kw
        bound_kwh = cap_kw * spec.days * 24.0
        digits_pref = np.where(~biz & (rng.random(m) < 0.12), 5, 6)
        digits_need = np.ceil(np.log10(bound_kwh * 1.25)).astype(np.int64)
        digits = np.maximum(digits_pref, digits_need)
        wrap_kwh = 10.0**digits
        reg_start_wh = np.floor(rng.random(m) * (wrap_kwh - bound_kwh) * 1000.0).astype(np.int64)
        tariff_u = rng.random(m)
        interval_h = spec.interval_s / 3600.0
        typical = np.maximum(
            np.round((base + scale + 0.3 * light + 5.0 * heat) * interval_h, 3), 0.001
        )

        # ---- grid node parameters
        feeder_max = np.bincount(meter_feeder, max_kw, f_n)
        fdr_cap = np.round(np.maximum(0.05, 0.3 * feeder_max / 1000.0), 3)
        sub_cap = np.round(1.25 * np.bincount(feeder_sub, fdr_cap, sub_n), 3)
        reg_cap = np.round(1.25 * np.bincount(sub_reg, sub_cap, reg_n), 3)
        reg_typical = np.bincount(
            sub_reg[feeder_sub[meter_feeder]], typical / interval_h / 1000.0, reg_n
        )

        # ---- ids and tables
        def ids(prefix: str, n: int) -> list[str]:
            width = max(len(str(n)), {"MTR": 6, "SITE": 6, "FDR": 4}.get(prefix, 3))
            return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]

        reg_ids, sub_ids, fdr_ids = ids("REG", reg_n), ids("SUB", sub_n), ids("FDR", f_n)
        st_ids, meter_ids = ids("WS", s_n), ids("MTR", m)
        reg_names = [
            _REGION_NAMES[i % len(_REGION_NAMES)]
            + ("" if i < len(_REGION_NAMES) else f" {i // len(_REGION_NAMES) + 1}")
            for i in range(reg_n)
        ]
        self.nodes = pl.DataFrame(
            {
                "node_id": reg_ids + sub_ids + fdr_ids,
                "parent_id": [None] * reg_n
                + [reg_ids[r] for r in sub_reg]
                + [sub_ids[s] for s in feeder_sub],
                "kind": ["region"] * reg_n + ["substation"] * sub_n + ["feeder"] * f_n,
                "name": [f"{n} region" for n in reg_names]
                + [f"Substation {i + 1}" for i in range(sub_n)]
                + [f"Feeder {i + 1}" for i in range(f_n)],
                "capacity_mw": np.concatenate([reg_cap, sub_cap, fdr_cap]),
                "nominal_kv": [132.0] * reg_n + [33.0] * sub_n + [11.0] * f_n,
                "status": ["active"] * (reg_n + sub_n + f_n),
            },
            schema=NODE.schema,
        )
        self.stations = pl.DataFrame(
            {
                "station_id": st_ids,
                "name": [f"Weather station {i + 1}" for i in range(s_n)],
                "latitude": np.round(st_lat, 4),
                "longitude": np.round(st_lon, 4),
                "elevation_m": elevation,
                "status": ["active"] * s_n,
            },
            schema=STATION.schema,
        )
        tariffs = np.where(
            biz,
            np.where(tariff_u < 0.3, "business-tou", "business"),
            np.where(
                arch == list(_HOUSEHOLD).index("economy7"),
                "economy7",
                np.where(tariff_u < 0.12, "time-of-use", "standard"),
            ),
        )
        meter_region = sub_reg[feeder_sub[meter_feeder]]
        meter_station = feeder_station[meter_feeder]
        self.meters = pl.DataFrame(
            {
                "meter_id": meter_ids,
                "site_id": ids("SITE", m),
                "region": np.array(reg_ids)[meter_region],
                "node_id": np.array(fdr_ids)[meter_feeder],
                "station_id": np.array(st_ids)[meter_station],
                "tariff": tariffs,
                "interval_s": np.full(m, spec.interval_s, dtype=np.int32),
                "max_kw": max_kw,
                "rated_current_a": rated,
                "register_digits": digits.astype(np.int16),
                "nominal_voltage_v": np.full(m, 230.0),
                "has_pv": has_pv,
                "timezone": [TIMEZONE] * m,
                "install_date": np.datetime64(spec.start, "D")
                - install_ago.astype("timedelta64[D]"),
                "status": ["active"] * m,
                "latitude": np.round(m_lat, 5),
                "longitude": np.round(m_lon, 5),
            },
            schema=METER.schema,
        )

        # ---- private per-meter arrays the generator indexes
        self._meter_ids = pl.Series("meter_id", meter_ids, dtype=pl.String())
        self._node_ids = self.nodes["node_id"]
        self._biz = biz
        self._arch_off = (arch * 3 * _W + _PAD + shift).astype(np.int64)
        self._scale, self._base, self._heat = scale, base, heat
        self._cool, self._light = cool, light
        self._sigma, self._kwp, self._orient = sigma, kwp, orient
        self._pv_rows = np.flatnonzero(has_pv)
        self._pf0, self._vpos, self._drop = pf0, vpos, drop
        self._phases = np.where(biz, 3.0, 1.0)
        self._pq = pq
        self._cap_kw = cap_kw
        self._station = meter_station
        self._feeder = meter_feeder
        self._digits = digits
        self._wrap_wh = (wrap_kwh * 1000.0).astype(np.int64)
        self._reg_start_wh = reg_start_wh
        self._typical = typical
        self._theft_start = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
        self._theft_scale = np.ones(m)
        # grid
        self._sub_starts = np.cumsum(np.bincount(feeder_sub, minlength=sub_n)) - np.bincount(
            feeder_sub, minlength=sub_n
        )
        self._reg_starts = np.cumsum(np.bincount(sub_reg, minlength=reg_n)) - np.bincount(
            sub_reg, minlength=reg_n
        )
        self._fdr_cap_kw = fdr_cap * 1000.0
        self._loss0 = rng.uniform(LOSS_MIN, 0.03, f_n)
        self._loss1 = rng.uniform(0.0, LOSS_MAX - 0.03, f_n)
        self._node_cap = np.concatenate([reg_cap, sub_cap, fdr_cap])
        self._node_kv = np.array([132.0] * reg_n + [33.0] * sub_n + [11.0] * f_n)
        self._reg_typical = np.maximum(reg_typical, 1e-6)
        self._n_reg, self._n_sub = reg_n, sub_n
        self._freq_p = np.array([1020.0, 4680.0, 18360.0]) * rng.uniform(0.8, 1.2, 3)
        self._freq_ph = rng.uniform(0, 2 * np.pi, 3)

    # ------------------------------------------------------------------ fault plan

    def _plan_faults(self, rng: np.random.Generator) -> None:
        """Choose faulty meters and place their faults; every draw is made for every meter.

        Drawing for all meters regardless of ``fault_rate`` keeps the plan stable: a higher
        rate only adds meters. Faults of one meter sit in separate segments of the window
        with at least one clean row between them, so each label stays exact.
        """
        spec, m, n = self.spec, self.spec.meters, self._n
        per_hour = 3600.0 / spec.interval_s
        u_sel = rng.random(m)
        two = rng.random(m) < 0.3
        order = np.argsort(rng.random((m, len(FAULT_KINDS))), axis=1)
        u = rng.random((m, 2, 4))
        clock_choice = rng.integers(0, len(CLOCK_OFFSETS_S), (m, 2))
        faults: list[_Fault] = []
        for meter in np.flatnonzero(u_sel < spec.fault_rate).tolist():
            kinds = [FAULT_KINDS[k] for k in order[meter, : 2 if two[meter] else 1]]
            kinds.sort(key=lambda k: k == "theft")  # theft runs to the end: last segment
            k_n = min(len(kinds), n)
            seg = n // k_n if k_n else 0
            for i, kind in enumerate(kinds[:k_n]):
                lo, hi = i * seg, (n if i == k_n - 1 else (i + 1) * seg)
                if hi - lo >= 3:
                    lo, hi = lo + 1, hi - 1
                pos, dur_u, p1, p2 = u[meter, i]
                fault = self._place(
                    meter, kind, lo, hi, pos, dur_u, p1, p2, per_hour, int(clock_choice[meter, i])
                )
                if fault is not None:
                    faults.append(fault)
        for f in faults:
            if f.kind == "theft":
                self._theft_start[f.meter] = f.start
                self._theft_scale[f.meter] = f.value
        self._faults = self._solve_rollovers(faults)
        self._f_start = np.array([f.start for f in self._faults], dtype=np.int64)
        self._f_stop = np.array([f.stop for f in self._faults], dtype=np.int64)
        self._f_meter = np.array([f.meter for f in self._faults], dtype=np.int64)
        epoch_us = self._epoch_s * 1_000_000
        step_us = self.spec.interval_s * 1_000_000
        labels = pl.DataFrame(
            {
                "meter_id": [self._meter_ids[f.meter] for f in self._faults],
                "kind": [f.kind for f in self._faults],
                "start": epoch_us + self._f_start * step_us,
                "end": epoch_us + self._f_stop * step_us,
                "detail": [_detail(f) for f in self._faults],
            },
            schema={**LABEL_SCHEMA, "start": pl.Int64(), "end": pl.Int64()},
        )
        self._labels = labels.with_columns(pl.col("start", "end").cast(TS)).sort(
            "meter_id", "start", "kind"
        )

    def _place(
        self,
        meter: int,
        kind: str,
        lo: int,
        hi: int,
        pos: float,
        dur_u: float,
        p1: float,
        p2: float,
        per_hour: float,
        clock_i: int,
    ) -> _Fault | None:
        """Put one fault of ``kind`` inside [lo, hi) with a kind-specific length and size."""
        room = hi - lo
        if room < 1:
            return None
        if kind == "rollover":
            # Wrap in the interval that ends at a UTC midnight: it is night in Great Britain,
            # so there is always real import there (no PV), and the row before exists.
            nd = self._n_day
            days = [d for d in range(lo // nd, hi // nd + 2) if max(lo, 1) <= d * nd - 1 < hi]
            if days:
                k = days[min(int(pos * len(days)), len(days) - 1)] * self._n_day - 1
            else:
                k = max(lo + int(pos * room), 1)
                if k >= hi:
                    return None
            return _Fault(meter, kind, k, k + 1, float(self._digits[meter]))
        hours = {
            "gap": 0.5 + 11.5 * dur_u,
            "flat_line": 3.0 + 9.0 * dur_u,
            "clock_shift": 2.0 + 22.0 * dur_u,
        }
        if kind in hours:
            dur = max(2 if kind == "flat_line" else 1, round(hours[kind] * per_hour))
        elif kind == "negative":
            dur = 1 + int(dur_u * 4)
        elif kind == "duplicate":
            dur = 1 + int(dur_u * 8)
        else:  # spike, theft (theft's stop is the window end)
            dur = 1
        dur = min(dur, room)
        start = lo + min(int(pos * (room - dur + 1)), room - dur)
        stop = self._n if kind == "theft" else start + dur
        value = 0.0
        if kind == "spike":
            value = round(10.0 + 40.0 * p1, 1)
        elif kind == "flat_line":
            value = 0.0 if p1 < 0.3 else round(float(self._typical[meter]) * (0.6 + 0.8 * p2), 3)
        elif kind == "clock_shift":
            value = float(CLOCK_OFFSETS_S[clock_i])
            if abs(value) != 3600 and value % self.spec.interval_s == 0:
                value = 37.0
        elif kind == "theft":
            value = round(0.2 + 0.2 * p1, 2)
        return _Fault(meter, kind, start, stop, value)

    def _solve_rollovers(self, faults: list[_Fault]) -> list[_Fault]:
        """Set each rollover meter's register start so that it wraps exactly as labelled.

        The meter is simulated alone (the hash-based noise makes that identical to the full
        fleet) up to the wrap interval k; the start is ``wrap - cumulative import through
        k``, so the register reads ``wrap - import[k]`` before k and 0 at the end of k.
        """
        rolls = {f.meter: f for f in faults if f.kind == "rollover"}
        if not rolls:
            return faults
        all_rows = np.array(sorted(rolls), dtype=np.int64)
        all_ks = np.array([rolls[int(r)].start for r in all_rows], dtype=np.int64)
        through = np.zeros(all_rows.size, dtype=np.int64)
        at_k = np.zeros(all_rows.size, dtype=np.int64)
        group = 256  # meters per pass; each pass runs only as far as its latest wrap
        for g0 in range(0, all_rows.size, group):
            rows, ks = all_rows[g0 : g0 + group], all_ks[g0 : g0 + group]
            cum = np.zeros(rows.size, dtype=np.int64)
            span = max(1, _BLOCK_CELLS // (rows.size * self._sub))
            for t0 in range(0, int(ks.max()) + 1, span):
                n = min(span, self._n - t0)
                _, _, measured = self._power(rows, t0, n)
                wh = self._to_wh(measured)
                for i in np.flatnonzero((ks >= t0) & (ks < t0 + n)).tolist():
                    j = int(ks[i]) - t0
                    through[g0 + i] = cum[i] + int(wh[i, : j + 1].sum())
                    at_k[g0 + i] = int(wh[i, j])
                cum += wh.sum(axis=1)
        rows = all_rows
        dropped: set[int] = set()
        for i, r in enumerate(rows.tolist()):
            if at_k[i] <= 0:  # only possible in tiny windows without a night interval
                dropped.add(r)
                continue
            self._reg_start_wh[r] = self._wrap_wh[r] - through[i]
        return [f for f in faults if not (f.kind == "rollover" and f.meter in dropped)]

    # ------------------------------------------------------------------ public API

    @property
    def expected_readings(self) -> int:
        """Readings a fault-free fleet produces: meters x intervals in the window."""
        return self.spec.meters * self.spec.days * _DAY_S // self.spec.interval_s

    def labels(self) -> pl.DataFrame:
        """Ground truth of every injected fault (see the module docstring for semantics)."""
        return self._labels.clone()

    def chunks(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """Yield (readings, grid) for each ``chunk_days`` block, in time order.

        Readings are meter-major within a chunk; duplicated rows follow at the chunk end.
        """
        register = self._reg_start_wh.copy()
        for d0 in range(0, self.spec.days, self.spec.chunk_days):
            nd = min(self.spec.chunk_days, self.spec.days - d0)
            yield self._chunk(d0 * self._n_day, nd * self._n_day, register)

    def readings(self) -> Iterator[pl.DataFrame]:
        """Just the readings of :meth:`chunks`."""
        for readings, _ in self.chunks():
            yield readings

    def weather(self) -> pl.DataFrame:
        """Hourly observations per station over the window, from the same climate as the load."""
        frames = []
        s_n = self.spec.n_stations
        st_idx = np.arange(s_n, dtype=np.uint64)
        for d0 in range(0, self.spec.days, 31):
            nd = min(31, self.spec.days - d0)
            hours = np.arange(d0 * 24, (d0 + nd) * 24, dtype=np.int64)
            t_s = (self._epoch_s + hours * 3600).astype(np.float64)
            f = self._climate.fields(t_s, np.arange(s_n))
            bits = _hash(self._salt[_S_WEATHER], st_idx, hours.astype(np.uint64))
            noise = _normalish(bits)
            u = _uniform(bits)
            cloud = f["cloud"]
            temp = f["temperature_c"]
            humidity = np.clip(
                58.0 + 30.0 * cloud - 2.2 * (temp - self._climate.mean_c[:, None]) + 4.0 * noise,
                15.0,
                100.0,
            )
            wind = 2.0 + 5.0 / (1.0 + np.exp(-f["signal"])) + 1.2 * u
            wind_dir = (235.0 + 70.0 * np.tanh(f["signal"]) + 25.0 * noise) % 360.0
            pressure = 1013.0 - 6.0 * f["signal"] + 1.0 * noise
            precip = np.where(cloud > 0.85, (cloud - 0.85) * 10.0 * u, 0.0)
            solar = f["ghi_clear"] * (1.0 - 0.75 * cloud**3)
            rows = s_n * hours.size
            ts_us = np.tile((self._epoch_s + hours * 3600) * 1_000_000, s_n)
            frames.append(
                pl.DataFrame(
                    {
                        "station_id": self.stations["station_id"].gather(
                            np.repeat(np.arange(s_n), hours.size)
                        ),
                        "ts": pl.Series(ts_us).cast(TS),
                        "temperature_c": np.round(temp, 1).ravel(),
                        "humidity_pct": np.round(humidity, 0).ravel(),
                        "wind_speed_ms": np.round(wind, 1).ravel(),
                        "wind_dir_deg": np.round(wind_dir, 0).ravel() % 360.0,
                        "pressure_hpa": np.round(pressure, 1).ravel(),
                        "precipitation_mm": np.round(precip, 1).ravel(),
                        "solar_wm2": np.round(solar, 0).ravel(),
                        "cloud_cover_pct": np.round(100.0 * cloud, 0).ravel(),
                    },
                    schema=WEATHER.schema,
                    height=rows,
                )
            )
        return pl.concat(frames)

    # ------------------------------------------------------------------ generation

    def _utc_offset(self, hour: int) -> int:
        """Local offset in seconds at a UTC hour (cached: DST changes on the hour)."""
        off = self._offsets.get(hour)
        if off is None:
            moment = dt.datetime.fromtimestamp(hour * 3600, dt.UTC).astimezone(_TZ)
            delta = moment.utcoffset()
            off = int(delta.total_seconds()) if delta is not None else 0
            self._offsets[hour] = off
        return off

    def _time_context(self, t_s: F64Array) -> _TimeContext:
        sec = np.floor(t_s).astype(np.int64)
        hours, inv = np.unique(sec // 3600, return_inverse=True)
        offs = np.array([self._utc_offset(h) for h in hours.tolist()], dtype=np.int64)[inv]
        local = sec + offs
        lm = (local % _DAY_S) // 60
        lday = local // _DAY_S
        weekday = (lday + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        daytype = np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0)).astype(np.int64)
        dates = lday.astype("datetime64[D]")
        month_start = dates.astype("datetime64[M]")
        md = (
            ((month_start.astype(np.int64) % 12) + 1) * 100
            + (dates - month_start).astype(np.int64)
            + 1
        )
        daytype[np.isin(md, (101, 1225, 1226))] = 2  # fixed-date bank holidays behave as Sunday
        season = 1.0 + 0.08 * np.cos(2.0 * np.pi * (t_s / _DAY_S - 15.0) / 365.2422)
        return _TimeContext(lm=lm, daytype=daytype, season=season)

    def _power(self, rows: I64Array, t0: int, n: int) -> tuple[F64Array, F64Array, F64Array]:
        """True import kW, export kW and measured (after theft) import kW for rows x [t0, t0+n).

        Each value is the mean over the interval; long intervals are simulated in
        sub-steps so that, e.g., a daily reading still integrates a day's shape.
        """
        sub = self._sub
        step = self.spec.interval_s / sub
        fine = np.arange(t0 * sub, (t0 + n) * sub, dtype=np.int64)
        t_s = ((fine + 0.5) * step + self._epoch_s).astype(np.float64)
        ctx = self._time_context(t_s)
        # only the stations these meters use (a block of a large fleet touches a few)
        st_used, st_local = np.unique(self._station[rows], return_inverse=True)
        wx = self._climate.fields(t_s, st_used)
        s_n = st_used.size

        # activity shape: one flat look-up with per-meter archetype and time shift folded in
        flat = self._arch_off[rows][:, None] + (ctx.daytype * _W + ctx.lm)[None, :]
        load = _SHAPES.take(flat)
        load *= self._scale[rows][:, None]
        load *= ctx.season[None, :]
        fine_ix = fine.astype(np.uint64)
        noise = _normalish(_hash(self._salt[_S_LOAD], rows.astype(np.uint64), fine_ix))
        noise *= self._sigma[rows][:, None]
        noise += 1.0
        np.maximum(noise, 0.15, out=noise)
        load *= noise
        load += self._base[rows][:, None]

        # weather-driven terms, per (class, station) first, then gathered per meter
        temp = wx["temperature_c"]
        sched = ctx.daytype * 1440 + ctx.lm
        hdd = np.clip(15.5 - temp, 0.0, None)
        cdd = np.clip(temp - 22.0, 0.0, None)
        dark = np.clip((0.1 - wx["sin_el"]) / 0.15, 0.0, 1.0)
        g = self._biz[rows].astype(np.int64) * s_n + st_local
        for coef, weather, kind in (
            (self._heat, hdd, "heat"),
            (self._cool, cdd, "cool"),
            (self._light, dark, "light"),
        ):
            c = coef[rows]
            if not c.any():
                continue
            table = _SCHEDULES[kind].reshape(2, -1)[:, sched]  # (2, T)
            per_group = (weather[None, :, :] * table[:, None, :]).reshape(2 * s_n, -1)
            term = per_group.take(g, axis=0)
            term *= c[:, None]
            load += term
        np.clip(load, _MIN_LOAD_KW, self._cap_kw[rows][:, None], out=load)

        # rooftop PV: clear sky x cloud x passing-cloud flicker (per station) x orientation
        export = np.zeros_like(load)
        pv = np.flatnonzero(self._kwp[rows] > 0)
        if pv.size:
            st_ix = st_used.astype(np.uint64)
            flicker = 1.0 - 0.5 * wx["cloud"] * _uniform(
                _hash(self._salt[_S_FLICKER], st_ix, fine_ix)
            )
            irr = wx["ghi_clear"] * (1.0 - 0.75 * wx["cloud"] ** 3) * flicker / 1000.0
            pv_rows = rows[pv]
            jitter = _uniform(_hash(self._salt[_S_PV], pv_rows.astype(np.uint64), fine_ix))
            gen = irr.take(st_local[pv], axis=0)
            gen *= (0.85 * self._kwp[pv_rows] * self._orient[pv_rows])[:, None]
            jitter *= 0.08
            jitter += 0.96
            gen *= jitter
            net = load[pv] - gen
            load[pv] = np.maximum(net, 0.0)
            export[pv] = np.maximum(-net, 0.0)

        if sub > 1:
            load = load.reshape(rows.size, n, sub).mean(axis=2)
            export = export.reshape(rows.size, n, sub).mean(axis=2)
        measured = load
        thefts = np.flatnonzero(self._theft_start[rows] < t0 + n)
        if thefts.size:
            measured = load.copy()
            for i in thefts.tolist():
                a = max(int(self._theft_start[rows[i]]) - t0, 0)
                measured[i, a:] *= self._theft_scale[rows[i]]
        return load, export, measured

    def _to_wh(self, kw: F64Array) -> I64Array:
        """Average kW over an interval to whole Wh (meters count energy in Wh steps)."""
        wh: I64Array = np.rint(kw * (self.spec.interval_s / 3.6)).astype(np.int64)
        return wh

    def _frequency(self, t_s: F64Array, t_idx: I64Array) -> F64Array:
        """System frequency: one synchronous grid, slow swings plus jitter, ~50 Hz."""
        swing = np.zeros(t_s.shape)
        for p, ph in zip(self._freq_p.tolist(), self._freq_ph.tolist(), strict=True):
            swing += np.sin(2.0 * np.pi * t_s / p + ph)
        jitter = _normalish(
            _hash(self._salt[_S_FREQ], np.zeros(1, dtype=np.uint64), t_idx.astype(np.uint64))
        )[0]
        f: F64Array = np.clip(50.0 + 0.03 * swing + 0.012 * jitter, 49.8, 50.2)
        return f

    def _chunk(self, t0: int, n: int, register: I64Array) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Generate one chunk and advance the per-meter register state in place.

        Meters are processed in blocks of about ``_BLOCK_CELLS`` values: numpy temporaries
        of a few MB are reused by the allocator, whereas fleet-sized ones are fresh
        page-faulted memory every time, which made a 100k-meter chunk 5x slower per reading.
        Pass 1 sums every feeder's real load (the meters' voltages depend on it); pass 2
        turns each block into readings.
        """
        spec = self.spec
        m = spec.meters
        t_idx = np.arange(t0, t0 + n, dtype=np.int64)
        t_s = (self._epoch_s + t_idx * spec.interval_s).astype(np.float64)
        per_block = max(1, _BLOCK_CELLS // (n * self._sub))
        feeder_kw = np.zeros((spec.n_feeders, n))
        feeder_gen_kw = np.zeros((spec.n_feeders, n))
        blocks: list[tuple[I64Array, F64Array, F64Array]] = []
        for r0 in range(0, m, per_block):
            rows = np.arange(r0, min(r0 + per_block, m), dtype=np.int64)
            true_kw, export_kw, measured_kw = self._power(rows, t0, n)
            fdr = self._feeder[rows]  # sorted: feeders are contiguous runs of meters
            starts = np.flatnonzero(np.diff(fdr, prepend=-1))
            feeder_kw[fdr[starts]] += np.add.reduceat(true_kw, starts, axis=0)
            feeder_gen_kw[fdr[starts]] += np.add.reduceat(export_kw, starts, axis=0)
            blocks.append((rows, export_kw, measured_kw))
        freq = self._frequency(t_s, t_idx)
        grid, fdr_v = self._grid(t_idx, feeder_kw, feeder_gen_kw, freq)
        main: list[pl.DataFrame] = []
        copies: list[pl.DataFrame] = []
        for rows, export_kw, measured_kw in blocks:
            frame, dups = self._readings(rows, t_idx, export_kw, measured_kw, register, fdr_v, freq)
            main.append(frame)
            if dups is not None:
                copies.append(dups)
        frames = main + copies  # re-sent copies arrive after the chunk's own rows
        readings = frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)
        return readings, grid

    def _readings(
        self,
        rows: I64Array,
        t_idx: I64Array,
        export_kw: F64Array,
        measured_kw: F64Array,
        register: I64Array,
        fdr_v: F64Array,
        freq: F64Array,
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Readings of a contiguous block of meters, faults applied; also the duplicate rows."""
        spec = self.spec
        r0, mb, n, t0 = int(rows[0]), rows.size, t_idx.size, int(t_idx[0])
        imp_wh = self._to_wh(measured_kw)
        cum = np.cumsum(imp_wh, axis=1)
        state = register[r0 : r0 + mb]  # a view: the state advances in place
        wrap = self._wrap_wh[rows]
        cum += state[:, None]
        state[:] = cum[:, -1] % wrap
        cum %= wrap[:, None]
        register_kwh = cum / 1000.0  # division, unlike * 0.001, gives the nearest double
        import_kwh = imp_wh / 1000.0
        active = import_kwh * (3600.0 / spec.interval_s)
        export_kwh = np.full((mb, n), np.nan)
        pv = np.flatnonzero(self._kwp[rows] > 0)
        export_kwh[pv] = self._to_wh(export_kw[pv]) / 1000.0

        # power quality: voltage sags with the feeder's and the meter's own load
        u_volt, u_pf, u_freq = _uniforms3(
            _hash(self._salt[_S_AUX], rows.astype(np.uint64), t_idx.astype(np.uint64))
        )
        volt = fdr_v.take(self._feeder[rows], axis=0)
        volt *= 231.0
        volt += self._vpos[rows][:, None]
        volt -= self._drop[rows][:, None] * active
        volt += 0.6 * export_kw
        u_volt -= 0.5
        u_volt *= 2.8  # uniform noise with a standard deviation of about 0.8 V
        volt += u_volt
        volt = np.round(volt, 1)
        pf = np.clip(self._pf0[rows][:, None] + 0.02 * (u_pf - 0.5), 0.9, 1.0)
        flow = active + export_kw
        current = np.round(flow * 1000.0 / (volt * pf * self._phases[rows][:, None]), 2)
        reactive = np.round(active * np.sqrt(1.0 - pf * pf) / pf, 3)
        pf = np.round(pf, 3)
        mfreq = np.round(freq[None, :] + 0.004 * (u_freq - 0.5), 3)
        mfreq[~self._pq[rows]] = np.nan

        ts = np.broadcast_to((t_idx * spec.interval_s + self._epoch_s) * 1_000_000, (mb, n)).copy()
        keep: BoolArray | None = None
        dups: list[I64Array] = []
        hit = np.flatnonzero(
            (self._f_start < t0 + n)
            & (self._f_stop > t0)
            & (self._f_meter >= r0)
            & (self._f_meter < r0 + mb)
        )
        for fi in hit.tolist():
            f = self._faults[fi]
            r, a, b = f.meter - r0, max(f.start, t0) - t0, min(f.stop, t0 + n) - t0
            typical = self._typical[f.meter]
            if f.kind == "gap":
                if keep is None:
                    keep = np.ones((mb, n), dtype=np.bool_)
                keep[r, a:b] = False
            elif f.kind == "spike":
                import_kwh[r, a:b] = np.round(f.value * np.maximum(import_kwh[r, a:b], typical), 3)
            elif f.kind == "flat_line":
                import_kwh[r, a:b] = f.value
                active[r, a:b] = f.value * 3600.0 / spec.interval_s
                if self._kwp[f.meter] > 0:
                    export_kwh[r, a:b] = 0.0
            elif f.kind == "negative":
                import_kwh[r, a:b] = -np.maximum(import_kwh[r, a:b], typical)
            elif f.kind == "clock_shift":
                ts[r, a:b] += int(f.value) * 1_000_000
            elif f.kind == "duplicate":
                dups.append(r * n + np.arange(a, b, dtype=np.int64))
        active = np.round(active, 3)

        columns: dict[str, npt.NDArray[np.floating[Any]]] = {
            "import_kwh": import_kwh,
            "export_kwh": export_kwh,
            "register_kwh": register_kwh,
            "voltage_v": volt,
            "current_a": current,
            "power_factor": pf,
            "active_power_kw": active,
            "reactive_power_kvar": reactive,
            "frequency_hz": mfreq,
        }
        meter_row = np.repeat(rows, n)
        ts_flat = ts.ravel()

        def frame(take: I64Array | None) -> pl.DataFrame:
            ids, times = (meter_row, ts_flat) if take is None else (meter_row[take], ts_flat[take])
            data: dict[str, pl.Series] = {
                "meter_id": self._meter_ids.gather(ids),
                "ts": pl.Series("ts", times).cast(TS),
                "interval_s": pl.Series(np.full(ids.size, spec.interval_s, np.int32)),
            }
            for name, arr in columns.items():
                values = arr.ravel() if take is None else arr.ravel()[take]
                nullable = name in ("export_kwh", "frequency_hz")
                data[name] = pl.Series(name, values, nan_to_null=nullable)
            return pl.DataFrame(data, schema=READING.schema)

        kept = None if keep is None else np.flatnonzero(keep.ravel())
        return frame(kept), (frame(np.concatenate(dups)) if dups else None)

    def _grid(
        self, t_idx: I64Array, feeder_kw: F64Array, feeder_gen_kw: F64Array, freq: F64Array
    ) -> tuple[pl.DataFrame, F64Array]:
        """One row per node per interval: feeders carry their meters' real import plus losses.

        ``feeder_kw`` is the sum of the meters' true (pre-fault, pre-theft) import. Also
        returns each feeder's per-unit voltage at its customers (1.01 when light, about
        0.98 near capacity), which the meters' voltage readings start from.
        """
        n = t_idx.size
        ratio = np.minimum(feeder_kw / self._fdr_cap_kw[:, None], 1.0)
        loss = 1.0 + self._loss0[:, None] + self._loss1[:, None] * ratio
        feeder_load = feeder_kw * loss / 1000.0
        feeder_gen = feeder_gen_kw / 1000.0
        sub_load = np.add.reduceat(feeder_load, self._sub_starts, axis=0)
        sub_gen = np.add.reduceat(feeder_gen, self._sub_starts, axis=0)
        reg_load = np.add.reduceat(sub_load, self._reg_starts, axis=0)
        reg_gen = np.add.reduceat(sub_gen, self._reg_starts, axis=0)
        load = np.concatenate([reg_load, sub_load, feeder_load])
        gen = np.concatenate([reg_gen, sub_gen, feeder_gen])
        nodes = load.shape[0]
        node_ix = np.arange(nodes, dtype=np.uint64)
        bits = _hash(self._salt[_S_GRID], node_ix, t_idx.astype(np.uint64))
        noise = _normalish(bits)
        util = np.minimum(load / self._node_cap[:, None], 1.5)
        volt = self._node_kv[:, None] * (1.02 - 0.04 * util + 0.002 * noise)
        price = np.full((nodes, n), np.nan)
        rel = reg_load / self._reg_typical[:, None]
        price[: self._n_reg] = 25.0 + 45.0 * rel**1.5 + 5.0 * noise[: self._n_reg]
        ts_us = (t_idx * self.spec.interval_s + self._epoch_s) * 1_000_000
        fdr_util = feeder_load * 1000.0 / self._fdr_cap_kw[:, None]
        fdr_v: F64Array = 1.01 - 0.03 * np.minimum(fdr_util, 1.5)
        frame = pl.DataFrame(
            {
                "node_id": self._node_ids.gather(np.repeat(np.arange(nodes), n)),
                "ts": pl.Series("ts", np.tile(ts_us, nodes)).cast(TS),
                "interval_s": pl.Series(np.full(nodes * n, self.spec.interval_s, np.int32)),
                "load_mw": pl.Series(np.round(load, 6).ravel()),
                "generation_mw": pl.Series(np.round(gen, 6).ravel()),
                "frequency_hz": pl.Series(np.round(np.tile(freq, nodes), 3)),
                "voltage_kv": pl.Series(np.round(volt, 3).ravel()),
                "price_per_mwh": pl.Series(np.round(price, 2).ravel(), nan_to_null=True),
            },
            schema=GRID.schema,
        )
        return frame, fdr_v


# --------------------------------------------------------------------------- files


def write_fleet(
    fleet: Fleet,
    out: Path,
    fmt: Literal["parquet", "csv"] = "parquet",
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write the fleet as files, streaming the time series one part per chunk.

    Layout: ``meters``, ``nodes``, ``stations``, ``weather``, ``labels`` as single files and
    ``readings/part-NNNNN`` / ``grid/part-NNNNN`` parts. Old parts of the same format in
    those two folders are removed first, so a smaller rerun never leaves stale data behind.
    CSV times are ISO 8601 with ``Z``. ``progress`` gets the number of readings each chunk
    wrote (an increment). Returns rows written per dataset.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}; expected parquet or csv")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def write(frame: pl.DataFrame, path: Path) -> None:
        if fmt == "parquet":
            frame.write_parquet(path)
        else:
            frame.write_csv(path, datetime_format=_ISO_Z, date_format="%Y-%m-%d")

    counts: dict[str, int] = {}
    for name, frame in (
        ("meters", fleet.meters),
        ("nodes", fleet.nodes),
        ("stations", fleet.stations),
        ("weather", fleet.weather()),
        ("labels", fleet.labels()),
    ):
        write(frame, out / f"{name}.{fmt}")
        counts[name] = frame.height
    for part in ("readings", "grid"):
        folder = out / part
        folder.mkdir(exist_ok=True)
        for old in folder.glob(f"part-*.{fmt}"):
            old.unlink()
        counts[part] = 0
    for i, (readings, grid) in enumerate(fleet.chunks()):
        write(readings, out / "readings" / f"part-{i:05d}.{fmt}")
        write(grid, out / "grid" / f"part-{i:05d}.{fmt}")
        counts["readings"] += readings.height
        counts["grid"] += grid.height
        if progress is not None:
            progress(readings.height)
    return counts
