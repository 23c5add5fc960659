"""What ``metrify restore`` and ``metrify backup`` refuse, with exit status 2 and one
line, before writing anything: a target that holds data, a damaged or unfinished
backup, an output folder in use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings, get_settings
from metrify.stores import audit, database, embedded
from support.database import app_url

runner = CliRunner()

_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"


@pytest.fixture
def made(settings: Settings, tmp_path: Path) -> Path:
    """A backup of the tests' store (a few audit rows) in ``tmp_path/bk``."""
    with database.connect(settings) as conn:
        audit.record(conn, audit.Event(actor="op", actor_kind="user", action="refusal.test"))
    out = tmp_path / "bk"
    result = runner.invoke(app, ["backup", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def empty_target(
    made: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An empty database on the same server, owned by a role of its own that is no
    superuser (a managed server's owner), and an empty lake: the restore target."""
    suffix = uuid.uuid4().hex[:8]
    name, owner, password = f"metrify_restore_{suffix}", f"restore_owner_{suffix}", uuid.uuid4().hex
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(owner), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )
    parts = urlsplit(embedded.with_database(database_url, name))
    host = parts.netloc.rpartition("@")[2]
    owner_url = urlunsplit(parts._replace(netloc=f"{owner}:{password}@{host}"))
    monkeypatch.setenv("METRIFY_DATABASE_OWNER_URL", owner_url)
    monkeypatch.setenv("METRIFY_DATABASE_URL", embedded.with_database(app_url(database_url), name))
    monkeypatch.setenv("METRIFY_LAKE_URL", str(tmp_path / "lake2"))
    get_settings.cache_clear()
    yield owner_url
    get_settings.cache_clear()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))


def _tables(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(_TABLES).fetchone()
    return int(row[0]) if row else -1


def test_a_store_that_holds_data_is_refused(made: Path, database_url: str) -> None:
    before = _tables(database_url)
    result = runner.invoke(app, ["restore", str(made)])
    assert result.exit_code == 2
    assert "is not empty" in result.output and "empty database" in result.output
    assert _tables(database_url) == before


def test_a_damaged_file_is_found_before_anything_is_written(
    made: Path, empty_target: str, tmp_path: Path
) -> None:
    manifest = orjson.loads((made / "manifest.json").read_bytes())
    victim = made / sorted(manifest["files"])[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    victim.write_bytes(bytes(data))
    result = runner.invoke(app, ["restore", str(made)])
    assert result.exit_code == 2
    assert "does not match its checksum" in result.output
    assert _tables(empty_target) == 0
    assert not (tmp_path / "lake2").exists() or not any((tmp_path / "lake2").rglob("*"))


def test_an_unfinished_backup_and_a_foreign_format_are_refused(
    made: Path, empty_target: str
) -> None:
    manifest = made / "manifest.json"
    saved = manifest.read_bytes()
    manifest.write_bytes(orjson.dumps({**orjson.loads(saved), "format": "other/9"}))
    result = runner.invoke(app, ["restore", str(made)])
    assert result.exit_code == 2 and "other/9" in result.output
    manifest.unlink()
    result = runner.invoke(app, ["restore", str(made)])
    assert result.exit_code == 2 and "did not finish" in result.output
    assert _tables(empty_target) == 0


def test_a_restore_as_another_owner_matches_and_the_app_role_works(
    made: Path, empty_target: str
) -> None:
    """The backup restores into the empty database of another, unprivileged owner (a
    managed server's case: no embedded server, no superuser), the app's role reads and
    writes there, and the audit chain verifies."""
    result = runner.invoke(app, ["restore", str(made), "--json"])
    assert result.exit_code == 0, result.output
    backed_up = orjson.loads((made / "manifest.json").read_bytes())["store"]["rows"]
    assert orjson.loads(result.stdout)["rows"] == backed_up
    verdict = runner.invoke(app, ["audit", "verify", "--json"])
    assert orjson.loads(verdict.stdout)["ok"] is True
    with psycopg.connect(empty_target) as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert owners == [(urlsplit(empty_target).username,)]
    # the app's role may write a table a later migration would add (default privileges)
    with psycopg.connect(empty_target, autocommit=True) as conn:
        conn.execute("CREATE TABLE later_table (x int)")
    with database.connect(get_settings()) as conn:
        conn.execute("INSERT INTO later_table VALUES (1)")
        row = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    assert row is not None and row[0] == backed_up["audit_log"] + 1  # + the restore's row


def test_backup_refuses_a_folder_in_use(settings: Settings, tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    result = runner.invoke(app, ["backup", "--out", str(used)])
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert sorted(p.name for p in used.iterdir()) == ["something"]
