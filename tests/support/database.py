"""The tables every test starts without, and the two roles tests connect as.

The session's one database is emptied, not re-created, before each test that writes to
it. Tests set up and inspect data as the schema's owner (the session's URL); the code
under test connects as a login member of the least-privileged ``metrify_app`` group, as
it does in production, so a statement that needs more than the app role holds fails
in the tests too.
"""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

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
    "audit_chain",
    "anomalies",
    "anomaly_state",
    "anomaly_profile",
    "auth_throttle",
    "lake_outbox",
    "agg_meter_30m",
    "agg_group_30m",
    "agg_dirty",
    "agg_group_dirty",
    "batch_runs",
    "pattern_runs",
    "meter_patterns",
    "segment_patterns",
    "pattern_clusters",
    "baseline_fits",
    "forecasts",
    "meter_events",
)

#: the statement trigger that refuses TRUNCATE on audit_log (migration 0010)
NO_TRUNCATE = "audit_log_no_truncate"


def clear_tables(owner_url: str) -> None:
    """Empty every table a test may have written to, the audit log and its chain too.

    The audit log refuses TRUNCATE, which is the point; emptying it between tests is an
    owner's act: the owner switches the refusing trigger off, truncates and switches it
    on again in ONE transaction, whose ACCESS EXCLUSIVE lock keeps every other session
    from seeing the log unguarded. The app's role could do none of this. Emptying
    ``audit_chain`` too starts the hash chain again from its first row.
    """
    with psycopg.connect(owner_url) as conn:
        guarded = conn.execute(
            "SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = 'audit_log'::regclass",
            (NO_TRUNCATE,),
        ).fetchone()
        present = {
            row[0]
            for row in conn.execute(
                "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relkind IN ('r', 'p')",
                (list(TABLES),),
            )
        }
        if guarded:
            conn.execute(f"ALTER TABLE audit_log DISABLE TRIGGER {NO_TRUNCATE}")
        # an older schema (a test stepping migrations back) has no audit_chain yet
        conn.execute("TRUNCATE " + ", ".join(t for t in TABLES if t in present))
        if guarded:
            conn.execute(f"ALTER TABLE audit_log ENABLE TRIGGER {NO_TRUNCATE}")


#: owner URL -> the app URL made for it
_issued: dict[str, str] = {}


def app_url(owner_url: str) -> str:
    """A URL to the same database as a login member of ``metrify_app``, made once per
    owner URL and test session (:func:`drop_app_roles` removes them)."""
    if owner_url in _issued:
        return _issued[owner_url]
    name = f"metrify_test_{uuid.uuid4().hex[:8]}"
    password = secrets.token_hex(16)  # ignored where the server trusts the socket
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE metrify_app").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    _issued[owner_url] = urlunsplit(parts._replace(netloc=f"{name}:{password}@{host}"))
    return _issued[owner_url]


def drop_app_roles(server_url: str) -> None:
    """Drop the login roles :func:`app_url` made (a role outlives a dropped database)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        for url in _issued.values():
            name = urlsplit(url).username or ""
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    _issued.clear()
