"""Which PostgreSQL to use, and bringing its schema up to date.

``METRIFY_DATABASE_URL`` names any PostgreSQL >= 14; without it the embedded server under
``METRIFY_HOME`` is started. Migrations (Alembic) run automatically the first time a
process touches the database, so no command needs a separate set-up step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from metrify.settings import Settings
from metrify.stores import embedded

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_ready: set[str] = set()


class DatabaseError(RuntimeError):
    """The database cannot be reached or brought up to date (message fit for a user)."""


def database_url(settings: Settings) -> str:
    """The libpq URL in use: the configured one, or the embedded server's (started here)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded.start(settings.home)


def sqlalchemy_url(url: str) -> str:
    """Point SQLAlchemy at psycopg 3 for a plain ``postgresql://`` URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_for(url: str) -> Engine:
    return create_engine(sqlalchemy_url(url), poolclass=None)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(url: str) -> str | None:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` (serialised by an advisory lock)."""
    _migrate(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(url: str, revision: str) -> None:
    """Undo the migrations above ``revision``: for stepping back a release, and for
    tests that must hold data shaped as an older schema had it."""
    _migrate(url, lambda cfg: command.downgrade(cfg, revision))


def _migrate(url: str, step: Callable[[Config], None]) -> None:
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            # Two processes starting together must not both change the schema.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7274031)")
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            step(cfg)
    finally:
        engine.dispose()


def connect(settings: Settings, *, migrate: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """Open a psycopg connection to the store, upgrading the schema on first use."""
    try:
        url = database_url(settings)
        if migrate and url not in _ready:
            if current_revision(url) != head_revision():
                log.info("upgrading database schema to %s", head_revision())
                upgrade(url)
            _ready.add(url)
        return psycopg.connect(url, autocommit=True)
    except embedded.EmbeddedError as exc:
        raise DatabaseError(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
