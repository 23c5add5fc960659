"""The runs of a week's level judgement: drops and shifts that hold, over NumPy arrays.

:func:`metrify.anomaly.baseline._levels` smooths each subject's observed and expected
power (Polars' time-weighted EWMA); :func:`runs` then reads those rows as a state
machine: when a subject is below or above its expected level, for how long, with
hysteresis, quiet hours held and dips bridged. Every step is a pass over the rows in
subject, time order. As Polars queries they were two dozen a week, each costing a
fixed ~0.2 ms whatever its size (53 weekly passes in a year's load); over arrays of a
week's 32K rows the whole machine takes 2.6-2.8 ms, and the year's passes went from
2.1-2.3 s to 2.0-2.1 s.

The arrays read the columns as Polars did, nulls and all: a null ratio (no observed
level) leaves the state where it was, and comparisons order NaN above every number
(Polars' total order), so both give the same flags on any rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from metrify.settings.anomaly import AnomalyConfig

__all__ = ["NONE", "QUIET_HOLD", "flags", "micros", "runs"]

#: how long quiet, unjudgeable hours may carry a drop or shift on (a night, not a season)
QUIET_HOLD = dt.timedelta(hours=12)

#: no instant (µs): a null in the arrays of times
NONE: Final = np.iinfo(np.int64).min

_Bools = npt.NDArray[np.bool_]
_Ints = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]


def micros(column: pl.Series) -> _Ints:
    """A Datetime column's µs since the epoch (:data:`NONE` for null): NumPy's view of
    the column where it has no null (no copy), else a copy with NaT, which is NONE."""
    if not isinstance(column.dtype, pl.Datetime) or column.dtype.time_unit != "us":
        column = column.dt.cast_time_unit("us")
    return column.to_numpy().view(np.int64)


def flags(column: pl.Series) -> _Bools:
    """A boolean column as NumPy's (null: False)."""
    return (column.fill_null(False) if column.has_nulls() else column).to_numpy()


