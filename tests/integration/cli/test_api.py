"""``metrify users|keys|audit|serve``: one-line errors, keys shown once, audited."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()


def test_users_keys_and_audit(
    settings: Settings,
    conn: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALICE_PW", "a long enough password")
    made = runner.invoke(
        app,
        [
            "users",
            "create",
            "alice",
            "--role",
            "operator",
            "--region",
            "north",
            "--password-env",
            "ALICE_PW",
        ],
    )
    assert made.exit_code == 0, made.output
    listed = orjson.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert [(u["username"], u["role"], u["regions"]) for u in listed] == [
        ("alice", "operator", ["north"])
    ]
    assert "password" not in made.output and "argon2" not in str(listed)
    stored = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored is not None and str(stored[0]).startswith("$argon2id$")

    dup = runner.invoke(
        app, ["users", "create", "alice", "--role", "viewer", "--password-env", "ALICE_PW"]
    )
    assert dup.exit_code == 2 and "already exists" in dup.output
    assert "Traceback" not in dup.output
    bad = runner.invoke(
        app, ["users", "create", "bob", "--role", "root", "--password-env", "ALICE_PW"]
    )
    assert bad.exit_code == 2 and "--role root" in bad.output

    created = runner.invoke(app, ["keys", "create", "head-end-1", "--role", "ingest"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("mk_")
    row = conn.execute("SELECT key_hash, prefix, revoked_at FROM api_keys").fetchone()
    assert row is not None
    assert bytes(row[0]) == hashlib.sha256(key.encode()).digest() and row[2] is None
    revoked = runner.invoke(app, ["keys", "revoke", str(row[1])])
    assert revoked.exit_code == 0, revoked.output
    assert conn.execute("SELECT revoked_at IS NOT NULL FROM api_keys").fetchone() == (True,)
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 2

    assert runner.invoke(app, ["users", "disable", "alice"]).exit_code == 0
    assert conn.execute("SELECT disabled FROM users").fetchone() == (True,)

    lines = runner.invoke(app, ["audit", "--json"]).stdout.splitlines()
    actions = [orjson.loads(line)["action"] for line in lines]
    assert actions == ["users.create", "keys.create", "keys.revoke", "users.update"]
    assert all(orjson.loads(line)["actor"].startswith("cli") for line in lines)
    assert key not in "".join(lines) and "a long enough password" not in "".join(lines)


def test_a_key_is_revoked_by_an_all_digit_prefix_or_by_its_id(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Prefixes are hex, so one in ~300 is all digits: it is still a prefix, not an id."""
    for _ in range(2):
        assert runner.invoke(app, ["keys", "create", "meter-gw", "--role", "ingest"]).exit_code == 0
    (first, _), (second, _) = conn.execute(
        "SELECT key_id, prefix FROM api_keys ORDER BY key_id"
    ).fetchall()
    conn.execute("UPDATE api_keys SET prefix = '257965570513' WHERE key_id = %s", (first,))
    conn.commit()
    assert runner.invoke(app, ["keys", "revoke", "257965570513"]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", str(second)]).exit_code == 0
    revoked = conn.execute("SELECT key_id FROM api_keys WHERE revoked_at IS NOT NULL ORDER BY 1")
    assert [r[0] for r in revoked] == [first, second]


def test_serve_refuses_bad_key_material(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metrify.settings import get_settings

    monkeypatch.setenv("METRIFY_API__JWT_ALGORITHM", "RS256")
    get_settings.cache_clear()
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "JWT signing key" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("METRIFY_API__JWT_ALGORITHM", "HS256")
    monkeypatch.setenv("METRIFY_API__JWT_SECRET", "too short")
    get_settings.cache_clear()
    short = runner.invoke(app, ["serve"])
    assert short.exit_code == 2 and "at least 32 bytes" in short.output


def test_config_masks_the_jwt_secret(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from metrify.settings import get_settings

    monkeypatch.setenv("METRIFY_API__JWT_SECRET", "s3cr3t-" + "z" * 40)
    get_settings.cache_clear()
    out = runner.invoke(app, ["config", "--json"])
    assert out.exit_code == 0, out.output
    assert "s3cr3t" not in out.stdout
    assert orjson.loads(out.stdout)["api"]["jwt_secret"] == "**********"


def test_serve_runs_the_real_server(settings: Settings, tmp_path: Path) -> None:
    """`metrify serve` (uvicorn) answers over TCP: ready, OpenAPI, and an auth check."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "METRIFY_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("metrify")), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        ready = None
        while time.time() < deadline and ready is None:
            try:
                ready = httpx.get(f"{base}/ready", timeout=1)
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.3)
        assert ready is not None and ready.json()["status"] == "ready"
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Metrify API"
        denied = httpx.get(f"{base}/v1/meters")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
        # no secret configured: one was generated under METRIFY_HOME, readable by owner only
        secret = settings.home / "api-jwt-secret"
        assert secret.exists() and (secret.stat().st_mode & 0o077) == 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
