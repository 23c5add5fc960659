"""The daily anomaly job: the pattern model over the interval's day, and feeder balance.

It is :func:`metrify.batch.daily.run_daily`, as ``metrify anomalies daily`` runs it,
with one addition a scheduler needs: when no model has been trained yet, it trains
one on the :data:`TRAIN_DAYS` days before the interval first. Too little history to
train on (a fresh store) is not a failure: the day is checked without the model (the
feeder balance only) and the run log says why. Re-running a day is safe: an incident
found again extends the one recorded, it is not added twice.
"""

from __future__ import annotations

from metrify.batch.context import JobContext, Outcome
from metrify.batch.daily import model_path, run_daily, train

__all__ = ["TRAIN_DAYS", "run"]

#: days a first model learns from (as ``metrify anomalies train``'s default)
TRAIN_DAYS = 28


def run(ctx: JobContext) -> Outcome:
    home = ctx.settings.home
    day = ctx.interval.day
    model: dict[str, object] = {"path": str(model_path(home))}
    if model_path(home).exists():
        model["status"] = "existing"
    else:
        try:
            trained = train(ctx.conn, home, day, TRAIN_DAYS)
        except ValueError as exc:  # too few meter-days to learn from
            model.update(status="untrained", reason=str(exc))
        else:
            model.update(
                status="trained",
                meter_days=trained.trained_rows,
                days=trained.trained_days,
            )
    result = run_daily(ctx.conn, home, day, ctx.settings.anomaly)
    return Outcome(
        rows=sum(result.incidents.values()),
        details={"model": model, "incidents": result.incidents, "alerts": result.alerts},
    )