def runs(both: pl.DataFrame, cfg: AnomalyConfig) -> pl.DataFrame:
    """``both`` with each row's level ``ratio``, whether it is in a drop or shift run
    (``c_drop``, ``c_shift``), whether that run has lasted ``level_min_hours``
    (``drop``, ``shift``, the whole run once it has), when the run began
    (``drop_start``, ``shift_start``), and the state a row leaves (``drop_since``,
    ``shift_since``, ``shift_until``: what a subject's last row carries to the next
    batch).

    ``both``: the level rows in subject, time order, each subject's seed (the state the
    last batch left: ``seed``, its ``ts``, ``drop_since``, ``shift_since``,
    ``shift_until``) before its rows; ``sid``, ``interval_s``, the smoothed ``eo`` and
    ``ee``, and the subject's ``mean_level`` (null when unknown). No ``ts`` is null.
    """
    ts_type = both.schema["ts"]
    rows = _Rows(both.get_column("sid").to_numpy())
    seed = flags(both.get_column("seed"))
    ts = micros(both.get_column("ts"))
    end = ts + both.get_column("interval_s").to_numpy().astype(np.int64) * 1_000_000
    eo, eo_known = _floats(both.get_column("eo"))
    ee, ee_known = _floats(both.get_column("ee"))
    mean, mean_known = _floats(both.get_column("mean_level"))
    known = eo_known & ee_known  # the ratio's (and the excess's)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = eo / ee
        excess = eo - ee
    judgeable = ee_known & _gt(ee, cfg.level_min_expected_kw)

    # Hours too quiet to judge (a small home's night) carry the state of the last judged
    # hour: they cannot tell a drop from normal use, and ending the run there would cut
    # one bypass into a new incident (and alert) every night. Only for QUIET_HOLD, so a
    # meter whose whole level sank below the floor ends its run instead of holding it.
    hold_us = QUIET_HOLD // dt.timedelta(microseconds=1)
    last_judged = rows.fill(ts, judgeable | seed, ts - 2 * hold_us)
    hold = (ts - last_judged) <= hold_us

    def held(seeded: _Bools, cond: _Bools, cond_known: _Bools) -> _Bools:
        """Per row: the seed's state, ``cond`` on a judgeable row, the state before on
        a quiet row held (or one whose ``cond`` is unknown), else off."""
        state = np.where(seed, seeded, judgeable & cond)
        if not state.any():  # off throughout (most weeks of most meters)
            return state
        given = seed | (judgeable & cond_known) | (~judgeable & ~hold)
        return rows.fill(state, given, np.bool_(False))

    def above(share: float) -> _Bools:
        """The excess over ``share`` x the mean level (false where either is unknown)."""
        return known & mean_known & _gt(excess, share * mean)

    drop_since, drop_seeded = _times(both.get_column("drop_since"))
    shift_since, shift_seeded = _times(both.get_column("shift_since"))
    # an exit threshold is never stricter than the entry (a drop ratio set above the
    # default exit, a shift ratio below it: no hysteresis, not a run that cannot stay)
    drop_exit = max(cfg.drop_exit_ratio, cfg.drop_ratio)
    shift_exit = min(cfg.shift_exit_ratio, cfg.shift_ratio)
    stay_share = shift_exit / cfg.shift_ratio
    # An upward shift is the ratio above its threshold, or the excess above
    # ``shift_excess`` x the mean level: either may say so while the other is unknown.
    enter_more = above(cfg.shift_excess)
    stay_more = above(stay_share * cfg.shift_excess)
    e_drop = held(drop_seeded, _lt(ratio, cfg.drop_ratio), known)
    s_drop = held(drop_seeded, _lt(ratio, drop_exit), known)
    e_shift = held(
        shift_seeded, enter_more | (known & _gt(ratio, cfg.shift_ratio)), known | enter_more
    )
    s_shift = held(shift_seeded, stay_more | (known & _gt(ratio, shift_exit)), known | stay_more)
    # Hysteresis: a drop (shift) begins when the ratio crosses its threshold and goes on
    # until it crosses back over the looser exit threshold. A real household tripling its
    # use swings around x3 (a quiet afternoon dips to x2.4 for an hour): one threshold
    # cut it into pieces shorter than ``level_min_hours``, and none was ever reported.
    c_drop = rows.sticky(e_drop, s_drop, loose=drop_exit > cfg.drop_ratio)
    c_shift = rows.sticky(e_shift, s_shift, loose=shift_exit < cfg.shift_ratio)
    # A new load's run goes on through a dip of a few hours: three times a quiet afternoon
    # is under the exit ratio, and a household tripling its use for five days was raised
    # as two runs of two days, each too short to be worth a look. The dip's rows join the
    # run when it resumes within ``shift_bridge_hours``; a run that ends in such a dip at
    # the batch's end stays open in the state (``shift_until``: where its rows ended), so
    # the next batch resumes it as the rest of one batch would.
    bridging = cfg.shift_bridge_hours > 0
    bridge = dt.timedelta(hours=cfg.shift_bridge_hours) // dt.timedelta(microseconds=1)
    until_in, until_known = _times(both.get_column("shift_until"))
    # where each row's run would end: a seed's run where the state says it did
    run_end = np.where(seed, np.where(until_known, until_in, ts), end)

    def ended(on: _Bools) -> _Ints:
        """The end of the subject's last ``on`` row so far (long before, when none)."""
        return rows.fill(run_end, on, ts - 2 * bridge)

    if bridging:
        # the start of the subject's next run row (long after its last row when none)
        resumes = rows.fill_back(np.where(c_shift, ts, ts + 2 * bridge), c_shift)
        c_shift = c_shift | ((resumes - ended(c_shift)) <= bridge)

    min_len = dt.timedelta(hours=cfg.level_min_hours) // dt.timedelta(microseconds=1)
    out: list[pl.Series] = [_series("ratio", ratio, known, pa.float64())]
    time_type = pa.timestamp("us", tz="UTC")
    for name, cond, since_in, seeded in (
        ("drop", c_drop, drop_since, drop_seeded),
        ("shift", c_shift, shift_since, shift_seeded),
    ):
        first, final = rows.first(cond), rows.last(cond)
        since = np.where(seed, since_in, ts)
        start, start_known = since[first], (~seed | seeded)[first]
        lasted = cond & start_known & ((end - start) >= min_len)
        count = np.cumsum(lasted, dtype=np.int64)
        before = count - lasted
        # the whole run is the incident once it has lasted (within this batch)
        flagged = cond & (count[final] > before[first])
        kept, kept_known = start, cond & start_known
        if name == "shift":
            if bridging:  # a run this row is in, or one it may still resume
                run_ended = ended(cond)
                began = rows.fill(kept, kept_known, ts)
                open_ = ~cond & ((run_end - run_ended) <= bridge)
                until, until_on = np.where(cond, run_end, run_ended), cond | open_
                kept, kept_known = np.where(cond, start, began), kept_known | open_
            else:
                until, until_on = end, cond
            out.append(_series("shift_until", until, until_on, time_type))
        out += [
            pl.Series(f"c_{name}", cond),
            pl.Series(name, flagged),
            _series(f"{name}_start", start, start_known, time_type),
            _series(f"{name}_since", kept, kept_known, time_type),
        ]
    if ts_type != pl.Datetime("us", "UTC"):  # (the times as the rows have them)
        out = [c.cast(ts_type) if c.dtype.is_temporal() else c for c in out]
    return both.with_columns(out)


