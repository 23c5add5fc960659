"""The lake compaction job: the day's small files of each kind merged into few.

Compaction itself belongs to the lake's upkeep (:func:`metrify.pipeline.lake_upkeep.compact`);
this job only runs it over its interval for every kind the lake holds.
"""

from __future__ import annotations

from typing import Any

from metrify.batch.context import JobContext, JobSkipped, Outcome, describe
from metrify.pipeline.lake_upkeep import compact
from metrify.pipeline.lakesync import KINDS

__all__ = ["run"]


def run(ctx: JobContext) -> Outcome:
    if ctx.lake is None:
        raise JobSkipped("the lake is disabled (METRIFY_LAKE_ENABLED=false)")
    per_kind: dict[str, Any] = {}
    for kind in KINDS:
        per_kind[kind] = describe(compact(ctx.lake, kind, [ctx.interval.day]))
    return Outcome(details={"kinds": per_kind})
