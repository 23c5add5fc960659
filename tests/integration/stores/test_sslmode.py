"""TLS to PostgreSQL is libpq's: ``sslmode`` (and ``sslrootcert``, ``sslcert``...) in
``METRIFY_DATABASE_URL`` reach every connection Metrify opens, the direct ones, the
API's pools and the migrations' SQLAlchemy engine, untouched. The test database is
reached over a Unix socket, where libpq encrypts nothing, so the test asserts the
parameter each connection was opened with (a non-default one), not a TLS handshake."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from metrify.settings import Settings, get_settings
from metrify.stores import database, pools


def _with(url: str, **params: str) -> str:
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def _sslmode(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    options = {o.keyword: o.val for o in conn.pgconn.info}
    return (options[b"sslmode"] or b"").decode()


def test_sslmode_reaches_every_connection(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    assert settings.database_url is not None
    app = _with(settings.database_url.get_secret_value(), sslmode="disable")
    owner = _with(database_url, sslmode="disable")
    monkeypatch.setenv("METRIFY_DATABASE_URL", app)
    monkeypatch.setenv("METRIFY_DATABASE_OWNER_URL", owner)
    get_settings.cache_clear()
    configured = get_settings()

    # the default is "prefer": "disable" can only come from the URL
    with psycopg.connect(settings.database_url.get_secret_value()) as plain:
        assert _sslmode(plain) == "prefer"

    with database.connect(configured) as conn:
        assert _sslmode(conn) == "disable"

    pool = pools.sync_pool(database.database_url(configured), 1)
    pool.open(wait=True)
    try:
        with pool.connection() as pooled:
            assert _sslmode(pooled) == "disable"
    finally:
        pool.close()

    engine = database.engine_for(database.owner_url(configured))
    try:
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            assert _sslmode(raw) == "disable"
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()

    # and a misspelt mode is libpq's error, one line, not silently the default
    bad = _with(settings.database_url.get_secret_value(), sslmode="verify-fll")
    monkeypatch.setenv("METRIFY_DATABASE_URL", bad)
    get_settings.cache_clear()
    with pytest.raises(database.DatabaseError, match="sslmode"):
        database.connect(get_settings(), migrate=False)
