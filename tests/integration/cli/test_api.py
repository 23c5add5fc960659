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

from metrify.cli import app, common
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


@pytest.mark.parametrize("content", ["x", "", "   \n", "y" * 31])
def test_serve_refuses_a_short_secret_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    """The generated-secret file obeys the variable's rule (>= 32 bytes): a short one
    would sign with a guessable key, an empty one made every sign-in a 500."""
    from metrify.settings import get_settings

    monkeypatch.delenv("METRIFY_API__JWT_SECRET", raising=False)
    get_settings.cache_clear()
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "api-jwt-secret"
    path.write_text(content)

    def no_server(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started with a short secret")

    monkeypatch.setattr("uvicorn.run", no_server)
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(path) in lines[0] and "at least 32 bytes" in lines[0]
    assert "Traceback" not in result.output


def _make_user(name: str, role: str, *extra: str) -> None:
    made = runner.invoke(
        app, ["users", "create", name, "--role", role, "--password-env", "PW", *extra]
    )
    assert made.exit_code == 0, made.output


def test_users_enable_and_the_last_admin(
    settings: Settings,
    conn: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PW", "a long enough password")
    _make_user("boss", "admin")
    _make_user("dora", "viewer")
    # the last enabled admin cannot be disabled: nobody could manage users afterwards
    last = runner.invoke(app, ["users", "disable", "boss"])
    assert last.exit_code == 2 and "last enabled admin" in last.output
    assert "Traceback" not in last.output
    assert conn.execute("SELECT disabled FROM users WHERE username = 'boss'").fetchone() == (False,)
    assert runner.invoke(app, ["users", "disable", "dora"]).exit_code == 0
    enabled = runner.invoke(app, ["users", "enable", "dora"])
    assert enabled.exit_code == 0, enabled.output
    assert conn.execute("SELECT disabled FROM users WHERE username = 'dora'").fetchone() == (False,)
    missing = runner.invoke(app, ["users", "enable", "nobody"])
    assert missing.exit_code == 2 and "no user nobody" in missing.output
    rows = conn.execute(
        "SELECT action, target, details->>'disabled' FROM audit_log ORDER BY id"
    ).fetchall()
    assert rows[-2:] == [("users.update", "dora", "true"), ("users.update", "dora", "false")]
    assert ("users.update", "boss", "true") not in rows


def test_an_empty_region_is_refused_by_the_cli(
    settings: Settings,
    conn: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--region ""`` used to be stored as NULL: every region."""
    monkeypatch.setenv("PW", "a long enough password")
    refused = runner.invoke(
        app,
        ["users", "create", "erin", "--role", "viewer", "--region", " ", "--password-env", "PW"],
    )
    assert refused.exit_code == 2 and "empty" in refused.output
    key = runner.invoke(app, ["keys", "create", "gw", "--region", ""])
    assert key.exit_code == 2 and "empty" in key.output
    assert conn.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM api_keys)"
    ).fetchone() == (0, 0)


def test_keys_list(
    settings: Settings,
    conn: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = runner.invoke(app, ["keys", "create", "gw-[/north]", "--region", "north"])
    assert made.exit_code == 0, made.output
    made = runner.invoke(
        app, ["keys", "create", "reader", "--role", "viewer", "--expires-days", "0"]
    )
    assert made.exit_code == 0
    key = made.stdout.strip().splitlines()[0]
    conn.execute("UPDATE api_keys SET last_used_at = '2026-01-02T03:04:05Z' WHERE name = 'reader'")
    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = orjson.loads(listed.stdout)
    assert [(r["name"], r["role"], r["regions"]) for r in rows] == [
        ("gw-[/north]", "ingest", ["north"]),
        ("reader", "viewer", None),
    ]
    assert rows[1]["expires_at"] is None and rows[1]["last_used_at"].startswith(
        "2026-01-02T03:04:05"
    )
    assert rows[0]["expires_at"] is not None and rows[0]["last_used_at"] is None
    assert key not in listed.stdout and "key_hash" not in listed.stdout
    # a wide console: Rich fixes the width when the console is made (COLUMNS then), so
    # the table would be cut at whatever width an earlier test's process had
    monkeypatch.setattr(common.console, "_width", 200)
    table = runner.invoke(app, ["keys", "list"])
    assert table.exit_code == 0, table.output
    assert "gw-[/north]" in table.output and "reader" in table.output and "never" in table.output
    assert key not in table.output
    # reading is not a change: no audit row
    assert conn.execute(
        "SELECT count(*) FROM audit_log WHERE action LIKE 'keys.list%'"
    ).fetchone() == (0,)
