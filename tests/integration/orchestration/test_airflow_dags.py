"""The Airflow DAG (orchestration/dags) run with ``airflow dags test`` in its own
environment (.airflow-venv, ``make airflow``), on real London households loaded
through Metrify into the test database: each job's effect in the store and on disk, a
re-run, and a failing job retried.

Airflow keeps its metadata in SQLite under a temporary AIRFLOW_HOME; its tasks run
Metrify's jobs in this interpreter's environment (METRIFY_PYTHON), against the test
database the ``settings`` fixture exports. Nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from integration.batch.london import ALL_JOBS, check_report, day_energy, load_households
from metrify.settings import Settings
from support.paths import REPO

AIRFLOW_VENV = REPO / ".airflow-venv"
AIRFLOW = AIRFLOW_VENV / "bin" / "airflow"
DAG = "metrify_daily"
#: every task's subprocess starts Python and Metrify; a whole DAG takes about a minute
TIMEOUT_S = 900

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="session")
def airflow() -> Path:
    """Airflow's environment, made by ``make airflow`` when missing (a fresh machine
    needs only Python and pip: the packages come pinned from orchestration/)."""
    if not (AIRFLOW_VENV / ".ready").exists():
        made = subprocess.run(
            ["make", "-C", str(REPO), "airflow"], capture_output=True, text=True, timeout=1800
        )
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert AIRFLOW.is_file()
    return AIRFLOW


@pytest.fixture(scope="module")
def airflow_home(airflow: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Airflow's own settings for this module's tests: a home with SQLite metadata made
    by ``airflow db migrate`` (once: it takes a quarter of a minute), the repository's
    DAGs, no examples."""
    home = tmp_path_factory.mktemp("airflow")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "orchestration" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    migrated = subprocess.run(
        [str(airflow), "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    return env


@pytest.fixture
def airflow_env(airflow_home: dict[str, str], settings: Settings) -> dict[str, str]:
    """One test's environment for Airflow: Metrify's settings (the test database, this
    test's home and lake, as the ``settings`` fixture exported them) and interpreter."""
    return {
        **os.environ,
        **airflow_home,
        "METRIFY_PYTHON": sys.executable,
        "METRIFY_SRC": str(REPO / "src"),
        "METRIFY_AIRFLOW_START": "2013-01-01",
    }


def dags_test(
    env: dict[str, str], run_after: dt.date, task: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``airflow dags test`` of the run due at ``run_after`` (or ``airflow tasks test``
    of one of its tasks): its data interval is the UTC day before (a manual run covers
    the last whole interval before it)."""
    command = ["dags", "test", DAG] if task is None else ["tasks", "test", DAG, task]
    return subprocess.run(
        [str(AIRFLOW), *command, run_after.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def runs(conn: psycopg.Connection, day: dt.date) -> list[tuple[str, str, str | None, str]]:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return [
        (job, status, error, runner)
        for job, status, error, runner in conn.execute(
            "SELECT job, status, error, runner FROM batch_runs WHERE interval_start = %s"
            " ORDER BY id",
            (start,),
        )
    ]


def test_the_daily_dag_runs_each_job_for_its_interval(
    airflow_env: dict[str, str],
    settings: Settings,
    database_url: str,
    conn: psycopg.Connection,
    tmp_path: Path,
) -> None:
    homes = load_households(tmp_path)
    day = dt.date(2013, 3, 5)
    done = dags_test(airflow_env, day + dt.timedelta(days=1))
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]

    ran = {job: (status, error, runner) for job, status, error, runner in runs(conn, day)}
    assert set(ran) == set(ALL_JOBS)
    assert {r for _, _, r in ran.values()} == {"airflow"}
    for job in ALL_JOBS:
        assert ran[job][0] == "ok", (job, ran[job])
    assert not runs(conn, day + dt.timedelta(days=1))  # only its own interval

    want = homes.utc_day_energy(database_url, day)
    got = day_energy(conn, day)
    assert got.keys() == want.keys()
    for meter, kwh in want.items():
        assert got[meter] == pytest.approx(kwh, abs=1e-6)
    check_report(settings.home, homes, day, database_url)

    # the aggregates of the same interval again (one task): re-done, the same totals,
    # both runs in the log
    again = dags_test(airflow_env, day + dt.timedelta(days=1), "aggregates")
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-5000:]
    assert [j for j, s, _, _ in runs(conn, day) if s == "ok"].count("aggregates") == 2
    assert day_energy(conn, day) == pytest.approx(got, abs=1e-9)


def test_a_failing_job_is_retried_and_the_others_still_run(
    airflow_env: dict[str, str],
    settings: Settings,
    database_url: str,
    conn: psycopg.Connection,
    tmp_path: Path,
) -> None:
    homes = load_households(tmp_path)
    day = dt.date(2013, 3, 7)
    # the report's folder cannot be made: a file stands where it goes
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "reports").write_text("not a folder")
    env = {**airflow_env, "METRIFY_AIRFLOW_RETRIES": "1", "METRIFY_AIRFLOW_RETRY_DELAY_S": "0"}
    failed = dags_test(env, day + dt.timedelta(days=1))
    assert failed.returncode == 1, failed.stdout[-5000:] + failed.stderr[-5000:]
    ran = runs(conn, day)
    quality = [(s, e) for j, s, e, _ in ran if j == "quality"]
    assert [s for s, _ in quality] == ["failed", "failed"]  # the first try and one retry
    assert all("reports" in str(e) for _, e in quality)
    assert ("aggregates", "ok") in {(j, s) for j, s, _, _ in ran}
    assert ("anomalies", "ok") in {(j, s) for j, s, _, _ in ran}
    want = homes.utc_day_energy(database_url, day)
    assert day_energy(conn, day) == pytest.approx(want, abs=1e-6)
