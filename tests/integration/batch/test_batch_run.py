"""``metrify batch run`` on real London households: each job's effect in the store and
on disk, against figures computed here from the files; re-runs, backfills, bad input and
a failing job."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from integration.batch.london import (
    ALL_JOBS,
    check_report,
    day_energy,
    load_households,
    london_day_length,
)
from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()
DAY = dt.date(2013, 3, 5)  # London is on UTC: a local day is the UTC day


def batch(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, ["batch", "run", *args, "--json"])
    runs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, runs, result.stderr


def runs_of(conn: psycopg.Connection) -> list[tuple[str, dt.date, str, str | None]]:
    return [
        (job, start.date(), status, error)
        for job, start, status, error in conn.execute(
            "SELECT job, interval_start, status, error FROM batch_runs ORDER BY id"
        )
    ]


@pytest.mark.realdata
@pytest.mark.slow
def test_a_day_then_a_rerun(
    settings: Settings, database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    homes = load_households(tmp_path)
    assert day_energy(conn, DAY) == {}  # nothing rolled up before the batch
    code, runs, stderr = batch("--date", DAY.isoformat())
    assert code == 0, stderr
    by_job = {r["job"]: r for r in runs}
    assert list(by_job) == list(ALL_JOBS)
    for job in ALL_JOBS:
        assert by_job[job]["status"] == "ok", by_job[job]

    want = homes.utc_day_energy(database_url, DAY)
    got = day_energy(conn, DAY)
    assert got.keys() == want.keys()
    for meter, kwh in want.items():
        assert got[meter] == pytest.approx(kwh, abs=1e-6)
    check_report(settings.home, homes, DAY, database_url)
    model = by_job["anomalies"]["details"]["model"]  # type: ignore[index]
    assert model["status"] == "trained"  # 3 meters x 28 days of history before DAY
    assert Path(model["path"]).is_file()
    stored = runs_of(conn)
    assert [(j, d, s) for j, d, s, _ in stored] == [(r["job"], DAY, r["status"]) for r in runs]
    audit = conn.execute(
        "SELECT actor_kind, target, details FROM audit_log WHERE action = 'batch.run'"
    ).fetchall()
    assert len(audit) == 1 and audit[0][0] == "cli"
    assert audit[0][2]["from"] == audit[0][2]["to"] == DAY.isoformat()

    # The same day again, after someone damaged its aggregates by hand (no marks): the
    # re-run re-derives the day from the readings, the same totals as before, and the
    # log shows both runs of each job.
    start = dt.datetime.combine(DAY, dt.time(), dt.UTC)
    conn.execute(
        "UPDATE agg_meter_30m SET import_kwh = import_kwh + 1 WHERE bucket >= %s AND bucket < %s",
        (start, start + dt.timedelta(days=1)),
    )
    assert day_energy(conn, DAY) != pytest.approx(got)
    incidents = conn.execute("SELECT count(*), max(ts_end) FROM anomalies").fetchone()
    (settings.home / "reports" / "quality" / f"{DAY}.json").unlink()
    code, again, stderr = batch("--date", DAY.isoformat(), "--job", "aggregates",
                                "--job", "anomalies", "--job", "quality")  # fmt: skip
    assert code == 0, stderr
    assert [r["status"] for r in again] == ["ok", "ok", "ok"]
    assert again[1]["details"]["model"]["status"] == "existing"  # type: ignore[index]
    assert day_energy(conn, DAY) == pytest.approx(got, abs=1e-9)
    check_report(settings.home, homes, DAY, database_url)
    twice = conn.execute(
        "SELECT job, count(*) FROM batch_runs WHERE interval_start = %s AND status = 'ok'"
        " GROUP BY job",
        (dt.datetime.combine(DAY, dt.time(), dt.UTC),),
    ).fetchall()
    assert dict(twice) == {
        "aggregates": 2,
        "compact": 1,
        "dbt": 1,
        "anomalies": 2,
        "quality": 2,
        "patterns": 1,
        "baselines": 1,
        "forecast": 1,
    }
    # the day's incidents were found again, and extend the ones recorded, not added twice
    assert conn.execute("SELECT count(*), max(ts_end) FROM anomalies").fetchone() == incidents


@pytest.mark.realdata
@pytest.mark.slow
def test_backfill_covers_each_day_and_skip_done(
    settings: Settings, database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Three days across the spring clock change (London's 30 March has 46 half-hours)."""
    homes = load_households(tmp_path)
    days = [dt.date(2013, 3, 30) + dt.timedelta(days=i) for i in range(3)]
    code, runs, stderr = batch(
        "--from", str(days[0]), "--to", str(days[-1]), "--job", "quality", "--job", "aggregates"
    )
    assert code == 0, stderr
    # each day in turn, the jobs in the registry's order whatever order they were named
    assert [(r["date"], r["job"]) for r in runs] == [
        (str(d), j) for d in days for j in ("aggregates", "quality")
    ]
    assert all(r["status"] == "ok" for r in runs)
    assert london_day_length(days[1]) == 46
    for day in days:
        want = homes.utc_day_energy(database_url, day)
        got = day_energy(conn, day)
        for meter, kwh in want.items():
            assert got[meter] == pytest.approx(kwh, abs=1e-6)
        check_report(settings.home, homes, day, database_url)
    assert {(j, d) for j, d, s, _ in runs_of(conn) if s == "ok"} == {
        (j, d) for d in days for j in ("aggregates", "quality")
    }

    # --skip-done leaves the days done alone and runs the one not yet done
    code, runs, stderr = batch(
        "--from", str(days[0]), "--to", str(days[-1] + dt.timedelta(days=1)),
        "--job", "aggregates", "--skip-done",
    )  # fmt: skip
    assert code == 0, stderr
    assert [r["status"] for r in runs] == ["done", "done", "done", "ok"]
    assert len(runs_of(conn)) == 7


