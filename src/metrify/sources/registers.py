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
from typing import Final

import polars as pl

from metrify.contracts.records import READING, TS, Quality

__all__ = ["CARRY_SCHEMA", "FLAGS", "READ_TOLERANCE", "Derived", "derive_intervals"]

#: a read within this share of the interval of an interval's end counts as at the end
READ_TOLERANCE: Final = 0.05
#: the column of derived records that carries their quality bits to the pipeline
FLAGS: Final = "_flags"
#: what is carried from one batch to the next, per meter: reads (``top``: the highest
#: register since the last wrap or exchange, from which the next advance counts)
CARRY_SCHEMA: Final = {"meter_id": pl.String(), "t": TS, "reg": pl.Float64(), "top": pl.Float64()}
#: with a known width, a fall to within this share of the wrap is a rollover
_KNOWN_WRAP_SHARE: Final = 0.1
#: a wrap of unknown width is inferred only for registers of at least this many units
_MIN_INFERRED_WRAP: Final = 1e4
#: a fall to below this share of the previous value is an exchange or reset
_RESET_SHARE: Final = 0.5

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
) -> Derived:
    """Derive interval energy from register reads.

    ``reads``: decoded readings whose ``ts`` is the instant of a read and
    ``register_kwh`` its value in kWh, plus ``_line`` (the read's line, for rejects);
    ``carry``: the meters' earlier reads (:data:`CARRY_SCHEMA`), from the previous batch
    or the store; ``unit_kwh``: kWh per unit of the register as the source gives it (a
    register of Wh: 0.001), so that a width of ``digits`` digits wraps at
    ``10**digits * unit_kwh`` kWh; ``keep_wrap_register``: see the module's text.
    """
    step = interval_s * 1_000_000
    tol = int(step * READ_TOLERANCE)
    wrap_kwh = None if digits is None else float(10**digits) * unit_kwh
    keys = ["meter_id", "t"]
    new = (
        reads.select(
            "meter_id",
            t=pl.col("ts"),
            reg=pl.col("register_kwh"),
            _line=pl.col("_line").cast(pl.Int32),
            _raw=pl.struct(list(READING.schema)).struct.json_encode(),
        )
        .with_row_index("_order")
        .sort([*keys, "_order"])
    )
    rejects: list[pl.DataFrame] = []
    # Repeats and conflicting reads of one instant: the later row is the sender's word.
    last_of_key = new.select(pl.struct(keys).is_last_distinct()).to_series()
    earlier = new.filter(~last_of_key)
    new = new.filter(last_of_key)
    if earlier.height:
        same = earlier.join(new.select(*keys, _kept=pl.col("reg")), on=keys, how="left")
        conflicting = same.filter(pl.col("_kept") != pl.col("reg"))
        rejects.append(_rejects(conflicting, "conflicting register read at the same time"))
        repeats = earlier.height - conflicting.height
    else:
        repeats = 0
    # Reads at or before a meter's carried last read come too late to be used.
    if carry.height:
        last = carry.group_by("meter_id").agg(
            _last_t=pl.col("t").max(), _last_reg=pl.col("reg").last()
        )
        new = new.join(last, on="meter_id", how="left")
        late = new.filter(pl.col("t") <= pl.col("_last_t"))
        if late.height:
            again = (late["t"] == late["_last_t"]) & (late["reg"] == late["_last_reg"])
            repeats += int(again.sum())
            rejects.append(
                _rejects(
                    late.filter(~again),
                    "register read at or before the meter's previous read "
                    "(a meter's reads must come in time order)",
                )
            )
            new = new.filter(~(pl.col("t") <= pl.col("_last_t")).fill_null(False))
        new = new.drop("_last_t", "_last_reg")
    meters = new.select(pl.col("meter_id").unique())
    carried = carry.join(meters, on="meter_id", how="semi")
    frame = pl.concat(
        [
            carried.select("meter_id", "t", "reg", _seed=pl.col("top"), _carried=pl.lit(True)),
            new.select("meter_id", "t", "reg", _seed=pl.col("reg"), _carried=pl.lit(False)),
        ]
    ).sort(keys)
    spans = _spans(frame, wrap_kwh, unit_kwh)
    records = _apportion(spans, step, tol, interval_s, keep_wrap_register)
    reject_frame = (
        pl.concat(rejects)
        if rejects
        else pl.DataFrame(schema={"raw": pl.String(), "reason": pl.String(), "line": pl.Int32()})
    )
    return Derived(records, _next_carry(spans, step), reject_frame, repeats)


