"""Interval energy from cumulative register reads.

Many meters (heat, gas, water, and electricity read at the display or the P1 port)
report a register: the energy counted since installation, read at some instants. The
contract stores interval energy, so a load that maps ``register_kwh`` and no energy
column derives it here, column-wise on Polars frames:

* **deltas**: the energy of a span between two consecutive reads of a meter is the
  register's advance over it;
* **rollover**: a register of N digits wraps to zero at 10**N of its unit; a fall from
  within 10 % of the wrap to a small value is the wrap (``--register-digits`` gives N; left
  out, a wrap is inferred where the register fell from within 1 % below a power of ten of
  at least 10**4 of its unit to below 1 % of it, the rule VEE uses). Those spans carry
  ``REGISTER_ROLLOVER`` (64);
* **meter exchange or reset**: a register that falls to below half its previous value
  without a wrap started again from zero (a new meter, a reset counter): the span's energy
  is the new register's value (what it counted since zero; what the old one counted after
  its last read is unknown), never a negative number, and the span is flagged
  ``REGISTER_MISMATCH`` (32), which makes its intervals suspect. A smaller fall (a read
  that overshot) is flagged the same way and counts nothing until the register passes its
  highest value again, so no energy is counted twice;
* **apportioning**: the register is taken as linear in time between reads and each
  target interval (``--interval``, on the UTC grid) gets its advance. An interval whose
  two ends lie within :data:`READ_TOLERANCE` of a read is measured; any other (reads a day
  apart apportioned to hours, a span over missing reads) is flagged ``ESTIMATED`` (256);
* **estimated reads**: a read the source marks as estimated (its ``estimated`` bit in
  :data:`FLAGS`: a meter data provider's substitute for a read it did not get) makes
  every interval whose energy it bounds ``ESTIMATED`` too: the advance up to it and
  from it are as good as the estimate;
* **the register kept**: each interval carries the register read at its end when a read
  lies there (within the tolerance), else none. The interval a wrap falls in keeps it
  only when the caller can tell VEE the register's width (``keep_wrap_register``);
  otherwise VEE, which judges every register against the energy beside it, would take
  the wrap for a mismatch.

The sum of the derived energy over a meter's intervals is its last register minus its
first, plus a wrap for each rollover and the new register's value at each exchange.

Reads arrive in batches (chunks of a file, files, loads): :class:`Carry` holds, per
meter, the reads from the last one at or before the start of its last unfinished
interval, so the next batch continues the same arithmetic. The pipeline seeds a meter
seen for the first time with its last stored read (a stage never reads the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.contracts.localtime import DAY_US, HOUR_US, known_zones, utc_of_wall, wall_of_utc
from metrify.contracts.records import READING, TS, Quality
from metrify.sources.batches import FLAGS

__all__ = ["CARRY_SCHEMA", "FLAGS", "READ_TOLERANCE", "Derived", "derive_intervals"]

#: a read within this share of the interval of an interval's end counts as at the end
READ_TOLERANCE: Final = 0.05
#: how far the one-integer (meter, time) search key may reach (int64 holds 2**63)
_KEY_ROOM: Final = 2.0**61
#: what is carried from one batch to the next, per meter: reads (``top``: the highest
#: register since the last wrap or exchange, from which the next advance counts;
#: ``est``: the source estimated the read)
CARRY_SCHEMA: Final = {
    "meter_id": pl.String(),
    "t": TS,
    "reg": pl.Float64(),
    "top": pl.Float64(),
    "est": pl.Boolean(),
}
#: with a known width, a fall to within this share of the wrap is a rollover
_KNOWN_WRAP_SHARE: Final = 0.1
#: a wrap of unknown width is inferred only for registers of at least this many units
_MIN_INFERRED_WRAP: Final = 1e4
#: a fall to below this share of the previous value is an exchange or reset
_RESET_SHARE: Final = 0.5

#: the finest resolution of a register read that derived energy is rounded to (a read
#: given to more decimals than this is taken as computed, not written by a meter)
_MAX_DECIMALS: Final = 9
_ROLLOVER: Final = int(Quality.REGISTER_ROLLOVER)
_MISMATCH: Final = int(Quality.REGISTER_MISMATCH)
_ESTIMATED: Final = int(Quality.ESTIMATED)


@dataclass
class Derived:
    """Intervals derived from a batch of reads, and what the next batch needs."""

    #: contract fields and :data:`FLAGS`, one row per derived interval
    records: pl.DataFrame
    #: the new carry of the batch's meters (see :data:`CARRY_SCHEMA`)
    carry: pl.DataFrame
    #: reads that could not be used: the read's fields as JSON, reason, line
    rejects: pl.DataFrame
    #: exact repeats of a read, dropped
    repeats: int = 0


def empty_carry() -> pl.DataFrame:
    return pl.DataFrame(schema=CARRY_SCHEMA)


def derive_intervals(
    reads: pl.DataFrame,
    carry: pl.DataFrame,
    *,
    interval_s: int,
    unit_kwh: float = 1.0,
    digits: int | None = None,
    keep_wrap_register: bool = True,
    widths: pl.DataFrame | None = None,
    zones: pl.DataFrame | None = None,
) -> Derived:
    """Derive interval energy from register reads.

    ``reads``: decoded readings whose ``ts`` is the instant of a read and
    ``register_kwh`` its value in kWh, plus ``_line`` (the read's line, for rejects)
    and optionally :data:`FLAGS` (the ``estimated`` bit: the source estimated the read);
    ``carry``: the meters' earlier reads (:data:`CARRY_SCHEMA`), from the previous batch
    or the store; ``unit_kwh``: kWh per unit of the register as the source gives it (a
    register of Wh: 0.001), so that a width of ``digits`` digits wraps at
    ``10**digits * unit_kwh`` kWh; ``keep_wrap_register``: see the module's text.
    ``widths`` (``meter_id``, ``wrap_kwh``): where ``digits`` is not given, the wrap of
    the meters whose reference data gives their register's width (VEE knows those, so
    their wraps keep their register). ``zones`` (``meter_id``, ``timezone``): the
    meters' own clocks; a meter whose zone puts the grid of ``interval_s`` elsewhere
    than UTC does (local days, India's hours) gets its intervals on its own clock's
    grid (a day from local midnight to local midnight, 23 or 25 hours at the clock
    changes), so that reads taken at those instants give measured intervals.
    """
    step = interval_s * 1_000_000
    tol = int(step * READ_TOLERANCE)
    wrap_kwh = None if digits is None else float(10**digits) * unit_kwh
    keys = ["meter_id", "t"]
    est = (
        ((pl.col(FLAGS).fill_null(0) & _ESTIMATED) != 0)
        if FLAGS in reads.columns
        else pl.lit(False)
    )
    new = reads.select(
        "meter_id", t=pl.col("ts"), reg=pl.col("register_kwh"), _line=pl.col("_line"), est=est
    ).with_row_index("_order")
    if not _grouped_in_time_order(new):
        new = new.sort([*keys, "_order"])
    rejects: list[pl.DataFrame] = []
    # Repeats and conflicting reads of one instant: the later row is the sender's word.
    ids, times = new.get_column("meter_id"), new.get_column("t")
    repeated = (ids == ids.shift(-1)) & (times == times.shift(-1))
    repeats = 0
    if repeated.any():
        earlier = new.filter(repeated.fill_null(False))
        new = new.filter(~repeated.fill_null(False))
        same = earlier.join(new.select(*keys, _kept=pl.col("reg")), on=keys, how="left")
        conflicting = same.filter(pl.col("_kept") != pl.col("reg"))
        rejects.append(_rejects(reads, conflicting, "conflicting register read at the same time"))
        repeats = earlier.height - conflicting.height
    # Reads at or before a meter's carried last read come too late to be used.
    meters = new.select(pl.col("meter_id").unique())
    carried = carry.join(meters, on="meter_id", how="semi")
    if carried.height:
        last = carried.group_by("meter_id").agg(
            _last_t=pl.col("t").max(), _last_reg=pl.col("reg").last()
        )
        new = new.join(last, on="meter_id", how="left", maintain_order="left")
        too_late = (pl.col("t") <= pl.col("_last_t")).fill_null(False)
        late = new.filter(too_late)
        if late.height:
            again = (late["t"] == late["_last_t"]) & (late["reg"] == late["_last_reg"])
            repeats += int(again.sum())
            rejects.append(
                _rejects(
                    reads,
                    late.filter(~again),
                    "register read at or before the meter's previous read "
                    "(a meter's reads must come in time order)",
                )
            )
            new = new.filter(~too_late)
        new = new.drop("_last_t", "_last_reg")
    frame = new.select("meter_id", "t", "reg", "est", _seed=pl.col("reg"), _carried=pl.lit(False))
    if carried.height:
        # a meter's carried reads go before its new ones (all are earlier)
        frame = pl.concat(
            [
                carried.select(
                    "meter_id",
                    "t",
                    "reg",
                    pl.col("est").fill_null(False),
                    _seed=pl.col("top"),
                    _carried=pl.lit(True),
                ),
                frame,
            ]
        ).sort(keys, maintain_order=True)
    reject_frame = (
        pl.concat(rejects)
        if rejects
        else pl.DataFrame(schema={"raw": pl.String(), "reason": pl.String(), "line": pl.Int32()})
    )
    if not frame.height:
        return Derived(_no_records(), empty_carry(), reject_frame, repeats)
    # the wrap per read where it is known, and whether VEE knows it (a reference width)
    if wrap_kwh is not None:
        frame = frame.with_columns(_wrap=pl.lit(wrap_kwh, dtype=pl.Float64), _vee=pl.lit(False))
    elif widths is not None and widths.height:
        frame = frame.join(
            widths.select("meter_id", _wrap=pl.col("wrap_kwh").cast(pl.Float64)),
            on="meter_id",
            how="left",
            maintain_order="left",
        ).with_columns(_vee=pl.col("_wrap").is_not_null())
    else:
        frame = frame.with_columns(_wrap=pl.lit(None, dtype=pl.Float64), _vee=pl.lit(False))
    spans = _spans(frame, unit_kwh)
    spans.clocks = _own_clocks(frame, spans, zones, step)
    records = _apportion(frame, spans, step, tol, interval_s, keep_wrap_register)
    return Derived(records, _next_carry(frame, spans, step), reject_frame, repeats)


def _grouped_in_time_order(reads: pl.DataFrame) -> bool:
    """Whether each meter's reads are together and in time order already (a file per
    meter, or meter by meter): then the batch need not be sorted."""
    ids, times = reads.get_column("meter_id"), reads.get_column("t")
    changes = ids.ne_missing(ids.shift(1)).fill_null(True)
    if int(changes.sum()) != ids.n_unique():
        return False
    return not bool(((~changes) & (times < times.shift(1))).fill_null(False).any())


def _rejects(reads: pl.DataFrame, rows: pl.DataFrame, reason: str) -> pl.DataFrame:
    """The reads at ``rows["_order"]`` as quarantine rows: their fields as JSON."""
    picked = reads.select(list(READING.schema)).gather(rows["_order"])
    return picked.select(
        raw=pl.struct(pl.all()).struct.json_encode(),
        reason=pl.lit(reason),
        line=rows["_line"].cast(pl.Int32),
    )


def _no_records() -> pl.DataFrame:
    return READING.empty().with_columns(pl.lit(0, dtype=pl.Int32).alias(FLAGS))


@dataclass
class _Spans:
    """Per read (sorted by meter and time), as numpy arrays: the meter's number, the
    read's time (µs), the energy total up to it (``c``: a running sum over the whole
    batch, only ever differenced within a meter), running counts of wrapped and of
    mismatched spans, of reads the source estimated (``ne``, and ``est`` per read), and
    each meter's first and last row."""

    meter: npt.NDArray[np.int64]
    us: npt.NDArray[np.int64]
    reg: npt.NDArray[np.float64]
    top: npt.NDArray[np.float64]
    c: npt.NDArray[np.float64]
    n64: npt.NDArray[np.int64]
    n32: npt.NDArray[np.int64]
    est: npt.NDArray[np.int64]
    ne: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    last: npt.NDArray[np.int64]
    #: per meter: whether VEE knows its register's width (from its reference row)
    given: npt.NDArray[np.bool_]
    #: the zones whose clocks meters' intervals follow (None: UTC's for all)
    clocks: _Clocks | None = None


