"""A warning when a load's daily profile looks an hour off around the DST changes.

People live by the clock: the morning ramp of a household, or of a region's demand,
happens at about the same clock time in the weeks before and after a daylight-saving
change. So a load whose naive times were read in a zone with DST (``--tz
Europe/London``) should show its morning at the same clock time, in that zone, on
both sides of each change. When the side in daylight time rises an hour earlier than
the side in standard time, the file was not kept in that zone's clock: it is in
standard time all year (or UTC), and the load stored every summer reading an hour off.
Then the load warns (it never refuses: the profile is evidence, not proof), naming the
zone whose changes show the shift and the fixed offset the file looks like, e.g.
``pass --tz +00:00``.

How: per change of the zone, the mean profile (over the load's meters and days, in half
hours of the zone's clock) of the days :data:`FROM_DAY`..:data:`TO_DAY` before and after
it; the morning (:data:`MORNING`) of the daylight side is cross-correlated with the
standard side's shifted by up to 90 minutes either way, and a best fit an hour early,
better than none by :data:`MARGIN`, is a shift. A majority of the changes the data
spans must shift the same way for the warning. The week
either side of a change is left out: it is often a school holiday (Easter lies close to
the spring change, the autumn half-term to the October one), when people rise later,
which showed up as an hour's shift in real London data.

The check is cheap: the loader hands it the decoded times and values of the rows near
a change only (:meth:`ProfileCheck.observe`), kept as sums per (change, day, half
hour). It runs only for a zone with DST, and judges only changes with enough days on
both sides.

What it cannot see: a load in a zone without DST (UTC, a fixed offset) has no changes
to compare across, so a file in local clock time loaded as UTC is not warned about (the
load names no zone to compare with); and data that spans no change (a month of
January) says nothing either way.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["ProfileCheck", "zone_changes"]

#: the days before and after a change whose profiles are compared
FROM_DAY: Final = 8
TO_DAY: Final = 21
#: a side needs a ramp on at least this many days
MIN_DAYS: Final = 5
#: the clock hours whose profile is compared: the morning, when people rise by the
#: clock (the evening follows the sunset, which moves by itself around a change)
MORNING: Final = (4, 12)
#: the best shift must correlate better than none by this much to count
MARGIN: Final = 0.03
_US_PER_DAY: Final = 86_400_000_000
_DAYS: Final = TO_DAY - FROM_DAY + 1


@functools.cache
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


@functools.cache
def zone_changes(name: str, year: int) -> tuple[tuple[int, bool], ...]:
    """The DST changes of zone ``name`` in ``year``: (the instant in UTC microseconds,
    whether daylight time starts there), found hour by hour from the zone's offsets."""
    zone = _zone(name)
    if zone is None:
        return ()
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    hours = [start + dt.timedelta(hours=h) for h in range(0, 366 * 24 + 1)]
    dsts = [bool(t.astimezone(zone).dst()) for t in hours]
    changes = []
    for before, after, t in zip(dsts, dsts[1:], hours[1:], strict=False):
        if before != after and t.year == year:
            changes.append((int(t.timestamp() * 1_000_000), after))
    return tuple(changes)


