"""The recovery drill (issue 25): load data, back up, destroy the installation, restore
into the now empty ``METRIFY_HOME``, and find the same readings, totals, history, audit
chain, meter events and lake (the events table included).

The installation is a real embedded server in its own ``METRIFY_HOME`` (not the tests'
shared database), so "destroy" is what an operator would suffer: the server stopped and
its folder, data and roles gone. Expected values are read from the database and the
Delta tables before the backup, with plain SQL and deltalake, never from the backup code.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import get_settings
from metrify.stores import audit, database, embedded

pytestmark = pytest.mark.slow  # two embedded servers started, a backup and a restore

runner = CliRunner()

AUDIT_ROWS = (
    "SELECT seq, id, at, actor, actor_kind, action, target, outcome, details::text,"
    " prev_hash, hash FROM audit_log ORDER BY seq"
)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh embedded installation (short path: the server's socket lives in it)."""
    root = Path(tempfile.mkdtemp(prefix="mb", dir="/tmp"))
    for name in ("METRIFY_DATABASE_URL", "METRIFY_DATABASE_OWNER_URL", "METRIFY_LAKE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("METRIFY_HOME", str(root / "h"))
    get_settings.cache_clear()
    try:
        yield root / "h"
    finally:
        embedded.stop(root / "h")
        get_settings.cache_clear()
        shutil.rmtree(root, ignore_errors=True)


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def _state(owner: str, lake: Path) -> dict[str, Any]:
    """Everything the drill compares, read directly."""
    with psycopg.connect(owner) as conn:
        readings = conn.execute(
            "SELECT count(*), sum(import_kwh), count(*) FILTER (WHERE status = 'estimated')"
            " FROM readings"
        ).fetchone()
        history = conn.execute(
            "SELECT meter_id, ts, import_kwh, source FROM reading_history ORDER BY 1, 2, 3"
        ).fetchall()
        audit_rows = conn.execute(AUDIT_ROWS).fetchall()
        meters = conn.execute("SELECT count(*) FROM meters").fetchone()
        quarantine = conn.execute("SELECT count(*) FROM quarantine").fetchone()
        events = conn.execute(
            "SELECT meter_id, ts, event, code, source FROM meter_events ORDER BY 1, 2, 3"
        ).fetchall()
    held = DeltaTable(str(lake / "events")).to_pyarrow_table().to_pylist()
    table = DeltaTable(str(lake / "readings"))
    frame = table.to_pyarrow_table().to_pylist()
    return {
        "readings": readings,
        "history": history,
        "audit": audit_rows,
        "meters": meters,
        "quarantine": quarantine,
        "events": events,
        "lake_events": sorted((r["meter_id"], str(r["ts"]), r["event"]) for r in held),
        "lake_version": table.version(),
        "lake_rows": sorted(
            (r["meter_id"], str(r["ts"]), r["import_kwh"], str(r["ingested_at"])) for r in frame
        ),
    }


def test_backup_destroy_restore_brings_back_the_same_data(home: Path, tmp_path: Path) -> None:
    _invoke("simulate", "--meters", "6", "--days", "2", "--seed", "7", "--fault-rate", "0.3")
    settings = get_settings()
    owner = database.owner_url(settings)
    with psycopg.connect(owner) as conn:
        keys = conn.execute(
            "SELECT meter_id, ts, import_kwh FROM readings WHERE import_kwh IS NOT NULL"
            " ORDER BY meter_id, ts LIMIT 5"
        ).fetchall()
    # a correction of five readings: the old versions go to reading_history
    fixes = tmp_path / "fix.csv"
    with fixes.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["meter_id", "ts", "interval_s", "import_kwh"])
        for meter, ts, kwh in keys:
            writer.writerow([meter, ts.isoformat(), 900, f"{float(kwh) + 1.25:.3f}"])
    _invoke("ingest", "readings", str(fixes))
    events = tmp_path / "events.csv"
    events.write_text(
        "meter_id,ts,event,code\n"
        f"{keys[0][0]},2026-01-01T00:00:00Z,power_failure,85\n"
        f"{keys[0][0]},2026-01-01T00:20:00Z,power_restore,\n"
        f"{keys[0][0]},2026-01-02T08:00:00Z,tamper,40\n"
    )
    _invoke("ingest", "events", str(events))
    with database.connect(settings) as conn:
        for i in range(3):
            audit.record(conn, audit.Event(actor=f"op{i}", actor_kind="user", action="drill.act"))
    before = _state(owner, home / "lake")
    assert len(before["history"]) == 5 and before["readings"][0] == 6 * 2 * 96
    assert len(before["audit"]) >= 3
    assert len(before["events"]) == 3 and len(before["lake_events"]) == 3

    out = tmp_path / "backup"
    _invoke("backup", "--out", str(out))
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["store"]["rows"]["readings"] == 6 * 2 * 96
    assert manifest["lake"]["tables"]["readings"]["version"] == before["lake_version"]
    assert manifest["store"]["rows"]["meter_events"] == 3
    assert "events" in manifest["lake"]["tables"]

    # destroy: the server stopped, the whole installation removed
    assert embedded.stop(home)
    shutil.rmtree(home)
    # restored by a new process, as an operator would: it knows nothing of the old server
    restore = subprocess.run(
        [
            sys.executable,
            "-c",
            "from metrify.cli import main; main()",
            "restore",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restore.returncode == 0, restore.stderr
    # progress on long work: one line per phase when stderr is not a terminal
    for phase in ("verifying checksums", "restoring the store", "writing the lake"):
        assert f"{phase}: " in restore.stderr, restore.stderr
    summary = orjson.loads(restore.stdout)
    assert summary["rows"]["readings"] == 6 * 2 * 96

    after = _state(owner, home / "lake")
    assert summary["rows"]["meter_events"] == 3
    keys_compared = ("readings", "history", "meters", "quarantine", "events", "lake_events")
    for key in (*keys_compared, "lake_version", "lake_rows"):
        assert after[key] == before[key], key
    # the chain as it was, plus the restore's own row, and it verifies
    assert after["audit"][: len(before["audit"])] == before["audit"]
    assert [r[5] for r in after["audit"][len(before["audit"]) :]] == ["backup.restore"]
    verdict = orjson.loads(_invoke("audit", "verify", "--json").stdout)
    assert verdict["ok"] and verdict["rows"] == len(before["audit"]) + 1
    # the app's least-privileged login role exists again and reads the restored data
    with database.connect(get_settings()) as conn:
        row = conn.execute("SELECT current_user, count(*) FROM readings").fetchone()
    assert row == (embedded.APP_USER, 6 * 2 * 96)