@dataclass
class _Clocks:
    """Per meter, the zone whose wall clock its grid follows: ``code`` (-1: UTC) into
    ``names``. Conversions take each value's meter (``owner``) and run per zone, never
    per value in Python."""

    code: npt.NDArray[np.int64]
    names: list[str]

    def wall(
        self, us: npt.NDArray[np.int64], owner: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """UTC instants (µs) as times on the wall clock of their meter's zone."""
        out, codes = us.copy(), self.code[owner]
        for number, name in enumerate(self.names):
            mask = codes == number
            if mask.any():
                out[mask] = wall_of_utc(pl.Series(us[mask]), name).to_numpy()
        return out

    def utc(
        self, wall: npt.NDArray[np.int64], owner: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Wall-clock times of their meter's zone as UTC instants (µs). A time the clock
        repeats is taken the first time; one it skips (a zone that springs forward at
        midnight) is the instant of the jump: an hour after the wall time an hour
        earlier, which exists."""
        out, codes = wall.copy(), self.code[owner]
        for number, name in enumerate(self.names):
            mask = codes == number
            if not mask.any():
                continue
            found = utc_of_wall(pl.Series(wall[mask]), name)
            if found.null_count():
                found = found.fill_null(
                    utc_of_wall(pl.Series(wall[mask] - HOUR_US), name) + HOUR_US
                )
            out[mask] = found.to_numpy()
        return out

    def part(self, meters: slice) -> _Clocks:
        return _Clocks(self.code[meters], self.names)


def _spans(frame: pl.DataFrame, unit_kwh: float) -> _Spans:
    """Each span's energy and flags, one numpy pass over the sorted reads."""
    ids = frame.get_column("meter_id")
    starts = ids.ne_missing(ids.shift(1)).fill_null(True).to_numpy()
    meter = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:] - 1, len(starts) - 1)
    us = frame.get_column("t").dt.epoch("us").to_numpy()
    reg = frame.get_column("reg").to_numpy().astype(np.float64)
    seed = frame.get_column("_seed").to_numpy().astype(np.float64)
    prev = np.roll(reg, 1)
    prev[starts] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        fall = (reg - prev) < 0  # NaN (a meter's first read) compares False
        known = frame.get_column("_wrap").fill_null(np.nan).to_numpy().astype(np.float64)
        given = ~np.isnan(known)
        prev_units = prev / unit_kwh
        power = 10.0 ** (np.floor(np.log10(np.clip(prev_units, 1.0, None))) + 1)
        wrap = np.where(given, known, power * unit_kwh)
        rolled = fall & np.where(
            given,
            (reg - prev + wrap <= _KNOWN_WRAP_SHARE * wrap) & (reg < wrap),
            (power >= _MIN_INFERRED_WRAP)
            & (prev_units >= 0.99 * power)
            & (reg / unit_kwh < 0.01 * power),
        )
        reset = fall & ~rolled & (reg < _RESET_SHARE * prev)
    back = fall & ~rolled & ~reset
    segment_start = starts | rolled | reset
    seed_prev = np.roll(seed, 1)
    if np.all(segment_start[1:] | (seed[1:] >= seed_prev[1:])):
        top = seed  # the usual batch: no register ever falls back within a stretch
    else:
        segment = pl.Series(np.cumsum(segment_start))
        top = (
            pl.DataFrame({"s": segment, "v": seed})
            .select(pl.col("v").cum_max().over("s"))
            .to_series()
            .to_numpy()
        )
    est = frame.get_column("est").to_numpy().astype(np.int64)
    top_prev = np.roll(top, 1)
    energy = np.where(rolled, wrap - top_prev + reg, np.where(reset, reg, top - top_prev))
    energy[starts] = 0.0
    energy = np.clip(energy, 0.0, None)
    return _Spans(
        meter=meter,
        us=us,
        reg=reg,
        top=top,
        c=np.cumsum(energy),
        n64=np.cumsum(rolled),
        n32=np.cumsum(reset | back),
        est=est,
        ne=np.cumsum(est),
        first=first,
        last=last,
        given=frame.get_column("_vee").to_numpy()[first],
    )