def standard_offset(name: str, at_us: int) -> str:
    """The zone's standard offset (its UTC offset without DST) near ``at_us``, as ``+HH:MM``."""
    zone = _zone(name)
    if zone is None:
        return "+00:00"
    local = dt.datetime.fromtimestamp(at_us / 1e6, tz=dt.UTC).astimezone(zone)
    offset = (local.utcoffset() or dt.timedelta()) - (local.dst() or dt.timedelta())
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass
class ProfileCheck:
    """Sums per (change, side, day, half hour of the zone's clock), for the verdict."""

    zone: str
    #: change instant (UTC us) -> (whether DST starts there, sums, counts), each of
    #: shape (2 sides, days, 48 half hours)
    sums: dict[int, tuple[bool, npt.NDArray[np.float64], npt.NDArray[np.int64]]] = field(
        default_factory=dict
    )

    @staticmethod
    def applies(zone: str) -> bool:
        """Whether ``zone`` is an IANA zone with DST changes (in any recent year)."""
        return _zone(zone) is not None and any(
            zone_changes(zone, year) for year in (2000, 2013, 2024)
        )

    def near_dates(self, years: range) -> list[dt.date]:
        """The UTC dates of the zone's changes in ``years`` (the loader keeps the rows
        within :data:`TO_DAY` + 1 days of one before decoding them)."""
        return [
            dt.datetime.fromtimestamp(t / 1e6, tz=dt.UTC).date()
            for year in years
            for t, _ in zone_changes(self.zone, year)
        ]

    def observe(self, ts: pl.Series, values: pl.Series) -> None:
        """Add decoded times (UTC) and values (energy, load) to the sums of the changes
        they lie near."""
        frame = pl.DataFrame({"t": ts, "v": values.cast(pl.Float64)}).drop_nulls()
        if not frame.height:
            return
        years = frame.get_column("t").dt.year()
        low, high = int(years.min()), int(years.max())  # type: ignore[arg-type]
        changes = sorted(
            c for year in range(low - 1, high + 2) for c in zone_changes(self.zone, year)
        )
        if not changes:
            return
        zone = _zone(self.zone)
        instants = np.array([c[0] for c in changes], dtype=np.int64)
        change_days = np.array(
            [
                (
                    dt.datetime.fromtimestamp(t / 1e6, tz=dt.UTC).astimezone(zone).date() - _EPOCH
                ).days
                for t in instants
            ],
            dtype=np.int64,
        )
        us = frame.get_column("t").dt.epoch("us").to_numpy()
        right = np.clip(np.searchsorted(instants, us), 0, len(instants) - 1)
        left = np.clip(right - 1, 0, len(instants) - 1)
        nearest = np.where(np.abs(us - instants[left]) <= np.abs(us - instants[right]), left, right)
        local = frame.get_column("t").dt.convert_time_zone(self.zone)
        slot = (
            local.dt.hour().cast(pl.Int64) * 2 + local.dt.minute().cast(pl.Int64) // 30
        ).to_numpy()
        day = local.dt.date().cast(pl.Int64).to_numpy() - change_days[nearest]
        near = (np.abs(day) >= FROM_DAY) & (np.abs(day) <= TO_DAY)
        if not near.any():
            return
        side = (day > 0).astype(np.int64)  # 0: before, 1: after
        index_day = np.abs(day) - FROM_DAY
        values_np = frame.get_column("v").to_numpy()
        for index in np.unique(nearest[near]):
            rows = near & (nearest == index)
            instant, starts = changes[int(index)]
            entry = self.sums.get(instant)
            if entry is None:
                entry = (starts, np.zeros((2, _DAYS, 48)), np.zeros((2, _DAYS, 48), dtype=np.int64))
                self.sums[instant] = entry
            at = (side[rows], index_day[rows], slot[rows])
            np.add.at(entry[1], at, values_np[rows])
            np.add.at(entry[2], at, 1)

    def shifts(self) -> list[tuple[int, float]]:
        """Per change with enough days on both sides: (instant, the shift in hours that
        best lines the daylight side's mean morning profile up with the standard
        side's: -1 when the daylight side runs an hour early, 0 when none does)."""
        out = []
        for instant, (starts, sums, counts) in sorted(self.sums.items()):
            days = [int((c.sum(axis=1) > 0).sum()) for c in counts]
            if min(days) < MIN_DAYS:
                continue
            total, seen = sums.sum(axis=1), counts.sum(axis=1)  # per side, 48 half hours
            per_hour = 2
            if not seen[:, 1::2].any():  # whole hours only
                total, seen, per_hour = total[:, ::2], seen[:, ::2], 1
            window = slice(MORNING[0] * per_hour, MORNING[1] * per_hour)
            if (seen[:, window] == 0).any():
                continue
            profile = total / np.maximum(seen, 1)
            standard, daylight = (profile[0], profile[1]) if starts else (profile[1], profile[0])
            reach = per_hour + 1 if per_hour > 1 else 1  # up to 90 minutes, or an hour
            steps = range(-reach, reach + 1)
            scores = {k: _corr(np.roll(standard, k)[window], daylight[window]) for k in steps}
            best = max(scores, key=lambda k: (scores[k], k == 0))
            hours = 0.0
            if scores[best] - scores[0] >= MARGIN:
                hours = float(np.sign(best)) if abs(best) >= per_hour else 0.0
            out.append((instant, hours))
        return out

    def warning(self) -> str | None:
        """The warning to give, or None when the mornings hold across the changes (or
        no change has enough days on both sides)."""
        found = self.shifts()
        if not found:
            return None
        earlier = [t for t, h in found if h < 0]
        if len(earlier) * 2 <= len(found):
            return None
        offset = standard_offset(self.zone, earlier[0])
        changes = ", ".join(
            dt.datetime.fromtimestamp(t / 1e6, tz=dt.UTC).date().isoformat() for t in earlier
        )
        return (
            f"daily profile shifts by 1 h at the DST changes of {self.zone} ({changes}); "
            f"the file looks like fixed UTC{offset} (standard time all year): pass --tz {offset}"
        )


_EPOCH: Final = dt.date(1970, 1, 1)


def _corr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0