def _rejects(rows: pl.DataFrame, reason: str) -> pl.DataFrame:
    return rows.select(raw=pl.col("_raw"), reason=pl.lit(reason), line=pl.col("_line"))


def _spans(frame: pl.DataFrame, wrap_kwh: float | None, unit_kwh: float) -> pl.DataFrame:
    """Per read: the energy of the span that ends at it, its flags, and the running
    totals the apportioning interpolates (``_c``: energy since the meter's first read
    here; ``_n64``/``_n32``: flagged spans so far)."""
    by = pl.col("meter_id")
    reg = pl.col("reg")
    prev = reg.shift(1).over(by)
    fall = (reg - prev) < 0
    if wrap_kwh is not None:
        wrap = pl.lit(wrap_kwh)
        rolled = fall & (reg - prev + wrap <= _KNOWN_WRAP_SHARE * wrap) & (reg < wrap)
    else:
        prev_units = prev / unit_kwh
        power = pl.lit(10.0).pow(prev_units.clip(lower_bound=1.0).log10().floor() + 1)
        wrap = power * unit_kwh
        rolled = (
            fall
            & (power >= _MIN_INFERRED_WRAP)
            & (prev_units >= 0.99 * power)
            & (reg / unit_kwh < 0.01 * power)
        )
    reset = fall & ~rolled & (reg < _RESET_SHARE * prev)
    backward = fall & ~rolled & ~reset
    out = frame.with_columns(
        _wrap=wrap,
        _rolled=rolled.fill_null(False),
        _reset=reset.fill_null(False),
        _back=backward.fill_null(False),
    ).with_columns(_epoch=(pl.col("_rolled") | pl.col("_reset")).cum_sum().over(by))
    out = out.with_columns(_top=pl.col("_seed").cum_max().over(["meter_id", "_epoch"]))
    top_prev = pl.col("_top").shift(1).over(by)
    energy = (
        pl.when(top_prev.is_null())
        .then(0.0)
        .when(pl.col("_rolled"))
        .then(pl.col("_wrap") - top_prev + reg)
        .when(pl.col("_reset"))
        .then(reg)
        .otherwise(pl.col("_top") - top_prev)
        .clip(lower_bound=0.0)
    )
    return out.with_columns(
        _e=energy,
        _us=pl.col("t").dt.epoch("us"),
    ).with_columns(
        _c=pl.col("_e").cum_sum().over(by),
        _n64=pl.col("_rolled").cast(pl.Int64).cum_sum().over(by),
        _n32=(pl.col("_reset") | pl.col("_back")).cast(pl.Int64).cum_sum().over(by),
    )


