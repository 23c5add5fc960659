"""Which batch jobs there are, in which order, and what each needs: data only.

One list for every scheduler: ``metrify batch run`` runs it in this order, and the
Airflow DAG (``orchestration/dags/metrify_daily.py``) makes one task per entry with an
edge per need. This module imports nothing but the standard library, so the Airflow
environment, which does not hold Metrify's dependencies, can read it to draw the DAG;
the jobs themselves run in Metrify's own environment (:mod:`metrify.batch.runner`).

A job that *needs* another waits for it and does not run over an interval where that
one failed (Airflow's ``none_failed`` trigger rule): it is recorded as skipped, and the
others go on.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["JOBS", "SKIP_EXIT_CODE", "JobSpec", "job_names", "spec"]

#: the exit status of an Airflow task whose job was skipped (the operator's
#: ``skip_on_exit_code``): the task shows as skipped, not failed
SKIP_EXIT_CODE = 99


@dataclass(frozen=True)
class JobSpec:
    """One job: its name, the jobs it needs, where its code is (``module:function``,
    imported when it runs) and one line on what it does."""

    name: str
    target: str
    summary: str
    needs: tuple[str, ...] = ()


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "aggregates",
        "metrify.batch.rollups:run",
        "rebuild the energy aggregates of the day from its readings (and every marked day)",
    ),
    JobSpec(
        "compact",
        "metrify.batch.compaction:run",
        "compact the lake's files of the day, per kind",
    ),
    JobSpec(
        "dbt",
        "metrify.batch.warehouse:run",
        "dbt build of the warehouse models for the day",
        needs=("aggregates", "compact"),
    ),
    JobSpec(
        "anomalies",
        "metrify.batch.anomaly_model:run",
        "the daily anomaly model (trained first when none exists) and feeder balance",
    ),
    JobSpec(
        "quality",
        "metrify.batch.quality_report:run",
        "the daily quality report under <home>/reports/quality/<date>.{json,md}",
        needs=("aggregates",),
    ),
    JobSpec(
        "patterns",
        "metrify.batch.patterns:run",
        "consumption patterns of the trailing year: typical days, peak share, clusters",
        needs=("aggregates",),
    ),
    JobSpec(
        "baselines",
        "metrify.batch.baselines:run",
        "weather-normalised baselines (daily degree-day and hourly TOWT) of every meter"
        " with a weather station, fitted on the year up to the day",
    ),
    JobSpec(
        "forecast",
        "metrify.batch.forecast_job:run",
        "day-ahead forecasts of the fleet, every node and every meter, issued at the day's end",
        needs=("aggregates",),
    ),
)


def job_names() -> list[str]:
    """The jobs' names in run order."""
    return [job.name for job in JOBS]


def spec(name: str) -> JobSpec:
    """The job called ``name``; ValueError naming the known ones otherwise."""
    for job in JOBS:
        if job.name == name:
            return job
    raise ValueError(f"unknown job {name!r}; the jobs are {', '.join(job_names())}")
