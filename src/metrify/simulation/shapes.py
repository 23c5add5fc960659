"""Daily load shapes: how active each kind of household and business is, minute by minute.

Each archetype has a weekday, a Saturday and a Sunday-or-holiday curve of relative
activity by local minute, built from smooth bumps and plateaus. All of them live in one
flat table (:data:`SHAPES`) padded around each day, so a meter's shape at any instant is
a single look-up with its archetype and its own time shift folded into the index.
:data:`SCHEDULES` says when heating, cooling and lighting run, per class and day type.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from metrify.simulation.arrays import F64Array

__all__ = [
    "BUSINESS",
    "BUSINESS_P",
    "HOUSEHOLD",
    "HOUSEHOLD_P",
    "N_HOUSEHOLD_ARCH",
    "PAD",
    "SCHEDULES",
    "SHAPES",
    "W",
]

PAD: Final = 60  # minutes of padding around each day table so a per-meter shift needs no modulo
W: Final = 1440 + 2 * PAD  #: width of one padded day in the table

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
HOUSEHOLD: Final[dict[str, tuple[F64Array, F64Array, F64Array]]] = {
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
HOUSEHOLD["economy7"] = (
    HOUSEHOLD["commuter"][0] + _block(0.5, 7.5, 1.6, 0.1),
    HOUSEHOLD["commuter"][1] + _block(0.5, 7.5, 1.6, 0.1),
    HOUSEHOLD["commuter"][2] + _block(0.5, 7.5, 1.6, 0.1),
)
BUSINESS: Final[dict[str, tuple[F64Array, F64Array, F64Array]]] = {
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
HOUSEHOLD_P: Final = (0.35, 0.2, 0.25, 0.12, 0.08)
BUSINESS_P: Final = (0.45, 0.35, 0.2)
N_HOUSEHOLD_ARCH: Final = len(HOUSEHOLD)


def _padded(day: F64Array) -> F64Array:
    return np.concatenate([day[-PAD:], day, day[:PAD]])


def _shape_table() -> F64Array:
    """All archetypes as one flat table: [archetype][daytype][padded minute].

    Normalised to a weekly mean of 1, so a meter's ``scale`` is its mean active load and
    weekday/weekend differences survive.
    """
    rows: list[F64Array] = []
    for days in (*HOUSEHOLD.values(), *BUSINESS.values()):
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


SHAPES: Final = _shape_table()
SCHEDULES: Final = _schedules()
