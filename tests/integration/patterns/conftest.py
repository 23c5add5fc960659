"""The patterns' tables start empty in every test (the shared clean-up predates them)."""

from __future__ import annotations

import psycopg
import pytest

from metrify.settings import Settings


@pytest.fixture(autouse=True)
def _no_patterns(settings: Settings, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM pattern_runs")  # cascades to the meters, segments, clusters
