"""The aggregates job: the day's energy aggregates, re-derived from its readings.

Marks alone keep the aggregates right as data arrives (:mod:`metrify.stores.aggregates`);
the daily job re-derives its whole interval anyway, so a re-run or a backfill
recomputes the day from the readings whatever happened to the marks, and takes every
other marked day along (a late reading for last week is rebuilt here too).
"""

from __future__ import annotations

from metrify.batch.context import JobContext, Outcome
from metrify.stores import aggregates
from metrify.stores.aggregate_days import mark_days

__all__ = ["run"]


def run(ctx: JobContext) -> Outcome:
    marked = mark_days(ctx.conn, ctx.interval.day, ctx.interval.day)
    done = aggregates.refresh(ctx.conn)
    return Outcome(
        rows=done.meter_days,
        details={
            "day_meter_days": marked,
            "meter_days": done.meter_days,
            "group_days": done.group_days,
        },
    )
