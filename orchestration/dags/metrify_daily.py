"""Metrify's daily batch jobs as one Airflow DAG: a task per job, run per data interval.

The jobs, their order and their needs are Metrify's own list
(``src/metrify/batch/registry.py``), read here by path: it imports only the standard
library, and this file runs in Airflow's environment, which does not hold Metrify.
Each task runs its job in Metrify's environment (``METRIFY_PYTHON``, default
``<repo>/.venv/bin/python``) through ``ExternalPythonOperator``, calling the same
function ``metrify batch run`` calls (:func:`metrify.batch.runner.run_for_airflow`)
for the run's ``data_interval_start``. The task's environment (``METRIFY_*``) is
Airflow's own, inherited.

* Data interval: one UTC day, [00:00, 24:00) (a cron data-interval timetable): the
  scheduled run of day D starts once D is over. A manual run (``airflow dags test
  metrify_daily D``, a trigger) covers the last whole day before D.
* A job that fails fails its task, which retries (``METRIFY_AIRFLOW_RETRIES``, default
  2, ``METRIFY_AIRFLOW_RETRY_DELAY_S`` apart, default 300, growing); a job this build
  lacks (or the lake disabled) leaves its task skipped. A task whose need failed does
  not run (``none_failed``): the others go on, as with ``metrify batch run``.
* Backfill: ``airflow backfill create --dag-id metrify_daily --from-date D1 --to-date
  D2``; ``METRIFY_AIRFLOW_CATCHUP=true`` makes the scheduler run every day from
  ``METRIFY_AIRFLOW_START`` (default 2024-01-01) on its own.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from airflow.providers.standard.operators.python import ExternalPythonOperator
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

REPO = Path(__file__).resolve().parents[2]


def _registry() -> ModuleType:
    """Metrify's list of jobs (``metrify.batch.registry``), loaded from its file so that
    nothing else of Metrify is imported into Airflow's process."""
    src = Path(os.environ.get("METRIFY_SRC", REPO / "src"))
    path = src / "metrify" / "batch" / "registry.py"
    spec = importlib.util.spec_from_file_location("_metrify_batch_registry", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no Metrify job registry at {path} (set METRIFY_SRC)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def run_metrify_job(job: str, data_interval_start: str) -> Any:
    """Run one Metrify job over the interval starting at ``data_interval_start``.

    Runs in Metrify's environment, not Airflow's: the operator sends this function's
    source there, so it imports what it needs itself and refers to nothing outside."""
    from metrify.batch.runner import run_for_airflow

    return run_for_airflow(job, data_interval_start)


registry = _registry()
METRIFY_PYTHON = os.environ.get("METRIFY_PYTHON", str(REPO / ".venv" / "bin" / "python"))
START = dt.datetime.fromisoformat(os.environ.get("METRIFY_AIRFLOW_START", "2024-01-01"))
CATCHUP = os.environ.get("METRIFY_AIRFLOW_CATCHUP", "false").lower() in ("1", "true", "yes")
RETRIES = int(os.environ.get("METRIFY_AIRFLOW_RETRIES", "2"))
RETRY_DELAY = dt.timedelta(seconds=float(os.environ.get("METRIFY_AIRFLOW_RETRY_DELAY_S", "300")))

with DAG(
    dag_id="metrify_daily",
    description="Metrify's daily jobs: aggregates, lake compaction, dbt, anomalies, quality",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START.replace(tzinfo=dt.UTC),
    catchup=CATCHUP,
    max_active_runs=1,
    default_args={
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
    },
    tags=["metrify"],
    doc_md=__doc__,
) as dag:
    tasks = {
        job.name: ExternalPythonOperator(
            task_id=job.name,
            doc=job.summary,
            python=METRIFY_PYTHON,
            python_callable=run_metrify_job,
            op_kwargs={
                "job": job.name,
                "data_interval_start": "{{ data_interval_start.isoformat() }}",
            },
            expect_airflow=False,
            skip_on_exit_code=registry.SKIP_EXIT_CODE,
            trigger_rule="none_failed",
        )
        for job in registry.JOBS
    }
    for job in registry.JOBS:
        for need in job.needs:
            tasks[need] >> tasks[job.name]
