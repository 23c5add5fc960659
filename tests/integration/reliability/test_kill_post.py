"""A server killed (SIGKILL) while a large POST runs leaves nothing of it: no row, no
audit row, no claimed Idempotency-Key. The retry with the same key against a restarted
server is processed and stores everything, once, and the lake then equals the store.

The request is held at its very end (its audit row) by a lock the test takes on the
audit table: the kill lands when every row has been written, not at a guessed moment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import psycopg
from typer.testing import CliRunner

from metrify.api import users
from metrify.api.rbac import Role
from metrify.cli import app
from metrify.settings import Settings
from support.waiting import until

METERS, INTERVALS = 200, 1000  # 200,000 readings
START = dt.datetime(2025, 11, 3, tzinfo=dt.UTC)


def _body() -> bytes:
    lines = ["meter_id,ts,interval_s,import_kwh"]
    step = dt.timedelta(minutes=15)
    stamps = [f"{START + i * step:%Y-%m-%dT%H:%M:%SZ}" for i in range(INTERVALS)]
    for m in range(METERS):
        lines += [f"KILL{m:04d},{ts},900,{0.2 + (i % 9) * 0.03:.2f}" for i, ts in enumerate(stamps)]
    return ("\n".join(lines) + "\n").encode()


def _serve() -> tuple[subprocess.Popen[bytes], str]:
    """``metrify serve`` in its own process group, ready; with small pipeline batches,
    so the body is written in ten of them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "METRIFY_LOG_LEVEL": "WARNING",
        "METRIFY_BATCH_SIZE": "20000",
        "METRIFY_API__JWT_SECRET": "kill-test-" + "k" * 40,
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("metrify")), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, "metrify serve exited"
        try:
            return httpx.get(f"{base}/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    until(ready, timeout=90)
    return proc, base


def _one(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_a_killed_post_leaves_nothing_and_its_retry_stores_everything(
    settings: Settings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    began = conn.execute("SELECT clock_timestamp()").fetchone()
    assert began is not None  # sessions opened from here on are this test's
    key = users.create_key(conn, "head-end", Role.INGEST, created_by="test")["key"]
    headers = {"X-API-Key": key, "Content-Type": "text/csv", "Idempotency-Key": "kill-1"}
    body = _body()
    proc, base = _serve()
    holder = psycopg.connect(conn.info.dsn, autocommit=False)
    try:
        holder.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")

        def post() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
                httpx.post(f"{base}/v1/readings", content=body, headers=headers, timeout=300)

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'audit_log'::regclass"
        )
        until(lambda: _one(conn, waiting) > 0, timeout=300)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        holder.rollback()
        holder.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    thread.join(timeout=60)
    # The dead server's sessions end (PostgreSQL rolls their work back)
    others = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        f" AND backend_start >= '{began[0].isoformat()}'"
    )
    until(lambda: _one(conn, others) == 0, timeout=60)
    assert _one(conn, "SELECT count(*) FROM readings WHERE meter_id LIKE 'KILL%'") == 0
    assert _one(conn, "SELECT count(*) FROM audit_log WHERE action = 'ingest.readings'") == 0
    assert _one(conn, "SELECT count(*) FROM idempotency_keys") == 0

    proc, base = _serve()
    try:
        retry = httpx.post(f"{base}/v1/readings", content=body, headers=headers, timeout=300)
        assert retry.status_code == 200, retry.text
        assert "idempotency-replayed" not in retry.headers
        assert retry.json()["summary"]["inserted"] == METERS * INTERVALS
        again = httpx.post(f"{base}/v1/readings", content=body, headers=headers, timeout=300)
        assert again.headers["idempotency-replayed"] == "true"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert _one(conn, "SELECT count(*) FROM readings WHERE meter_id LIKE 'KILL%'") == (
        METERS * INTERVALS
    )
    audited = conn.execute(
        "SELECT request_id FROM audit_log WHERE action = 'ingest.readings'"
    ).fetchall()
    assert [r[0] for r in audited] == [retry.json()["request_id"]]
    verify = CliRunner().invoke(app, ["lake", "verify", "--json"])
    assert verify.exit_code == 0, verify.output