def _own_clocks(
    frame: pl.DataFrame, sp: _Spans, zones: pl.DataFrame | None, step: int
) -> _Clocks | None:
    """The zone whose clock each meter's grid of ``step`` follows: its own where that
    grid is not UTC's (days, or hours in a zone of half hours) and no fewer of its reads
    lie on it than on UTC's (reads at local midnight; reads every hour lie on both, and
    a meter's days are its own), else UTC's; None when no meter follows its own. Where
    the two grids are one (hours in most zones) UTC's is kept, and so it is for
    intervals under a day across a clock change: an hour of the wall clock is repeated
    or skipped there."""
    if zones is None or not zones.height:
        return None
    named = (
        pl.DataFrame({"meter_id": frame.get_column("meter_id").gather(sp.first)})
        .join(
            zones.select("meter_id", "timezone").unique("meter_id"),
            on="meter_id",
            how="left",
            maintain_order="left",
        )
        .get_column("timezone")
    )
    names = known_zones(named.drop_nulls().unique().sort().to_list())
    if not names:
        return None
    code = named.replace_strict(names, list(range(len(names))), default=-1, return_dtype=pl.Int64)
    clocks = _Clocks(code.to_numpy().copy(), names)
    meters = np.arange(len(sp.first))
    first, last = sp.us[sp.first], sp.us[sp.last]
    apart = ((clocks.wall(first, meters) - first) % step != 0) | (
        (clocks.wall(last, meters) - last) % step != 0
    )
    clocks.code[~apart] = -1
    if not apart.any():  # (hours in most zones: one grid, nothing more to weigh)
        return None

    def on_grid(times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        counts = np.zeros(len(meters), dtype=np.int64)
        np.add.at(counts, sp.meter, times % step == 0)
        return counts

    wall = clocks.wall(sp.us, sp.meter)
    # intervals shorter than a day keep UTC's grid across a clock change (Adelaide's
    # half hours with daylight saving): their wall clock repeats or skips a grid point
    offset = wall - sp.us
    low = np.full(len(meters), np.iinfo(np.int64).max)
    high = np.full(len(meters), np.iinfo(np.int64).min)
    np.minimum.at(low, sp.meter, offset)
    np.maximum.at(high, sp.meter, offset)
    changes = (high != low) & (step < DAY_US)
    clocks.code[changes | (on_grid(wall) < on_grid(sp.us))] = -1
    return clocks if (clocks.code >= 0).any() else None


def _wall(
    sp: _Spans, us: npt.NDArray[np.int64], owner: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """``us`` on their meters' clocks (UTC's where no meter follows its own)."""
    return us if sp.clocks is None else sp.clocks.wall(us, owner)


def _utc(
    sp: _Spans, wall: npt.NDArray[np.int64], owner: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """:func:`_wall` undone."""
    return wall if sp.clocks is None else sp.clocks.utc(wall, owner)


def _keys(sp: _Spans, step: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A sort key for (meter, time) in one integer: each meter's times shifted to lie
    after the previous meter's, and the shift per meter (so a meter's time ``p`` has
    the key ``p + shift[meter]``); searching it finds a time among its own meter's reads."""
    spans = sp.us[sp.last] - sp.us[sp.first] + 2 * step
    base = np.concatenate(([0], np.cumsum(spans)[:-1]))
    shift = base - sp.us[sp.first]
    return sp.us + shift[sp.meter], shift


def _apportion(
    frame: pl.DataFrame,
    sp: _Spans,
    step: int,
    tol: int,
    interval_s: int,
    keep_wrap_register: bool,
) -> pl.DataFrame:
    """The target intervals between each meter's reads, with their energy and flags."""
    carried = frame.get_column("_carried").to_numpy()
    # (grid points on each meter's clock: UTC's, or its zone's wall clock)
    meters = np.arange(len(sp.first))
    first_t, last_t = _wall(sp, sp.us[sp.first], meters), _wall(sp, sp.us[sp.last], meters)
    start = -(-first_t // step) * step  # the first grid point at or after a read
    carried_last = np.full(len(sp.first), np.iinfo(np.int64).min)
    np.maximum.at(carried_last, sp.meter[carried], sp.us[carried])
    was_carried = carried_last > np.iinfo(np.int64).min
    carried_wall = _wall(sp, np.where(was_carried, carried_last, sp.us[sp.first]), meters)
    resume = np.where(was_carried, carried_wall // step * step, start)
    from_g = np.maximum(start, resume)
    to_g = last_t // step * step - step
    count = np.where(to_g >= from_g, (to_g - from_g) // step + 1, 0)
    total = int(count.sum())
    if not total:
        return _no_records()
    if float((sp.us[sp.last] - sp.us[sp.first] + 2 * step).sum()) > _KEY_ROOM:
        # the (meter, time) key could overflow: derive a group of meters at a time
        return _by_meter_groups(frame, sp, step, tol, interval_s, keep_wrap_register)
    owner = np.repeat(np.arange(len(count)), count)
    offsets = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    wall = from_g[owner] + offsets * step
    g, g_end = _utc(sp, wall, owner), _utc(sp, wall + step, owner)
    key, shift = _keys(sp, step)
    n = len(sp.us)

    wraps, mismatches, estimates = bool(sp.n64[-1]), bool(sp.n32[-1]), bool(sp.ne[-1])
    zeros = np.zeros(total, dtype=np.int64)

    def at(points: npt.NDArray[np.int64], end: bool) -> dict[str, npt.NDArray[Any]]:
        left = np.searchsorted(key, points + shift[owner], side="right") - 1
        right = np.minimum(left + 1, n - 1)
        has_next = (right != left) & (sp.meter[right] == owner)
        t_l, t_r = sp.us[left], sp.us[right]
        exact = points == t_l
        span = np.where(has_next, t_r - t_l, 1)
        share = np.where(has_next & ~exact, (points - t_l) / span, 0.0)
        c_l = sp.c[left]
        before = points - t_l
        after = np.where(has_next, t_r - points, np.iinfo(np.int64).max)
        out = {"c": c_l + (sp.c[right] - c_l) * share, "d": np.minimum(before, after)}
        # a span's flags count from the read before a start to the read after an end
        if end:
            out["64"] = np.where(exact, sp.n64[left], sp.n64[right]) if wraps else zeros
            out["32"] = np.where(exact, sp.n32[left], sp.n32[right]) if mismatches else zeros
            out["reg"] = np.where(after < before, sp.reg[right], sp.reg[left])
            # estimated reads up to the one after the end (or at it)
            out["e"] = np.where(exact, sp.ne[left], sp.ne[right]) if estimates else zeros
        else:
            out["64"] = sp.n64[left] if wraps else zeros
            out["32"] = sp.n32[left] if mismatches else zeros
            # estimated reads before the one at or before the start
            out["e"] = (sp.ne[left] - sp.est[left]) if estimates else zeros
        return out

    s, e = at(g, end=False), at(g_end, end=True)
    wrapped = (e["64"] - s["64"]) > 0
    at_end = e["d"] <= tol
    flags = (
        np.where(wrapped, _ROLLOVER, 0)
        | np.where((e["32"] - s["32"]) > 0, _MISMATCH, 0)
        | np.where((s["d"] > tol) | (e["d"] > tol) | ((e["e"] - s["e"]) > 0), _ESTIMATED, 0)
    ).astype(np.int32)
    keep = at_end & (keep_wrap_register | sp.given[owner] | ~wrapped)
    ids = frame.get_column("meter_id").gather(sp.first).gather(owner)
    derived = pl.DataFrame(
        {
            "meter_id": ids,
            "ts": pl.Series(g).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "interval_s": pl.Series(np.full(total, interval_s, dtype=np.int32)),
            "import_kwh": _to_resolution(
                np.clip(e["c"] - s["c"], 0.0, None), (s["d"] == 0) & (e["d"] == 0), sp.reg
            ),
            "register_kwh": pl.Series(np.where(keep, e["reg"], np.nan)).fill_nan(None),
            FLAGS: flags,
        }
    )
    return derived.select(
        [
            pl.col(n).cast(t) if n in derived.columns else pl.lit(None, dtype=t).alias(n)
            for n, t in READING.schema.items()
        ]
        + [pl.col(FLAGS)]
    )


def _resolution(reg: npt.NDArray[np.float64]) -> int | None:
    """The decimals the reads are written to (kWh ``1234.567``: 3), at most
    ``_MAX_DECIMALS``; None when they are finer (a register scaled by an odd factor)."""
    values = reg[np.isfinite(reg)]
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = values * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) <= np.maximum(np.abs(scaled), 1.0) * 1e-12):
            return decimals
    return None


def _to_resolution(
    energy: npt.NDArray[np.float64], exact: npt.NDArray[np.bool_], reg: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Interval energy between two reads kept to the reads' own decimals: ``1234.789 -
    1234.567`` is 0.222, not the 0.22199999999998 binary floating point leaves, which
    would show in every export and sum. Energy apportioned between reads (``exact``
    False) is a share, finer than the register, and stays as computed."""
    decimals = _resolution(reg)
    if decimals is None or not exact.any():
        return energy
    return np.where(exact, np.round(energy, decimals), energy)


def _by_meter_groups(
    frame: pl.DataFrame,
    sp: _Spans,
    step: int,
    tol: int,
    interval_s: int,
    keep_wrap_register: bool,
) -> pl.DataFrame:
    """:func:`_apportion` for a batch whose meters' times span too much for one key:
    a group of meters at a time (a loop per group of meters, never per read; a single
    meter's times always fit, the contract's window being 230 years)."""
    spans = (sp.us[sp.last] - sp.us[sp.first] + 2 * step).astype(np.float64)
    group = (np.cumsum(spans) // _KEY_ROOM).astype(np.int64)
    parts = []
    for number in np.unique(group):
        members = np.flatnonzero(group == number)
        rows = slice(int(sp.first[members[0]]), int(sp.last[members[-1]]) + 1)
        parts.append(
            _apportion(frame[rows], _slice(sp, rows), step, tol, interval_s, keep_wrap_register)
        )
    return pl.concat(parts)


def _slice(sp: _Spans, rows: slice) -> _Spans:
    meter = sp.meter[rows] - sp.meter[rows.start]
    starts = np.flatnonzero(np.diff(meter, prepend=-1) != 0)
    return _Spans(
        meter=meter,
        us=sp.us[rows],
        reg=sp.reg[rows],
        top=sp.top[rows],
        c=sp.c[rows],
        n64=sp.n64[rows],
        n32=sp.n32[rows],
        est=sp.est[rows],
        ne=sp.ne[rows],
        first=starts,
        last=np.append(starts[1:] - 1, len(meter) - 1),
        given=sp.given[sp.meter[rows.start] : sp.meter[rows.stop - 1] + 1],
        clocks=None
        if sp.clocks is None
        else sp.clocks.part(slice(sp.meter[rows.start], sp.meter[rows.stop - 1] + 1)),
    )


def _next_carry(frame: pl.DataFrame, sp: _Spans, step: int) -> pl.DataFrame:
    """Per meter, the reads from the last one at or before the start of its last
    unfinished interval: what the next batch needs to continue."""
    meters = np.arange(len(sp.last))
    resume = _utc(sp, _wall(sp, sp.us[sp.last], meters) // step * step, meters)
    index = np.arange(len(sp.us))
    anchor = sp.first.copy()  # when every read lies in the unfinished interval
    before = sp.us <= resume[sp.meter]
    np.maximum.at(anchor, sp.meter[before], index[before])
    keep = index >= anchor[sp.meter]
    return (
        frame.filter(pl.Series(keep))
        .select("meter_id", "t", "reg", "est")
        .with_columns(top=pl.Series(sp.top[keep]))
        .select(list(CARRY_SCHEMA))
    )
