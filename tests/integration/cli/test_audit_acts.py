"""Operator acts from the command line are in the audit log, as the API's are.

``metrify vee edit``, ``metrify readings export`` and ``metrify anomalies
ack|resolve|false-positive|reopen`` changed or read data with no audit row. Each now
leaves exactly one, with the API's action for the same act, ``actor_kind`` ``cli`` and
the OS account as actor (``--operator`` is the user's own claim: it goes to details).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()
OS_USER = "olga"
ACTOR = f"cli:{OS_USER}"


@pytest.fixture(autouse=True)
def os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    # getpass.getuser() reads LOGNAME first, then USER
    monkeypatch.setenv("LOGNAME", OS_USER)
    monkeypatch.setenv("USER", OS_USER)


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr)


def _audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, actor_kind, action, target, outcome, details FROM audit_log ORDER BY id"
    ).fetchall()


def _ingest(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "meter_id,ts,interval_s,import_kwh\n"
        "M1,2024-01-01T00:00:00Z,1800,0.25\n"
        "M1,2024-01-01T00:30:00Z,1800,0.75\n"
    )
    _invoke("ingest", "readings", str(path))


def test_vee_edit_is_audited(
    settings: Settings, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _ingest(tmp_path)
    before = len(_audit(conn))
    _invoke(
        "vee", "edit", "M1", "--from", "2024-01-01T00:00:00Z", "--to", "2024-01-01T01:00:00Z",
        "--set", "1.5", "--reason", "meter swap", "--operator", "bob",
    )  # fmt: skip
    rows = _audit(conn)[before:]
    assert len(rows) == 1, rows
    *who, details = rows[0]
    assert who == [ACTOR, "cli", "readings.edit", "M1", "success"]
    assert details["reason"] == "meter swap" and details["operator"] == "bob"
    assert details["value"] == 1.5 and details["rows"] == 2  # the two ingested intervals
    assert details["from"] == "2024-01-01T00:00:00+00:00"
    assert details["to"] == "2024-01-01T01:00:00+00:00"


def test_a_refused_edit_is_not_audited_as_done(
    settings: Settings, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _ingest(tmp_path)
    before = len(_audit(conn))
    result = runner.invoke(
        app,
        ["vee", "edit", "M1", "--from", "2024-01-01T00:00:00Z", "--to", "2024-01-01T01:00:00Z",
         "--set", "-1", "--reason", "typo"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert _audit(conn)[before:] == []


def test_readings_export_is_audited(
    settings: Settings, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _ingest(tmp_path)
    second = tmp_path / "m2.csv"  # an export names known meters only
    second.write_text("meter_id,ts,interval_s,import_kwh\nM2,2024-01-01T00:00:00Z,1800,0.5\n")
    _invoke("ingest", "readings", str(second))
    before = len(_audit(conn))
    out = tmp_path / "out.csv"
    _invoke(
        "readings", "export", "M1", "M2",
        "--from", "2024-01-01T00:00:00Z", "--to", "2024-01-02T00:00:00Z", "--out", str(out),
    )  # fmt: skip
    assert out.exists()
    rows = _audit(conn)[before:]
    assert len(rows) == 1, rows
    *who, details = rows[0]
    assert who == [ACTOR, "cli", "export.readings", "M1,M2", "success"]
    assert details == {
        "from": "2024-01-01T00:00:00+00:00",
        "to": "2024-01-02T00:00:00+00:00",
        "format": "csv",
    }


def _anomaly(conn: psycopg.Connection[Any], status: str) -> int:
    row = conn.execute(
        "INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score,"
        " severity, detector, detector_version, status) VALUES ('sustained_drop', 'meter',"
        " 'M1', '2025-01-01', '2025-01-02', 5.0, 'high', 'test', '1', %s) RETURNING id",
        (status,),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("command", "start", "action", "status"),
    [
        ("ack", "open", "anomalies.acknowledge", "acknowledged"),
        ("resolve", "open", "anomalies.resolve", "resolved"),
        ("false-positive", "open", "anomalies.false_positive", "false_positive"),
        ("reopen", "resolved", "anomalies.reopen", "open"),
    ],
)
def test_anomaly_status_changes_are_audited(
    settings: Settings,
    conn: psycopg.Connection[Any],
    command: str,
    start: str,
    action: str,
    status: str,
) -> None:
    anomaly_id = _anomaly(conn, start)
    before = len(_audit(conn))
    _invoke("anomalies", command, str(anomaly_id), "--operator", "bob", "--note", "checked")
    assert conn.execute("SELECT status FROM anomalies WHERE id = %s", (anomaly_id,)).fetchone() == (
        status,
    )
    rows = _audit(conn)[before:]
    assert len(rows) == 1, rows
    *who, details = rows[0]
    assert who == [ACTOR, "cli", action, str(anomaly_id), "success"]
    assert details == {"note": "checked", "operator": "bob"}


def test_a_refused_status_change_is_not_audited(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    before = len(_audit(conn))
    result = runner.invoke(app, ["anomalies", "ack", "424242"])
    assert result.exit_code == 2
    assert _audit(conn)[before:] == []


def test_a_password_change_is_audited_without_the_password(
    settings: Settings, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLD_PW", "a long enough password")
    monkeypatch.setenv("NEW_PW", "another long enough password")
    _invoke("users", "create", "carol", "--role", "viewer", "--password-env", "OLD_PW")
    (old_hash,) = conn.execute("SELECT password_hash FROM users").fetchone() or (None,)
    before = len(_audit(conn))
    _invoke("users", "password", "carol", "--password-env", "NEW_PW")
    (new_hash,) = conn.execute("SELECT password_hash FROM users").fetchone() or (None,)
    assert new_hash != old_hash and str(new_hash).startswith("$argon2id$")
    rows = _audit(conn)[before:]
    assert len(rows) == 1, rows
    *who, details = rows[0]
    assert who == [ACTOR, "cli", "users.update", "carol", "success"]
    assert details == {"credential_changed": True}
    assert "another long enough password" not in str(rows)


def test_a_password_change_for_nobody_is_one_line_and_not_audited(
    settings: Settings, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEW_PW", "another long enough password")
    before = len(_audit(conn))
    result = runner.invoke(app, ["users", "password", "nobody", "--password-env", "NEW_PW"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "nobody" in result.output
    assert _audit(conn)[before:] == []