@pytest.mark.realdata
@pytest.mark.slow
def test_a_failing_job_fails_the_run_and_the_rest_still_run(
    settings: Settings, database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    load_households(tmp_path)
    # the report's folder cannot be made: a file stands where it goes
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "reports").write_text("not a folder")
    code, runs, stderr = batch("--date", str(DAY), "--job", "aggregates", "--job", "anomalies",
                               "--job", "quality")  # fmt: skip
    assert code == 1
    assert [(r["job"], r["status"]) for r in runs] == [
        ("aggregates", "ok"), ("anomalies", "ok"), ("quality", "failed")
    ]  # fmt: skip
    assert "reports" in str(runs[2]["error"])
    assert "Traceback" not in stderr

    # a failing aggregates job: the quality report, which needs it, is held back; the
    # anomaly model, which does not, runs. (A constraint no real row meets, as the
    # owner; removed again below.)
    (settings.home / "reports").unlink()
    conn.execute(
        "ALTER TABLE agg_meter_30m ADD CONSTRAINT batch_test_refuse CHECK (import_kwh < 0)"
        " NOT VALID"
    )
    try:
        code, runs, stderr = batch("--date", str(DAY + dt.timedelta(days=1)))
    finally:
        conn.execute("ALTER TABLE agg_meter_30m DROP CONSTRAINT batch_test_refuse")
    assert code == 1, stderr
    status = {r["job"]: (r["status"], r["error"]) for r in runs}
    assert status["aggregates"][0] == "failed"
    assert "batch_test_refuse" in str(status["aggregates"][1])
    assert status["anomalies"][0] == "ok"
    assert status["quality"] == (
        "skipped",
        f"needs aggregates, which did not succeed for {DAY + dt.timedelta(days=1)}",
    )
    assert status["dbt"][0] == "skipped"  # it needs the aggregates too
    stored = {(j, s) for j, d, s, _ in runs_of(conn) if d == DAY + dt.timedelta(days=1)}
    assert ("aggregates", "failed") in stored and ("quality", "skipped") in stored
    assert "1 failed" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --date D, or --from D1 and --to D2"),
        (["--date", "2013-03-01", "--from", "2013-03-01"], "not both"),
        (["--from", "2013-03-01"], "give --date D, or --from D1 and --to D2"),
        (["--date", "5 March"], "--date 5 March: expected a UTC day"),
        (["--from", "2013-03-05", "--to", "2013-03-01"], "--from 2013-03-05 is after --to"),
        (["--date", "2013-03-01", "--job", "vacuum"], "unknown job 'vacuum'"),
        (["--from", "2000-01-01", "--to", "2013-01-01"], "at most 3700 per run"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    settings: Settings, conn: psycopg.Connection, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["batch", "run", *args])
    assert result.exit_code == 2
    # one message (rich wraps it at the test console's 80 columns)
    assert result.stderr.startswith("error: ") and result.stderr.count("error:") == 1
    assert message in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr
    assert conn.execute("SELECT count(*) FROM batch_runs").fetchone() == (0,)


def test_the_app_role_adds_and_finishes_runs_but_cannot_delete_them(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """The run log is a record: the app's role (as the code connects) may write it, not
    erase it."""
    assert settings.database_url is not None
    result = runner.invoke(app, ["batch", "run", "--date", str(DAY), "--job", "aggregates"])
    assert result.exit_code == 0, result.stderr
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as app_conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_conn.execute("DELETE FROM batch_runs")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_conn.execute("TRUNCATE batch_runs")
    assert conn.execute("SELECT job, status FROM batch_runs").fetchall() == [("aggregates", "ok")]
    listed = runner.invoke(app, ["batch", "runs", "--json", "--from", str(DAY), "--to", str(DAY)])
    assert listed.exit_code == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["job"], row["status"], row["runner"]) == ("aggregates", "ok", "cli")
    assert row["interval_start"] == f"{DAY}T00:00:00+00:00"
    later = runner.invoke(app, ["batch", "runs", "--json", "--from", str(DAY.replace(day=6))])
    assert later.exit_code == 0 and later.stdout == ""
