"""Keeping the lake's tables small and its storage bounded: compaction, vacuum, the
one-shot conversion of the old layout.

Each batch (a stream batch, an API request) commits its own small files; a day of a
busy fleet collects hundreds. :func:`compact` rewrites each day's files into few large
ones in one commit per day: readers see the same rows before and after, and earlier
versions still read the old files (time travel) until :func:`vacuum` deletes the files
no version within the retention reads. These are plain functions so that ``metrify
lake compact|vacuum`` and the batch job (``metrify batch run``) call the same code.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from metrify.stores.lake import Lake, legacy

#: the retention ``metrify lake vacuum`` keeps by default: a week of time travel
DEFAULT_RETAIN_HOURS = 168
#: below this a vacuum could delete files that a long load or a reader still opens
#: (a day's catch-up, a dbt run over an older snapshot); only ``force`` goes lower
MIN_RETAIN_HOURS = 24


class RetentionTooShort(ValueError):
    """A vacuum that would delete what it should not: less than
    :data:`MIN_RETAIN_HOURS` kept without ``force``, or old-layout files not yet converted."""


@dataclass(frozen=True)
class DayCompaction:
    day: dt.date
    files_before: int
    files_after: int


@dataclass
class CompactResult:
    """What :func:`compact` did to one kind's table."""

    kind: str
    #: data files of the days looked at, before and after
    files_before: int = 0
    files_after: int = 0
    #: the days rewritten (those with more than one file)
    days: list[DayCompaction] = field(default_factory=list)
    days_checked: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "days_checked": self.days_checked,
            "days_compacted": len(self.days),
            "files_before": self.files_before,
            "files_after": self.files_after,
            "seconds": round(self.seconds, 3),
        }


def compact(
    lake: Lake,
    kind: str,
    days: list[dt.date] | None = None,
    progress: Callable[[dt.date, int, int], None] | None = None,
) -> CompactResult:
    """Rewrite the small files of each day (all days if ``days`` is None) into as few as
    the target file size allows, one commit per day. Days with one file are left alone,
    so a re-run does nothing. ``progress(day, before, after)`` is called per day."""
    started = time.perf_counter()
    counts = lake.file_counts(kind)
    wanted = sorted(counts) if days is None else sorted(d for d in set(days) if d in counts)
    result = CompactResult(kind, days_checked=len(wanted))
    for day in wanted:
        before = counts[day]
        after = before
        if before > 1:
            lake.compact_day(kind, day)
            after = len(lake.day_files(kind, day))
            result.days.append(DayCompaction(day, before, after))
        result.files_before += before
        result.files_after += after
        if progress is not None:
            progress(day, before, after)
    result.seconds = time.perf_counter() - started
    return result


def vacuum(
    lake: Lake,
    kind: str,
    retain_hours: float = DEFAULT_RETAIN_HOURS,
    *,
    dry_run: bool = False,
    force: bool = False,
) -> list[str]:
    """Delete (``dry_run``: list) the files of ``kind``'s table that no version of the
    last ``retain_hours`` reads. Time travel reaches back as far as the retention."""
    if retain_hours < 0:
        raise RetentionTooShort(f"a retention of {retain_hours:g} h is negative")
    if retain_hours < MIN_RETAIN_HOURS and not force:
        raise RetentionTooShort(
            f"a retention of {retain_hours:g} h is below the safe minimum of"
            f" {MIN_RETAIN_HOURS} h (a running load or reader may still open those files);"
            " pass --force to vacuum anyway"
        )
    if legacy.holds_files(lake.url, kind):
        # a full vacuum deletes every file the log does not name: the old layout's too
        raise RetentionTooShort(
            f"the lake's {kind} folder still holds files of the old layout, which a vacuum"
            " would delete; run `metrify lake convert` first"
        )
    return lake.vacuum(kind, retain_hours, dry_run)


def legacy_days(lake: Lake, kind: str) -> dict[dt.date, list[str]]:
    """The days of ``kind`` still in the old plain-Parquet layout, with their files."""
    return legacy.files(lake.url, kind)


def convert(lake: Lake, kind: str, progress: Callable[[dt.date, int], None] | None = None) -> int:
    """Move every day of the old layout into ``kind``'s Delta table; the rows moved."""
    moved = 0
    for day, paths in sorted(legacy_days(lake, kind).items()):
        rows = lake.convert_day(kind, day, paths)
        moved += rows
        if progress is not None:
            progress(day, rows)
    return moved
