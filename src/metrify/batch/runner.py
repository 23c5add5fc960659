"""Running batch jobs over data intervals, and recording each run in ``batch_runs``.

One runner for every door: ``metrify batch run`` hands it days and jobs, an Airflow
task hands it one job and its ``data_interval_start`` (:func:`run_for_airflow`). Per
interval, oldest first, the jobs run in the registry's order (:mod:`metrify.batch.registry`):

* a job whose need failed (or was itself held back) in this interval is not run and
  is recorded as ``skipped`` with the reason; the jobs that do not need it go on;
* a job that raises is recorded as ``failed`` with the first line of its error;
* a job that cannot run in this build or configuration is ``skipped`` with why;
* with ``skip_done``, a job that already finished this interval ``ok`` is not run
  again (and not recorded again); otherwise it is re-run, which each job makes safe.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from metrify.batch.context import Interval, JobContext, JobSkipped, Outcome, interval_of
from metrify.batch.registry import JOBS, SKIP_EXIT_CODE, JobSpec, spec
from metrify.batch.resolve import resolve
from metrify.ops import metrics, tracing
from metrify.settings import Settings
from metrify.stores import batch_runs
from metrify.stores.lake import Lake
from metrify.stores.pools import Connection

__all__ = [
    "MAX_DAYS",
    "JobFailed",
    "JobRun",
    "days",
    "run_for_airflow",
    "run_jobs",
    "select",
]

log = logging.getLogger(__name__)

#: the longest backfill one command runs (about ten years of days)
MAX_DAYS: Final = 3700


@dataclass
class JobRun:
    """One job over one interval: how it ended, and its run log row's id (None when it
    was not run because an earlier run had done the interval)."""

    job: str
    interval: Interval
    status: str  # ok, failed, skipped, or done (an earlier ok run, with skip_done)
    seconds: float = 0.0
    rows: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    run_id: int | None = None
    #: what a failed job raised (not stored; for a caller that shows the trace)
    exception: BaseException | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "date": self.interval.day.isoformat(),
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "details": self.details,
            "error": self.error,
            "run_id": self.run_id,
        }


class JobFailed(RuntimeError):
    """A job failed (raised by :func:`run_for_airflow`, so the task fails and retries)."""


def days(first: dt.date, last: dt.date) -> list[Interval]:
    """The intervals of the UTC days ``first`` to ``last``, both included."""
    if last < first:
        raise ValueError(f"--from {first} is after --to {last}")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise ValueError(f"{count} days asked; at most {MAX_DAYS} per run")
    return [Interval(first + dt.timedelta(days=i)) for i in range(count)]


def select(names: Sequence[str] | None) -> list[JobSpec]:
    """The jobs named (all when none), in run order; ValueError for an unknown name."""
    if not names:
        return list(JOBS)
    wanted = {spec(name).name for name in names}
    return [job for job in JOBS if job.name in wanted]


Starting = Callable[[JobSpec, Interval], None]
Finished = Callable[[JobRun], None]


def run_jobs(
    settings: Settings,
    conn: Connection,
    lake: Lake | None,
    intervals: Sequence[Interval],
    jobs: Sequence[JobSpec],
    *,
    skip_done: bool = False,
    runner: str = "cli",
    on_start: Starting | None = None,
    on_end: Finished | None = None,
) -> list[JobRun]:
    """Run ``jobs`` over each of ``intervals`` (see the module's docstring); every run,
    in the order they ran."""
    runs: list[JobRun] = []
    for interval in intervals:
        held: dict[str, str] = {}  # job -> why it did not succeed in this interval
        for job in jobs:
            if on_start is not None:
                on_start(job, interval)
            blocked = [need for need in job.needs if need in held]
            run = _one(settings, conn, lake, interval, job, blocked, skip_done, runner)
            if run.status == "failed" or (blocked and run.status == "skipped"):
                held[job.name] = run.status
            runs.append(run)
            if on_end is not None:
                on_end(run)
    return runs


def _one(
    settings: Settings,
    conn: Connection,
    lake: Lake | None,
    interval: Interval,
    job: JobSpec,
    blocked: list[str],
    skip_done: bool,
    runner: str,
) -> JobRun:
    if skip_done and batch_runs.done(conn, job.name, interval.start):
        return JobRun(job.name, interval, "done")
    with tracing.span(
        f"batch {job.name}",
        {"metrify.job": job.name, "metrify.interval.start": interval.start.isoformat()},
    ) as span:
        run = _run(settings, conn, lake, interval, job, blocked, runner)
        if span is not None:
            span.set_attribute("metrify.job.status", run.status)
            if run.status == "failed":
                tracing.failed(span, run.error or "failed")
    metrics.observe_job(job.name, run.status, run.seconds, interval.end.timestamp(), time.time())
    return run


def _run(
    settings: Settings,
    conn: Connection,
    lake: Lake | None,
    interval: Interval,
    job: JobSpec,
    blocked: list[str],
    runner: str,
) -> JobRun:
    run_id = batch_runs.start(conn, job.name, interval.start, interval.end, runner)
    run = JobRun(job.name, interval, "ok", run_id=run_id)
    began = time.perf_counter()
    if blocked:
        run.status = "skipped"
        run.details = {"needs": blocked}
        run.error = f"needs {', '.join(blocked)}, which did not succeed for {interval.day}"
    else:
        try:
            outcome: Outcome = resolve(job.target)(JobContext(settings, conn, lake, interval))
        except JobSkipped as exc:
            run.status, run.error = "skipped", str(exc)
        except KeyboardInterrupt:
            batch_runs.finish(conn, run_id, "failed", error="interrupted")
            raise
        except Exception as exc:
            # one line at the default level; the trace with METRIFY_LOG_LEVEL=DEBUG, and
            # on the run for a caller that shows traces (an Airflow task's log)
            log.warning("batch job %s failed for %s: %s", job.name, interval.day, exc)
            log.debug("batch job %s failed", job.name, exc_info=True)
            run.status, run.error, run.exception = "failed", _first_line(exc), exc
        else:
            run.rows, run.details = outcome.rows, outcome.details
    run.seconds = time.perf_counter() - began
    batch_runs.finish(
        conn,
        run_id,
        run.status,
        rows=run.rows,
        details={**run.details, "seconds": round(run.seconds, 3)},
        error=run.error,
    )
    return run


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_for_airflow(job: str, start: str | dt.datetime) -> dict[str, Any]:
    """One job over the interval starting at ``start`` (Airflow's
    ``data_interval_start``), as an Airflow task runs it: recorded in ``batch_runs``
    like any run, :class:`JobFailed` when it fails (so the task fails, and retries),
    exit status :data:`~metrify.batch.registry.SKIP_EXIT_CODE` when it is skipped (the
    task shows as skipped, and the jobs needing it still run), else its run as a dict."""
    from metrify.pipeline.session import open_session
    from metrify.settings import get_settings

    interval = interval_of(start)
    settings = get_settings()
    tracing.configure(settings.tracing)
    with open_session(settings) as session:
        [run] = run_jobs(
            settings, session.conn, session.lake, [interval], [spec(job)], runner="airflow"
        )
    result = run.as_dict()
    print(f"metrify batch: {job} {interval.day}: {run.status} {result}", flush=True)
    if run.status == "failed":
        raise JobFailed(f"{job} {interval.day}: {run.error}") from run.exception
    if run.status == "skipped":
        raise SystemExit(SKIP_EXIT_CODE)
    return result
