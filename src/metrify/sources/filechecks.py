"""What a file load learns from its own rows on the way in, beside decoding them.

:class:`FileChecks` wraps a file's raw batches for the loader (one code path for every
file format): it gives each batch the interval detected for its meters when the load
has none (:mod:`metrify.sources.intervals`), and feeds a sample of the decoded times and
values to the DST profile check (:mod:`metrify.sources.dstcheck`). At the end of the
load :meth:`FileChecks.report` writes what was found into the load's summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

import numpy as np
import polars as pl

from metrify.contracts.records import Contract
from metrify.contracts.summary import Summary
from metrify.sources.batches import RawBatch
from metrify.sources.dstcheck import TO_DAY, ProfileCheck
from metrify.sources.intervals import (
    IntervalDetector,
    probe_records,
    stamp_intervals,
    summary_note,
)
from metrify.sources.mapping import Mapping

__all__ = ["FileChecks"]

#: the field whose daily profile the DST check compares, per kind
PROFILE_FIELD: Final = {"readings": "import_kwh", "grid": "load_mw"}
#: rows of a batch the DST check decodes at most (every n-th row beyond)
PROFILE_SAMPLE: Final = 50_000


class FileChecks:
    """Interval detection and the DST profile check of one load (all its files)."""

    def __init__(
        self, contract: Contract, mapping: Mapping, intervals: dict[str, int] | None = None
    ) -> None:
        """``intervals``: meters whose interval is known already (detected from the
        files before the load), so their rows are not parsed again to detect it."""
        self.contract = contract
        self.mapping = mapping
        self.detector = (
            IntervalDetector(decided=dict(intervals or {})) if mapping.detect_interval else None
        )
        value = PROFILE_FIELD.get(contract.kind)
        self.value = value
        self.profile = (
            ProfileCheck(mapping.tz)
            if value is not None and ProfileCheck.applies(mapping.tz)
            else None
        )

    def batches(self, batches: Iterable[RawBatch]) -> Iterator[tuple[RawBatch, Mapping]]:
        """One file's batches, each with the mapping to decode it with."""
        stamped: Iterable[tuple[RawBatch, Mapping]] = (
            stamp_intervals(batches, self.contract, self.mapping, self.detector)
            if self.detector is not None
            else ((batch, self.mapping) for batch in batches)
        )
        for batch, mapping in stamped:
            if self.profile is not None and batch.data.height:
                self._observe(batch.data, mapping)
            yield batch, mapping

    def _observe(self, data: pl.DataFrame, mapping: Mapping) -> None:
        assert self.profile is not None and self.value is not None
        if mapping.derives_energy(self.contract, data.columns):
            return  # a register is no daily profile
        near = self._near(data, mapping)
        if near is None:  # times that are no calendar text (epoch numbers): a sample
            step = max(1, data.height // PROFILE_SAMPLE)
            sample = data.gather_every(step) if step > 1 else data
        else:
            sample = data.filter(near)
            if not sample.height:
                return
        records = probe_records(self.contract, sample, mapping, self.value)
        if records.height:
            self.profile.observe(records.get_column("ts"), records.get_column(self.value))

    def _near(self, data: pl.DataFrame, mapping: Mapping) -> pl.Series | None:
        """Rows whose date (read cheaply from the start of the time's text) lies near a
        DST change of the zone: the only rows the profile check decodes. None when the
        times are not calendar text."""
        assert self.profile is not None
        column = mapping.resolve(data.columns).source_column("ts")
        if column not in data.columns:
            return None
        times = data.get_column(column)
        if times.dtype == pl.String:
            dates = (
                times.str.strip_chars()
                .str.slice(0, 10)
                .str.replace_all("/", "-", literal=True)
                .str.to_date("%Y-%m-%d", strict=False)
            )
        elif isinstance(times.dtype, pl.Datetime):
            dates = times.dt.date()
        else:
            return None
        if dates.null_count() == dates.len():
            return None
        low, high = dates.dt.year().min(), dates.dt.year().max()
        changes = self.profile.near_dates(range(int(low), int(high) + 1))  # type: ignore[arg-type]
        near = pl.Series(np.zeros(dates.len(), dtype=bool))
        for change in changes:
            apart = (dates - change).dt.total_days().abs()
            near = near | (apart <= TO_DAY + 1).fill_null(False)
        return near

    def report(self, summary: Summary) -> None:
        """Add the detected intervals and the DST warning to the load's summary."""
        if self.detector is not None:
            summary.intervals = self.detector.by_interval()
            summary.warnings.extend(summary_note(self.detector))
        if self.profile is not None:
            warning = self.profile.warning()
            if warning is not None:
                summary.warnings.append(warning)
