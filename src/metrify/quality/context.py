"""Which stored history a batch's verdicts depend on: the lean context.

VEE judges a batch together with ``context_days`` of each meter's stored readings. In a
stream that is nearly all of the work: a micro-batch holds a few new intervals of every
meter, and behind them lie a week of rows per meter (2,000 meters x 7 days x 96 = 1.3M
rows behind a 10K-reading batch), which every rule sorts, windows and combines again.

Most of those rows cannot change a verdict. Reading the rules backwards from a batch
row, only these look into older history:

* the previous reading (contiguity, register advance, gap start, spike neighbours);
* the run the row belongs to (flat line, zero run, register climb over it);
* the same local hour on earlier days (the spike baseline);
* for a hole: the duplicates around it (clock jumps) and, for the gap rows it makes,
  the estimation references (like days, the level around the gap).

So for most meters the context can be cut to a **dense tail** (every stored row from a
few hours before the batch's earliest row on, longer than a flat line must last and
than the spike rule's neighbours reach) plus, further back, only the rows near the
batch's hours of the day: the UTC hours a batch row's local hour can fall in. That is
the batch row's own UTC hour where the meters' zones are whole hours off UTC and do not
change offset within the context, one more either side for half-hour zones and one more
for a DST change in the window. A meter keeps its **whole** context when
the cut could show: some row from its first batch row on does not follow its
predecessor by exactly one interval (a hole, a misaligned or first reading: gaps,
estimation and clock-jump tracing reach back), a batch row has no import (estimation),
or the run its batch rows continue reaches back to the cut (a zero run is judged over
two days). Every rule works per meter, so each meter's verdicts are exactly those of the
whole context; ``tests/test_vee_context.py`` checks that against the whole context. A
batch that spans every hour of the day (a file, a day's upload) has every older row
in a near hour: the spike rule windows over all of them, the other rules over the tail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import polars as pl

from metrify.contracts.localtime import DAY_US, HOUR_US, epoch_us, known_zones
from metrify.quality.rules import sorted_by_meter_time
from metrify.settings.vee import VeeConfig

__all__ = ["BASELINE_ONLY", "Reach", "lean_context", "reach_of"]

#: the column that marks rows only the spike rule's same-hour baseline can use: older
#: rows of a meter judged on its tail, kept for their hour of the day
BASELINE_ONLY: Final = "_baseline_only"

_HOUR: Final = dt.timedelta(hours=1)
_DAY: Final = dt.timedelta(days=1)


@dataclass(frozen=True)
class Reach:
    """How far back a batch's verdicts look: every row from ``cut`` on, older rows only
    in the UTC ``hours`` listed, and the whole history of the meters that need it."""

    cut: dt.datetime
    hours: tuple[int, ...]
    records: pl.DataFrame

    def pick(self, context: pl.DataFrame, after: list[pl.DataFrame] | None = None) -> pl.DataFrame:
        """The rows of ``context`` (and ``after``) that the batch's verdicts can depend on:
        the tail and the near hours of every meter, and all rows of the meters that need
        them. ``after``: rows known to lie after ``cut``, kept without being looked at
        (the history cache's recent days).

        The near-hour rows of meters judged on their tail come marked in the
        :data:`BASELINE_ONLY` column: only the spike rule's same-hour baseline uses them,
        so the other rules window over the tail alone."""
        recent = after or []
        if not context.height and not any(part.height for part in recent):
            # nothing stored to pick from (a load's first batch, new meters): the frames
            # come back empty whichever meters would need their whole history
            tail, near = context, context
            whole = pl.Series("meter_id", [], dtype=pl.String)
        else:
            tail, near = self._split(context)
            whole = _meters_needing_whole(self.records, pl.concat([tail, *recent]))
        parts = [tail, *recent]
        if whole.len():
            needing = pl.col("meter_id").is_in(whole.implode())
            parts.append(context.filter(~self._keeps() & needing))
            parts.append(near.filter(needing))
            near = near.filter(~needing)
        rows = pl.concat(parts).with_columns(pl.lit(False).alias(BASELINE_ONLY))
        return pl.concat([rows, near.with_columns(pl.lit(True).alias(BASELINE_ONLY))])

    def _keeps(self) -> pl.Expr:
        """Whether a row is in the tail or a near hour."""
        # the UTC hour by integer arithmetic: dt.hour() on zoned times costs 4x as much
        hour = pl.col("ts").dt.epoch("us") // HOUR_US % 24
        return (pl.col("ts") >= self.cut) | hour.is_in(self.hours)

    def _split(self, context: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(the rows from ``cut`` on, the older rows in the near hours) of ``context``.

        When ``context`` is in time order (the history cache keeps its days so) both are
        slices found by binary search: a stream batch would otherwise test the hour of
        every row of a week of the fleet's readings to keep a few hours of each day.
        """
        ts = context.get_column("ts")
        if len(self.hours) == 24:  # a day-long batch: one cut
            # The history cache hands its days in day order, each in any order: the
            # days before the cut's are a prefix, and only the cut's day is filtered.
            days = ts.dt.epoch("us") // DAY_US
            if days.is_sorted():
                cut_day = pl.Series([epoch_us(self.cut) // DAY_US], dtype=pl.Int64)
                day_at = int(days.search_sorted(cut_day, side="left")[0])
                rest = context.slice(day_at)
                late = pl.col("ts") >= self.cut
                return rest.filter(late), pl.concat([context.slice(0, day_at), rest.filter(~late)])
        if not context.height or not ts.is_sorted():
            older = context.filter(pl.col("ts") < self.cut)
            return context.filter(pl.col("ts") >= self.cut), older.filter(self._keeps())
        first, last = ts[0], ts[-1]
        assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
        day = first.replace(hour=0, minute=0, second=0, microsecond=0)
        bounds: list[dt.datetime] = []
        while day <= min(last, self.cut):
            for hour in self.hours:
                start = day + hour * _HOUR
                if start < self.cut:
                    bounds += [start, min(start + _HOUR, self.cut)]
            day += _DAY
        bounds.append(self.cut)
        at = ts.search_sorted(pl.Series(bounds, dtype=ts.dtype), side="left").to_list()
        near = [context.slice(a, b - a) for a, b in zip(at[:-1:2], at[1:-1:2], strict=True)]
        return context.slice(at[-1]), pl.concat([context.clear(), *near])


def reach_of(
    records: pl.DataFrame, meters: pl.DataFrame, cfg: VeeConfig, oldest: dt.datetime
) -> Reach:
    """The reach of a batch whose context starts at ``oldest``.

    A batch over every hour of the day (a file, a day's upload) has every hour near, so
    the spike baseline keeps every older row; the other rules still see only the tail,
    which is most of the saving for a file: its 500K-row batches carry a week of the
    fleet's history (1.2M rows for 1,800 quarter-hour meters) behind them.

    ``records``: the batch (``meter_id``, ``ts``, ``interval_s``, ``import_kwh``);
    ``meters``: their reference rows (the ``timezone`` column, if any, says how local
    hours fall on UTC).
    """
    longest = records.get_column("interval_s").max()
    first, last = records.get_column("ts").min(), records.get_column("ts").max()
    assert isinstance(longest, int)
    assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
    span = dt.timedelta(
        seconds=max(cfg.flat_line_hours * 3600, (cfg.spike_max_intervals + 1) * longest) + longest
    )
    # UTC hours by integer arithmetic: dt.hour() on zoned times costs 4x as much
    utc_hour = pl.col("ts").dt.epoch("us") // HOUR_US % 24
    hours: list[int] = records.select(utc_hour.unique()).to_series().to_list()
    reach = _hour_reach(_zones(meters), oldest, last)
    near = sorted({(h + d) % 24 for h in hours for d in range(-reach, reach + 1)})
    # One cut for the batch, before its earliest row: a meter further on keeps a longer
    # tail, which changes nothing, and no per-meter join runs over the whole context.
    return Reach(first - span, tuple(near), records)


def lean_context(
    records: pl.DataFrame, context: pl.DataFrame, meters: pl.DataFrame, cfg: VeeConfig
) -> pl.DataFrame:
    """The rows of ``context`` (stored rows of the batch's meters) that the verdicts on
    ``records`` can depend on: a subset of it, all of it for meters that need it."""
    if context.height == 0 or records.height == 0:
        return context
    oldest = context.get_column("ts").min()
    assert isinstance(oldest, dt.datetime)
    return reach_of(records, meters, cfg, oldest).pick(context)


def _zones(meters: pl.DataFrame) -> list[ZoneInfo]:
    """The meters' time zones that exist (unknown ones are judged in UTC, as the rules do)."""
    names = ["UTC"]
    if "timezone" in meters.columns:
        names += meters.get_column("timezone").drop_nulls().unique().to_list()
    return [ZoneInfo(name) for name in known_zones(names)]


def _hour_reach(zones: list[ZoneInfo], start: dt.datetime, end: dt.datetime) -> int:
    """How many UTC hours either side of a batch row's the same local hour can fall in.

    Local time is UTC plus an offset: with a whole-hour offset that stays put, a local
    hour is one UTC hour; a fractional offset spreads it over two; an offset that
    changes (DST) shifts it by the change. Offsets are read at every day boundary and at
    both ends of the window, which sees every change (zones change at most twice a year).
    """
    reach = 0
    for zone in zones:
        moments = [start + _DAY * i for i in range((end - start) // _DAY + 1)] + [end]
        offsets = {moment.astimezone(zone).utcoffset() or dt.timedelta() for moment in moments}
        fractional = any(offset % _HOUR for offset in offsets)
        shift = max(offsets) - min(offsets)
        reach = max(reach, int(fractional) + -(-shift // _HOUR))
    return reach


def _meters_needing_whole(records: pl.DataFrame, dense: pl.DataFrame) -> pl.Series:
    """Meters whose verdicts could see past the dense tail (see the module docstring).

    Runs on every stream batch, so it is written without windows over meters: one sort
    on an integer (meter code, time) key, then shifts and running sums.
    """
    columns = ["meter_id", "ts", "interval_s", "import_kwh"]
    stored = dense.select(columns).join(
        records.select("meter_id", "ts"), on=["meter_id", "ts"], how="anti"
    )
    rows = pl.concat(
        [records.select(*columns, _batch=pl.lit(True)), stored.with_columns(_batch=pl.lit(False))]
    )
    ids = rows.get_column("meter_id").unique().sort()
    code = pl.col("meter_id").cast(pl.Enum(ids)).to_physical().cast(pl.Int64)
    rows = sorted_by_meter_time(rows.with_columns(_g=code)).with_columns(
        _us=pl.col("ts").dt.epoch("us")
    )
    t = pl.col("_us")
    iv = pl.col("interval_s").cast(pl.Int64) * 1_000_000
    same = (pl.col("_g") == pl.col("_g").shift(1)).fill_null(False)
    contig = same & (t - t.shift(1) == iv).fill_null(False)
    imp = pl.col("import_kwh")
    new_run = ~contig | (imp != imp.shift(1)).fill_null(True) | imp.is_null()
    batch = pl.col("_batch")
    seen = batch.cast(pl.Int64).cum_sum()
    rows = rows.with_columns(
        _contig=contig,
        _run=new_run.cum_sum(),
        _seen=seen,
        # the running count of batch rows where the meter's rows begin
        _base=pl.when(~same).then(seen - batch.cast(pl.Int64)).forward_fill(),
    ).with_columns(
        # the run of the meter's oldest row in the tail, where its history was cut
        _cut_run=pl.when(~same).then(pl.col("_run")).forward_fill(),
    )
    from_first = pl.col("_seen") > pl.col("_base")  # at or after the meter's first batch row
    doubtful = rows.filter(
        (from_first & ~pl.col("_contig"))
        | (batch & imp.is_null())
        | (batch & (pl.col("_run") == pl.col("_cut_run")))
    )
    return doubtful.get_column("meter_id").unique()