def _apportion(
    spans: pl.DataFrame, step: int, tol: int, interval_s: int, keep_wrap_register: bool
) -> pl.DataFrame:
    """The target intervals between each meter's reads, with their energy and flags."""
    nxt = spans.with_columns(
        [
            pl.col(c).shift(-1).over("meter_id").alias(f"{c}_next")
            for c in ("_us", "_c", "_n64", "_n32", "reg")
        ]
    )
    bounds = nxt.group_by("meter_id").agg(
        _first=pl.col("_us").min(),
        _last=pl.col("_us").max(),
        _carried_last=pl.col("_us").filter(pl.col("_carried")).max(),
    )
    start = -(-pl.col("_first") // step) * step  # the first grid point at or after a read
    resume = pl.col("_carried_last") // step * step  # the first interval not yet derived
    bounds = bounds.with_columns(
        _from=pl.max_horizontal(start, resume.fill_null(start)),
        _to=pl.col("_last") // step * step - step,
    ).filter(pl.col("_to") >= pl.col("_from"))
    grid = (
        bounds.select("meter_id", _g=pl.int_ranges("_from", pl.col("_to") + 1, step))
        .explode("_g")
        .with_columns(_end=pl.col("_g") + step)
        .sort("meter_id", "_g")
    )
    if not grid.height:
        return READING.empty().with_columns(pl.lit(0, dtype=pl.Int32).alias(FLAGS))
    reads = nxt.select(
        "meter_id",
        "_us",
        "_c",
        "_us_next",
        "_c_next",
        "_n64",
        "_n32",
        "_n64_next",
        "_n32_next",
        "reg",
        "reg_next",
    ).sort("meter_id", "_us")

    def at(point: str, tag: str) -> pl.DataFrame:
        found = (
            grid.select("meter_id", point)
            .sort("meter_id", point)
            .join_asof(
                reads,
                left_on=point,
                right_on="_us",
                by="meter_id",
                strategy="backward",
                check_sortedness=False,
            )
        )
        p = pl.col(point)
        share = (p - pl.col("_us")) / (pl.col("_us_next") - pl.col("_us"))
        value = (
            pl.when(p == pl.col("_us"))
            .then(pl.col("_c"))
            .otherwise(pl.col("_c") + (pl.col("_c_next") - pl.col("_c")) * share)
        )
        exact = p == pl.col("_us")
        before, after = p - pl.col("_us"), pl.col("_us_next") - p
        near_next = after.fill_null(tol + 1) < before
        return found.select(
            "meter_id",
            pl.col(point),
            value.alias(f"_c{tag}"),
            pl.col("_n64").alias(f"_l64{tag}"),
            pl.col("_n32").alias(f"_l32{tag}"),
            pl.when(exact).then(pl.col("_n64")).otherwise(pl.col("_n64_next")).alias(f"_r64{tag}"),
            pl.when(exact).then(pl.col("_n32")).otherwise(pl.col("_n32_next")).alias(f"_r32{tag}"),
            pl.min_horizontal(before, after.fill_null(before)).alias(f"_d{tag}"),
            pl.when(near_next)
            .then(pl.col("reg_next"))
            .otherwise(pl.col("reg"))
            .alias(f"_reg{tag}"),
        )

    start_at = at("_g", "s")
    end_at = at("_end", "e")
    joined = grid.join(start_at, on=["meter_id", "_g"], how="left").join(
        end_at, on=["meter_id", "_end"], how="left"
    )
    wrapped = pl.col("_r64e") - pl.col("_l64s") > 0
    at_end = pl.col("_de") <= tol
    flags = (
        pl.when(wrapped).then(_ROLLOVER).otherwise(0)
        | pl.when(pl.col("_r32e") - pl.col("_l32s") > 0).then(_MISMATCH).otherwise(0)
        | pl.when((pl.col("_ds") > tol) | (pl.col("_de") > tol)).then(_ESTIMATED).otherwise(0)
    )
    derived = joined.select(
        "meter_id",
        ts=pl.from_epoch("_g", time_unit="us").dt.replace_time_zone("UTC"),
        interval_s=pl.lit(interval_s, dtype=pl.Int32),
        import_kwh=(pl.col("_ce") - pl.col("_cs")).clip(lower_bound=0.0),
        register_kwh=pl.when(at_end & (pl.lit(keep_wrap_register) | ~wrapped)).then(
            pl.col("_rege")
        ),
        **{FLAGS: flags.cast(pl.Int32)},
    )
    return derived.select(
        [
            pl.col(n).cast(t) if n in derived.columns else pl.lit(None, dtype=t).alias(n)
            for n, t in READING.schema.items()
        ]
        + [pl.col(FLAGS)]
    )


def _next_carry(spans: pl.DataFrame, step: int) -> pl.DataFrame:
    """Per meter, the reads from the last one at or before the start of its last
    unfinished interval: what the next batch needs to continue."""
    resume = (pl.col("_us").max() // step * step).over("meter_id")
    anchor = pl.col("_us").filter(pl.col("_us") <= resume).max().over("meter_id")
    return spans.filter(pl.col("_us") >= anchor).select("meter_id", "t", "reg", top=pl.col("_top"))
