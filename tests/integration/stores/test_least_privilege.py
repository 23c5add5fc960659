"""The app connects as the least-privileged ``metrify_app`` role (issue 20).

It used to connect as the superuser: a bug or an injected statement could TRUNCATE the
audit log, switch its triggers off or drop tables. The app's role now holds only what the
code needs, which these tests pin from both sides: what it must be refused, and a load
from the CLI, an API request and a load into months without partitions yet that must
still work with it. The owner, too, meets the TRUNCATE trigger.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import errors
from pydantic import SecretStr
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores import audit, database, embedded
from support.api import running_api

runner = CliRunner()


@pytest.fixture
def app_conn(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the app opens them (``METRIFY_DATABASE_URL``, the app's role)."""
    with database.connect(settings) as conn:
        audit.record(conn, audit.Event(actor="t", actor_kind="cli", action="test.seed"))
        yield conn


def test_the_app_is_a_plain_member_of_metrify_app(app_conn: psycopg.Connection[Any]) -> None:
    row = app_conn.execute(
        "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,"
        " pg_has_role(c.relowner, 'MEMBER'), pg_has_role('metrify_app', 'MEMBER')"
        " FROM pg_roles r, pg_class c"
        " WHERE r.rolname = current_user AND c.oid = 'audit_log'::regclass"
    ).fetchone()
    assert row == (False, False, False, False, False, True)


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE audit_log",
        "UPDATE audit_log SET details = '{}'",
        "DELETE FROM audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "UPDATE audit_chain SET seq = 0",
        "SET session_replication_role = replica",
        "DROP TABLE readings",
        "ALTER TABLE meters ADD COLUMN x int",
        "CREATE TABLE smuggled (x int)",
        "TRUNCATE readings",
        "CREATE TABLE readings_p2099_01 PARTITION OF readings"
        " FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
    ],
)
def test_the_app_role_is_refused(app_conn: psycopg.Connection[Any], statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        app_conn.execute(statement)


def test_the_partition_function_creates_only_monthly_partitions(
    app_conn: psycopg.Connection[Any],
) -> None:
    """The one DDL door the app has (SECURITY DEFINER) takes no other table or day."""
    for args in (("audit_log", dt.date(2030, 1, 1)), ("readings", dt.date(2030, 1, 15))):
        with pytest.raises(errors.RaiseException):
            app_conn.execute("SELECT metrify_ensure_partition(%s, %s)", args)
    with pytest.raises(errors.RaiseException):
        app_conn.execute(
            "SELECT metrify_ensure_partition(%s, %s)", ('x"; DROP TABLE y', dt.date(2030, 1, 1))
        )


def test_even_the_owner_meets_the_truncate_trigger(
    app_conn: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(errors.RaiseException, match="append-only"):
        conn.execute("TRUNCATE audit_log")
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)


def test_a_cli_load_an_api_request_and_new_partitions_work_as_the_app_role(
    settings: Settings, database_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Everything ordinary still works as the app's role: a CLI load into a month with no
    partition (created through the SECURITY DEFINER function, owned by the owner), an API
    ingest into another such month and a read back, and their audit rows."""
    began = conn.execute("SELECT clock_timestamp()").fetchone()
    assert began is not None  # sessions opened from here on are this test's
    for month in ("readings_p2001_03", "readings_p2002_07"):
        conn.execute(f"DROP TABLE IF EXISTS {month}")  # whatever an earlier test left
    csv = tmp_path / "r.csv"
    csv.write_text(
        "meter_id,ts,interval_s,import_kwh\n"
        "LP1,2001-03-01T00:00:00Z,1800,0.5\n"
        "LP1,2001-03-01T00:30:00Z,1800,0.25\n"
    )
    loaded = runner.invoke(app, ["ingest", "readings", str(csv), "--json"])
    assert loaded.exit_code == 0, (loaded.stdout, loaded.stderr)
    assert conn.execute(
        "SELECT sum(import_kwh) FROM readings WHERE meter_id = 'LP1'"
    ).fetchone() == (0.75,)

    with running_api(database_url, tmp_path / "api") as api:
        api.add_user("admin", "admin")
        key = api.add_key("head-end", "ingest")["key"]
        body = {"meter_id": "LP2", "ts": "2002-07-01T00:00:00Z", "interval_s": 900}
        posted = api.client.post(
            "/v1/readings",
            json=[{**body, "import_kwh": 1.5}],
            headers={"Authorization": f"Bearer {key}"},
        )
        assert posted.status_code == 200, posted.text
        got = api.client.get(
            "/v1/meters/LP2/readings",
            params={"from": "2002-07-01T00:00:00Z", "to": "2002-07-02T00:00:00Z"},
            headers=api.headers("admin"),
        )
        assert got.status_code == 200, got.text
        assert [item["import_kwh"] for item in got.json()["items"]] == [1.5]
        roles = {
            row[0]
            for row in conn.execute(
                "SELECT usename FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_start >= %s",
                began,
            )
        }
    url = api.settings.database_url
    assert url is not None
    assert roles == {urlsplit(url.get_secret_value()).username}  # the API's pools: app role

    owners = conn.execute(
        "SELECT relname, pg_get_userbyid(relowner) = current_user FROM pg_class"
        " WHERE relname IN ('readings_p2001_03', 'readings_p2002_07') ORDER BY 1"
    ).fetchall()
    assert owners == [("readings_p2001_03", True), ("readings_p2002_07", True)]
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert actions[-1] == "ingest.readings"


def test_the_app_role_cannot_migrate_and_says_who_can(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only the app's URL, a schema behind head is a one-line error naming the
    owner's setting, not a permission traceback."""
    app_only = settings.model_copy(update={"database_owner_url": None})
    database.downgrade(database_url, "0009")
    monkeypatch.setattr(database, "_ready", set())
    try:
        with pytest.raises(database.DatabaseError, match="METRIFY_DATABASE_OWNER_URL"):
            database.connect(app_only)
    finally:
        database.upgrade(database_url)


def test_a_superuser_app_url_is_warned_about(
    settings: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(database, "_checked", set())
    as_owner = settings.model_copy(update={"database_url": SecretStr(database_url)})
    with caplog.at_level(logging.WARNING, logger="metrify.stores.database"):
        database.connect(as_owner).close()
        database.connect(settings).close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "superuser" in warnings[0]  # the owner's URL only


@pytest.mark.skipif(
    bool(os.environ.get("METRIFY_DATABASE_URL")), reason="the embedded server's own role"
)
def test_the_embedded_server_gets_its_app_role(
    settings: Settings, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    """Without METRIFY_DATABASE_URL the embedded server's app connects as
    ``metrify_app_user``: a login member of metrify_app, made on start-up, no superuser."""
    url = embedded.app_url(database_url)
    assert urlsplit(url).username == embedded.APP_USER and urlsplit(url).password is None
    assert embedded.app_url(database_url) == url  # idempotent
    with psycopg.connect(url) as app_side:
        row = app_side.execute(
            "SELECT current_user, rolsuper, pg_has_role('metrify_app', 'MEMBER')"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (embedded.APP_USER, False, True)
