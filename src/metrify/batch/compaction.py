"""The lake compaction job: the day's small files of each kind merged into few.

Compaction itself belongs to the lake's code (:data:`COMPACT`, ``compact(lake, kind,
days) -> CompactResult``); this job only runs it over its interval for every kind the
lake holds. The function is looked up when the job runs, so a build without it
reports the job as skipped (and names what is missing) instead of failing to import.
"""

from __future__ import annotations

from typing import Any

from metrify.batch.context import JobContext, JobSkipped, Outcome, describe
from metrify.batch.resolve import resolve
from metrify.pipeline.lakesync import KINDS

__all__ = ["COMPACT", "run"]

#: where the lake's compaction lives, as ``module:function``
COMPACT = "metrify.pipeline.lakesync:compact"


def run(ctx: JobContext) -> Outcome:
    if ctx.lake is None:
        raise JobSkipped("the lake is disabled (METRIFY_LAKE_ENABLED=false)")
    compact = resolve(COMPACT)
    per_kind: dict[str, Any] = {}
    for kind in KINDS:
        per_kind[kind] = describe(compact(ctx.lake, kind, [ctx.interval.day]))
    return Outcome(details={"kinds": per_kind})
