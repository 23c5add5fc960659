"""The dbt job: ``dbt build`` of the warehouse models for the data interval.

The dbt project and the way it is run belong to :mod:`metrify.batch.dbt` (:data:`BUILD`,
``build(settings, target=None, select=None, full_refresh=False, vars=None) ->
DbtResult``); this job calls it for one interval, handing the interval to the models as
the dbt vars ``data_interval_start`` and ``data_interval_end`` (ISO, UTC) and ``ds`` (the
day), the names analytics engineers know from Airflow, so incremental models can limit
themselves to it. The function is looked up when the job runs: a build without it
reports the job as skipped.

A result that says it failed (``ok`` or ``success`` false) fails the job with its
message, so a failing dbt test fails the run.
"""

from __future__ import annotations

from metrify.batch.context import JobContext, Outcome, describe
from metrify.batch.resolve import resolve

__all__ = ["BUILD", "DbtFailed", "run"]

#: where the dbt runner lives, as ``module:function``
BUILD = "metrify.batch.dbt:build"


class DbtFailed(RuntimeError):
    """dbt ran and reported failure (a model that did not build, a test that failed)."""


def run(ctx: JobContext) -> Outcome:
    build = resolve(BUILD)
    interval = ctx.interval
    result = build(
        ctx.settings,
        vars={
            "data_interval_start": interval.start.isoformat(),
            "data_interval_end": interval.end.isoformat(),
            "ds": interval.day.isoformat(),
        },
    )
    details = describe(result)
    for flag in ("ok", "success"):
        if getattr(result, flag, True) is False:
            message = getattr(result, "message", None) or getattr(result, "error", None)
            raise DbtFailed(f"dbt build failed: {message or details}")
    rows = details.get("rows")
    return Outcome(rows=rows if isinstance(rows, int) else None, details=details)
