"""The forecast job: day-ahead forecasts of the fleet, every grid node and every meter,
issued at the end of the data interval.

The interval's readings are in (the job needs ``aggregates``), so the issue time is the
interval's end and each forecast uses exactly the data up to it: the same day-ahead
forecast whenever the job runs, so a re-run or a backfill replaces the same issue
(:func:`metrify.stores.forecasts.write`) and adds nothing. A day-ahead forecast issued
then covers the next local day after the issue's (in the fleet's zone, or the meter's).

Subjects the models cannot forecast yet (a meter with a week of data) are counted and
named in the run log, not failures: a fleet always has new meters.
"""

from __future__ import annotations

from metrify.batch.context import JobContext, Outcome
from metrify.batch.forecasting import forecast_groups, forecast_meters

__all__ = ["run"]


def run(ctx: JobContext) -> Outcome:
    issue = ctx.interval.end
    tz = ctx.settings.fleet_timezone
    days_off = ctx.settings.holidays
    groups = forecast_groups(ctx.conn, issue=issue, fleet_tz=tz, holidays=days_off)
    meters = forecast_meters(ctx.conn, issue=issue, fleet_tz=tz, holidays=days_off)
    return Outcome(
        rows=groups.rows + meters.rows,
        details={
            "issued_at": issue.isoformat(),
            "horizon": "day-ahead",
            "groups": groups.as_dict(),
            "meters": meters.as_dict(),
        },
    )
