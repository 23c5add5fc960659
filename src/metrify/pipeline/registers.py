"""Register reads through the pipeline: the carry between batches, the store's last
reads, and the derivation's quality bits on the judged rows.

The arithmetic is the stage's (:mod:`metrify.sources.registers`); this module holds what
spans batches and loads, since a stage never reads the store: each meter's carried reads
from the batch before, and, for a meter this run has not seen, its last stored read, so
a load continues where the one before it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.contracts.records import Quality, Status
from metrify.sources.decode import Decoded
from metrify.sources.mapping import REGISTER_FIELD, Mapping
from metrify.sources.registers import CARRY_SCHEMA, FLAGS, Derived, derive_intervals, empty_carry

__all__ = ["RegisterStage", "apply_flags", "split_flags"]

#: the derivation's bits that make a valid interval suspect, or estimated
_SUSPECT: Final = int(Quality.REGISTER_MISMATCH)
_ESTIMATED: Final = int(Quality.ESTIMATED)

#: the store's answer: meter -> (time, register) of its last stored read before a time
LastReads = Callable[[pl.DataFrame], pl.DataFrame]
#: the meters' reference attributes (``meter_id``, ``register_digits``, ...) by id
Meters = Callable[[pl.Series], pl.DataFrame]


class RegisterStage:
    """Derives interval energy from the register reads of one run's batches."""

    def __init__(self, last_reads: LastReads, meters: Meters | None = None) -> None:
        """``last_reads``: the store's last register reads (see :data:`LastReads`);
        ``meters``: the meters' reference attributes, whose ``register_digits`` (in kWh
        digits, as VEE reads them) give the width where ``--register-digits`` does not."""
        self._last_reads = last_reads
        self._meters = meters
        self._carry = empty_carry()
        self._seen: set[str] = set()
        #: the register's width in kWh digits, where the mapping gives a width that is
        #: a whole power of ten in kWh (VEE's register rule is told it)
        self.kwh_digits: int | None = None
        #: reads taken in and intervals derived, for the run's summary
        self.reads = 0
        self.intervals = 0

    def derive(
        self,
        decoded: Decoded,
        mapping: Mapping,
        *,
        first_line: int,
        lines: npt.NDArray[np.int64] | None,
    ) -> Derived:
        """The intervals of one decoded batch of reads (``ts`` = the read's instant)."""
        assert mapping.interval_s is not None  # derives_energy asks for it
        rows = decoded.rows.to_numpy()
        line = (rows + first_line) if lines is None else np.asarray(lines)[rows]
        reads = decoded.records.with_columns(_line=pl.Series(line.astype(np.int32)))
        self._seed(reads)
        unit_kwh = mapping.factor(REGISTER_FIELD)
        self.kwh_digits = _kwh_digits(mapping.register_digits, unit_kwh)
        widths = None
        ids = reads.get_column("meter_id").unique()
        meters = self._meters(ids) if self._meters is not None else None
        if mapping.register_digits is None and meters is not None:
            widths = meters.filter(pl.col("register_digits").is_not_null()).select(
                "meter_id", wrap_kwh=pl.lit(10.0).pow(pl.col("register_digits"))
            )
        derived = derive_intervals(
            reads,
            self._carry,
            interval_s=mapping.interval_s,
            unit_kwh=unit_kwh,
            digits=mapping.register_digits,
            keep_wrap_register=self.kwh_digits is not None,
            widths=widths,
            zones=_zones(meters),
        )
        touched = derived.carry.get_column("meter_id").unique()
        self._carry = pl.concat(
            [self._carry.filter(~pl.col("meter_id").is_in(touched.implode())), derived.carry]
        )
        self.reads += reads.height
        self.intervals += derived.records.height
        return derived

    def vee_meters(self, meters: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
        """The meters' attributes for VEE with the register's width filled in for the
        meters whose energy this run derives (a reference row's own width wins), so
        that VEE's register rule sees the wraps the derivation found."""
        if self.kwh_digits is None:
            return meters
        derived = ids.unique().filter(ids.unique().is_in(list(self._seen)))
        if not derived.len():
            return meters
        absent = derived.filter(~derived.is_in(meters.get_column("meter_id").implode()))
        if absent.len():
            meters = pl.concat([meters, pl.DataFrame({"meter_id": absent})], how="diagonal")
        digits = meters.schema["register_digits"]
        return meters.with_columns(
            register_digits=pl.when(pl.col("meter_id").is_in(derived.implode()))
            .then(pl.col("register_digits").fill_null(pl.lit(self.kwh_digits, dtype=digits)))
            .otherwise(pl.col("register_digits"))
        )

    def _seed(self, reads: pl.DataFrame) -> None:
        """Carry the last stored read of each meter seen for the first time in this run."""
        firsts = (
            reads.filter(~pl.col("meter_id").is_in(list(self._seen)))
            .group_by("meter_id")
            .agg(until=pl.col("ts").min())
        )
        if not firsts.height:
            return
        self._seen.update(firsts.get_column("meter_id").to_list())
        stored = self._last_reads(firsts)
        if stored.height:
            self._carry = pl.concat(
                [
                    self._carry,
                    # (whether the source estimated a stored read is not kept: taken as read)
                    stored.select("meter_id", "t", "reg", top=pl.col("reg"), est=pl.lit(False)),
                ]
            ).select(list(CARRY_SCHEMA))


def _zones(meters: pl.DataFrame | None) -> pl.DataFrame | None:
    """The meters' zones (``meter_id``, ``timezone``) from their attributes, which hold
    the zone a load declares for the meters it registers (see ``Pipeline``): intervals
    follow the clock VEE judges the meter's grid by."""
    if meters is None or "timezone" not in meters.columns:
        return None
    return meters.select("meter_id", "timezone").filter(pl.col("timezone").is_not_null())


def _kwh_digits(digits: int | None, unit_kwh: float) -> int | None:
    """The width in kWh digits of a register of ``digits`` digits of ``unit_kwh`` kWh
    each, when its wrap is a whole power of ten of kWh (Wh, kWh, MWh); else None."""
    if digits is None or unit_kwh <= 0:
        return None
    wrap = 10.0**digits * unit_kwh
    power = round(math.log10(wrap))
    if not 1 <= power <= 15 or abs(10.0**power - wrap) > 1e-9 * wrap:
        return None
    return power


def split_flags(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """``records`` without the derivation's bits, and those bits by key (None: none set),
    so that the quality stage judges exactly the contract's fields."""
    if FLAGS not in records.columns:
        return records, None
    flagged = records.filter(pl.col(FLAGS).fill_null(0) != 0).select("meter_id", "ts", FLAGS)
    return records.drop(FLAGS), flagged if flagged.height else None


def apply_flags(assessed: pl.DataFrame, flags: pl.DataFrame) -> pl.DataFrame:
    """Add the derivation's bits to the judged rows: an interval over an exchange, a
    reset or a backward step becomes suspect, an apportioned one estimated, where the
    quality stage found it valid."""
    joined = assessed.join(flags, on=["meter_id", "ts"], how="left")
    bits = pl.col(FLAGS).fill_null(0)
    valid = pl.col("status") == Status.VALID.value
    return joined.with_columns(
        quality=(pl.col("quality") | bits).cast(assessed.schema["quality"]),
        status=pl.when(valid & ((bits & _SUSPECT) != 0))
        .then(pl.lit(Status.SUSPECT.value))
        .when(valid & ((bits & _ESTIMATED) != 0))
        .then(pl.lit(Status.ESTIMATED.value))
        .otherwise(pl.col("status")),
    ).drop(FLAGS)
