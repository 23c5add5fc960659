"""The tables every test starts without: the session's one database is emptied, not
re-created, before each test that writes to it."""

from __future__ import annotations

import psycopg

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
    "lake_outbox",
)


def clear_tables(database_url: str) -> None:
    """Empty every table a test may have written to."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(TABLES))
