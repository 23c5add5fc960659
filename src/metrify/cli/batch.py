"""``metrify batch run|jobs|runs``: the daily batch jobs over one day or a backfill.

``run`` hands days and jobs to :mod:`metrify.batch.runner` (the same runner an Airflow
task uses), shows each job as it runs, and exits 0 when every job ended ok (or was
skipped, or done earlier with ``--skip-done``), 1 when one failed, 2 on bad input.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from metrify.batch import runner
from metrify.batch.context import Interval
from metrify.batch.registry import JOBS, JobSpec, spec
from metrify.batch.runner import JobRun
from metrify.cli.apps import batch_app
from metrify.cli.common import (
    UserError,
    audit_act,
    console,
    err,
    friendly,
    load_settings,
    progress_bar,
)
from metrify.pipeline.session import open_session

__all__ = ["batch_jobs", "batch_run", "batch_runs"]

#: how each outcome is shown
STYLES = {"ok": "green", "failed": "red", "skipped": "yellow", "done": "dim"}


#: words a scheduler without a templating step (a Kubernetes CronJob, cron) can pass
RELATIVE_DAYS = {"today": 0, "yesterday": 1}


def _day(text: str, option: str) -> dt.date:
    """A day given as ``YYYY-MM-DD``, or ``yesterday`` / ``today`` in UTC (a CronJob has no
    templating to write the date in; the day before its start is the one just over)."""
    back = RELATIVE_DAYS.get(text.strip().lower())
    if back is not None:
        return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=back)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option} {text}: expected a UTC day like 2013-03-01, or yesterday or today"
        ) from None


def _days(date: str | None, first: str | None, last: str | None) -> tuple[dt.date, dt.date]:
    """(first, last) day asked for, or a one-line error."""
    if date is not None:
        if first is not None or last is not None:
            raise UserError("give --date, or --from and --to, not both")
        day = _day(date, "--date")
        return day, day
    if first is None or last is None:
        raise UserError("give --date D, or --from D1 and --to D2 (a backfill, both included)")
    return _day(first, "--from"), _day(last, "--to")


@batch_app.command("run")
@friendly
def batch_run(
    date: Annotated[
        str | None,
        typer.Option("--date", help="the UTC day to run: YYYY-MM-DD, yesterday or today"),
    ] = None,
    first: Annotated[str | None, typer.Option("--from", help="first UTC day of a backfill")] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="last UTC day of a backfill, included")
    ] = None,
    job: Annotated[
        list[str] | None,
        typer.Option("--job", help="run only this job (repeatable; default: all, in order)"),
    ] = None,
    skip_done: Annotated[
        bool, typer.Option("--skip-done", help="leave out jobs that already ran a day ok")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per job run")] = False,
) -> None:
    """Run the day's jobs (aggregates, compact, dbt, anomalies, quality, forecast) per UTC
    day."""
    since, until = _days(date, first, last)
    try:
        intervals = runner.days(since, until)
        jobs = runner.select(job)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    settings = load_settings()
    total = len(intervals) * len(jobs)
    counts: Counter[str] = Counter()
    with open_session(settings) as session, progress_bar(total, unit="jobs") as bar:
        task = bar.add_task("batch", total=total)

        def starting(what: JobSpec, interval: Interval) -> None:
            bar.update(task, description=f"{interval.day} {what.name}")
            if not err.is_terminal and not as_json:
                err.print(f"{interval.day} {what.name}: running", highlight=False)

        def finished(run: JobRun) -> None:
            bar.advance(task)
            counts[run.status] += 1
            if as_json:
                sys.stdout.write(orjson.dumps(run.as_dict(), default=str).decode() + "\n")
                sys.stdout.flush()
            else:
                # above the bar on a terminal (where the bar is), else on stdout
                (bar.console if err.is_terminal else console).print(_line(run), highlight=False)

        runs = runner.run_jobs(
            settings,
            session.conn,
            session.lake,
            intervals,
            jobs,
            skip_done=skip_done,
            runner="cli",
            on_start=starting,
            on_end=finished,
        )
        audit_act(
            session.conn,
            "batch.run",
            ",".join(j.name for j in jobs),
            {
                "from": since.isoformat(),
                "to": until.isoformat(),
                "skip_done": skip_done,
                **{status: counts[status] for status in STYLES},
            },
        )
    summary = ", ".join(f"{counts[s]} {s}" for s in STYLES if counts[s])
    err.print(f"{len(runs)} job run(s) over {len(intervals)} day(s): {summary}", highlight=False)
    if counts["failed"]:
        raise typer.Exit(1)


def _line(run: JobRun) -> str:
    style = STYLES.get(run.status, "")
    rows = "" if run.rows is None else f", {run.rows:,} rows"
    why = f": {escape(run.error)}" if run.error else ""
    took = "" if run.status == "done" else f" in {run.seconds:.2f} s"
    status = "done earlier" if run.status == "done" else run.status
    return f"{run.interval.day} {run.job}: [{style}]{status}[/{style}]{took}{rows}{why}"


@batch_app.command("jobs")
@friendly
def batch_jobs() -> None:
    """The jobs, in the order they run, with what each needs."""
    table = Table("job", "needs", "what it does")
    for one in JOBS:
        table.add_row(one.name, ", ".join(one.needs) or "-", one.summary)
    console.print(table)


@batch_app.command("runs")
@friendly
def batch_runs(
    first: Annotated[str | None, typer.Option("--from", help="first UTC day")] = None,
    last: Annotated[str | None, typer.Option("--to", help="last UTC day, included")] = None,
    job: Annotated[str | None, typer.Option("--job", help="one job")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per run")] = False,
) -> None:
    """The run log: every run of every job, oldest day first."""
    from metrify.stores.batch_runs import history

    if job is not None:
        try:
            spec(job)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    since = _day(first, "--from") if first else None
    until = _day(last, "--to") + dt.timedelta(days=1) if last else None
    settings = load_settings()
    with open_session(settings) as session:
        rows = history(
            session.conn,
            job=job,
            since=dt.datetime.combine(since, dt.time(), dt.UTC) if since else None,
            until=dt.datetime.combine(until, dt.time(), dt.UTC) if until else None,
            limit=limit,
        )
    if as_json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row.as_dict(), default=str).decode() + "\n")
        return
    if not rows:
        console.print("no batch runs recorded")
        return
    table = Table(box=None)
    for name in ("day", "job", "status", "finished UTC", "s", "rows", "by"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("s", "rows") else "left")
    table.add_column("error")
    for row in rows:
        took = (row.finished_at - row.started_at).total_seconds() if row.finished_at else None
        table.add_row(
            row.interval_start.date().isoformat(),
            row.job,
            row.status,
            row.finished_at.astimezone(dt.UTC).strftime("%m-%d %H:%M") if row.finished_at else "",
            "" if took is None else f"{took:.1f}",
            "" if row.rows is None else f"{row.rows:,}",
            row.runner or "",
            escape(row.error or ""),
        )
    console.print(table)