class _Rows:
    """Steps along the rows of subjects (in subject order; ``sid`` each row's subject).

    Fills and stretches go by counts (a cumulative sum, then a gather): a running
    maximum of positions, the obvious way, took six times as long."""

    def __init__(self, sid: npt.NDArray[np.integer]) -> None:
        self.size = sid.size
        #: each subject's first row
        self.new = np.ones(self.size, dtype=bool)
        self.new[1:] = sid[1:] != sid[:-1]
        #: each subject's last row
        self.ending = np.ones(self.size, dtype=bool)
        self.ending[:-1] = self.new[1:]

    def _back(self, taken: _Bools) -> _Ints:
        """Each row's position of the last ``taken`` row at or before it (the first row
        is taken)."""
        return np.flatnonzero(taken)[np.cumsum(taken, dtype=np.int64) - 1]

    def _ahead(self, taken: _Bools) -> _Ints:
        """Each row's position of the first ``taken`` row at or after it (the last row
        is taken)."""
        at = np.flatnonzero(taken)
        return at[at.size - np.cumsum(taken[::-1], dtype=np.int64)[::-1]]

    def fill(self, values: np.ndarray, given: _Bools, lead: npt.ArrayLike) -> np.ndarray:
        """``values`` where ``given``; elsewhere the subject's last given value before,
        or ``lead`` (a scalar or one per row) where the subject has none yet."""
        filled: np.ndarray = np.where(given, values, lead)
        return filled[self._back(given | self.new)]

    def fill_back(self, values: np.ndarray, given: _Bools) -> np.ndarray:
        """``values`` where ``given`` or on a subject's last row; elsewhere the next such
        one."""
        return values[self._ahead(given | self.ending)]

    def first(self, state: _Bools) -> _Ints:
        """Each row's position of the first row of its stretch: the rows of one subject
        in a row with the same ``state``."""
        begins = self.new.copy()
        begins[1:] |= state[1:] != state[:-1]
        return self._back(begins)

    def last(self, state: _Bools) -> _Ints:
        """Each row's position of the last row of its stretch (see :meth:`first`)."""
        ends = self.ending.copy()
        ends[:-1] |= state[:-1] != state[1:]
        return self._ahead(ends)

    def sticky(self, entry: _Bools, stay: _Bools, *, loose: bool) -> _Bools:
        """In a run from the first row that met ``entry`` while ``stay`` holds on (the
        seed row of a run carried from the last batch met it). Where the exit is no
        looser than the entry, or no row stays, that is ``entry`` itself (most weeks of
        most meters)."""
        if not loose or not stay.any():
            return entry
        entered = np.cumsum(entry, dtype=np.int64)  # entry rows so far
        return stay & (entered > (entered - entry)[self.first(stay)])


def _gt(a: _Floats, b: float | _Floats) -> _Bools:
    """``a > b`` as Polars compares floats: NaN above every number."""
    with np.errstate(invalid="ignore"):
        return (a > b) | (np.isnan(a) & ~np.isnan(b))


def _lt(a: _Floats, b: float | _Floats) -> _Bools:
    """``a < b`` as Polars compares floats: NaN above every number."""
    with np.errstate(invalid="ignore"):
        return (a < b) | (~np.isnan(a) & np.isnan(b))


def _floats(column: pl.Series) -> tuple[_Floats, _Bools]:
    """A float column's values (NaN where null) and where it is not null."""
    values = (column if column.dtype == pl.Float64 else column.cast(pl.Float64)).to_numpy()
    if not column.has_nulls():
        return values, np.ones(values.size, dtype=bool)
    return values, column.is_not_null().to_numpy()


def _times(column: pl.Series) -> tuple[_Ints, _Bools]:
    """A Datetime column's µs (0 where null) and where it is not null."""
    us = micros(column)
    if not column.has_nulls():
        return us, np.ones(us.size, dtype=bool)
    known = us != NONE
    return np.where(known, us, 0), known


def _series(name: str, values: np.ndarray, known: _Bools, kind: pa.DataType) -> pl.Series:
    """``values`` as a column of Arrow type ``kind``, null where not ``known``."""
    mask = None if known.all() else ~known
    return pl.Series(name, pa.array(values, type=kind, mask=mask))
