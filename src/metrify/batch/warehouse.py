"""The dbt job: ``dbt build`` of the warehouse models for the data interval.

The dbt project and the way it is run belong to :mod:`metrify.batch.dbt`
(:func:`~metrify.batch.dbt.build`); this job calls it for one interval, handing the
interval to the models as the dbt vars ``data_interval_start`` and ``data_interval_end``
(ISO, UTC) and ``ds`` (the day), the names analytics engineers know from Airflow, so
incremental models can limit themselves to it. A model that does not build or a dbt
test that fails raises :class:`~metrify.batch.dbt.DbtError`, which fails the job with
dbt's message.
"""

from __future__ import annotations

from metrify.batch.context import JobContext, Outcome, describe
from metrify.batch.dbt import build

__all__ = ["run"]


def run(ctx: JobContext) -> Outcome:
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
    rows = details.get("rows")
    return Outcome(rows=rows if isinstance(rows, int) else None, details=details)
