"""What fleet to simulate (:class:`FleetSpec`), and the time axis it implies (:class:`Window`).

A spec is validated on construction so a bad one is a clear ValueError before anything is
drawn; the window turns it into the interval indices every generator works in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from metrify.contracts.records import MAX_INTERVAL_S, MIN_INTERVAL_S, interval_is_valid

__all__ = ["DAY_S", "TIMEZONE", "FleetSpec", "Window"]

#: every simulated meter and station lies in Great Britain and keeps its local clock.
TIMEZONE: Final = "Europe/London"
DAY_S: Final = 86_400
_FINE_STEP_S: Final = 900  # long intervals are simulated in sub-steps of at most this


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


@dataclass(frozen=True)
class Window:
    """The simulated time axis: interval ``i`` starts at ``epoch_s + i * interval_s``.

    Long intervals are simulated in ``sub`` equal sub-steps of at most 15 minutes, so a
    daily reading still integrates a day's shape.
    """

    interval_s: int
    epoch_s: int  #: UTC midnight of the spec's start day, in Unix seconds
    n_day: int  #: intervals per day
    n: int  #: intervals in the whole window
    sub: int  #: sub-steps per interval

    @classmethod
    def of(cls, spec: FleetSpec) -> Window:
        """The window of a spec."""
        n_day = DAY_S // spec.interval_s
        sub = max(1, -(-spec.interval_s // _FINE_STEP_S))
        while spec.interval_s % sub:
            sub += 1
        start = dt.datetime(spec.start.year, spec.start.month, spec.start.day, tzinfo=dt.UTC)
        return cls(
            interval_s=spec.interval_s,
            epoch_s=int(start.timestamp()),
            n_day=n_day,
            n=spec.days * n_day,
            sub=sub,
        )
