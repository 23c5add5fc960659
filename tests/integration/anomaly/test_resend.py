"""Loading the same real files again records no new anomaly incidents.

Three London households loaded three times: the second and third loads find every
reading unchanged, so the anomalies (and the readings' anomaly bits) must be exactly
those of the first load. Re-sent rows used to be judged again against detector state
learned from the whole year, which found "new" outliers in their early months.
"""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import LONDON_MAP, shared_data


def snapshot(conn: psycopg.Connection) -> tuple[list[tuple[object, ...]], int]:
    incidents = conn.execute(
        "SELECT kind, subject_id, ts_start, ts_end, severity FROM anomalies ORDER BY 2, 3, 1"
    ).fetchall()
    (flagged,) = conn.execute("SELECT count(*) FROM readings WHERE quality & 1024 <> 0").fetchone()
    return incidents, flagged


def test_resending_files_adds_no_incidents(settings: Settings, conn: psycopg.Connection) -> None:
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:3]
    assert len(files) == 3
    runner = CliRunner()
    args = ["ingest", "readings", *map(str, files), *LONDON_MAP, "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stdout + first.stderr
    after_first = snapshot(conn)
    assert after_first[0], "the first load should find something to compare"
    (history_before,) = conn.execute("SELECT count(*) FROM reading_history").fetchone()
    for _ in range(2):
        again = runner.invoke(app, args)
        assert again.exit_code == 0, again.stdout + again.stderr
        assert snapshot(conn) == after_first
    assert conn.execute("SELECT count(*) FROM reading_history").fetchone() == (history_before,)
