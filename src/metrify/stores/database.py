"""Which PostgreSQL to use, and bringing its schema up to date.

``METRIFY_DATABASE_URL`` names any PostgreSQL >= 14; without it the embedded server under
``METRIFY_HOME`` is started. Migrations (Alembic) run automatically the first time a
process touches the database, so no command needs a separate set-up step.

Two roles, two URLs: migrations run as the schema's owner (:func:`owner_url`:
``METRIFY_DATABASE_OWNER_URL``, or the embedded server's superuser), everything else
connects as a member of the least-privileged ``metrify_app`` group (:func:`database_url`),
which may read and write data but not change the schema, the audit log's past or its
triggers. A deployment that gives one URL only keeps working, migrating with it, and is
warned once per process when that URL is a superuser or the schema's owner.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import psycopg

from metrify.settings import Settings
from metrify.stores import embedded
from metrify.stores.traced import cursor_options

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
#: a migration's own ``revision = "..."`` and ``down_revision = "..." | None`` lines
_REVISION: Final = re.compile(r"""^revision\s*(?::[^=\n]*)?=\s*["']([^"'\n]+)["']\s*$""", re.M)
_DOWN_REVISION: Final = re.compile(
    r"""^down_revision\s*(?::[^=\n]*)?=\s*(?:None|["']([^"'\n]+)["'])\s*$""", re.M
)
_ready: set[str] = set()
#: app URLs whose role was checked for too much privilege
_checked: set[str] = set()


class DatabaseError(RuntimeError):
    """The database cannot be reached or brought up to date (message fit for a user)."""


def database_url(settings: Settings) -> str:
    """The libpq URL the app connects with: the configured one, or the embedded server's
    (started here) as its least-privileged login role."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded.app_url(embedded.start(settings.home))


def owner_url(settings: Settings) -> str:
    """The libpq URL migrations run with: the owner's if configured, else the app's URL
    (a one-URL deployment), else the embedded server's superuser (started here)."""
    for url in (settings.database_owner_url, settings.database_url):
        if url is not None:
            return url.get_secret_value()
    return embedded.start(settings.home)


def sqlalchemy_url(url: str) -> str:
    """Point SQLAlchemy at psycopg 3 for a plain ``postgresql://`` URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_for(url: str) -> Engine:
    from sqlalchemy import create_engine

    return create_engine(sqlalchemy_url(url), poolclass=None)


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def plain_head() -> str | None:
    """The head revision as the migration files state it in plain lines (one
    ``revision`` and one ``down_revision`` each, a single line of descent's end), or
    None when any file says it otherwise (a merge, a computed value): then only alembic
    can tell. A command that finds the store at this head needs neither alembic nor
    SQLAlchemy, whose import was a quarter of a short load's start-up."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        if path.name.startswith("_"):
            continue
        text = path.read_text(encoding="utf-8")
        own, down = _REVISION.findall(text), _DOWN_REVISION.findall(text)
        if len(own) != 1 or len(down) != 1 or own[0] in revisions:
            return None
        revisions.add(own[0])
        if down[0]:
            parents.add(down[0])
    heads = revisions - parents
    if len(heads) != 1 or not parents <= revisions:
        return None
    return heads.pop()


def _at_plain_head(url: str) -> bool:
    """Whether the store's recorded revision is :func:`plain_head` (False when either
    cannot be read plainly: the caller then asks alembic)."""
    head = plain_head()
    if head is None:
        return False
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except psycopg.Error:
        return False
    return [row[0] for row in rows] == [head]


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` (serialised by an advisory lock)."""
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    try:
        _migrate(url, lambda cfg: command.upgrade(cfg, revision))
    except DBAPIError as exc:
        raise _denied(exc) from exc


def downgrade(url: str, revision: str) -> None:
    """Undo the migrations above ``revision``: for stepping back a release, and for
    tests that must hold data shaped as an older schema had it."""
    from alembic import command

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


def _denied(exc: DBAPIError) -> DatabaseError:
    """A migration refused for want of privilege, as a user's error naming the fix."""
    if not isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
        raise exc
    return DatabaseError(
        f"this role may not migrate the schema ({first_line(exc.orig)}): migrations run as "
        "the schema's owner; set METRIFY_DATABASE_OWNER_URL to the owner's URL"
    )


def prepare(settings: Settings) -> str:
    """Bring the schema to head as the owner (once per process) and return the app's URL."""
    owner = owner_url(settings)
    if owner not in _ready and _at_plain_head(owner):
        _ready.add(owner)
    if owner not in _ready:
        from sqlalchemy.exc import DBAPIError

        try:
            behind = current_revision(owner) != head_revision()
        except DBAPIError as exc:  # a role that may not even read alembic_version
            raise _denied(exc) from exc
        if behind:
            log.info("upgrading database schema to %s", head_revision())
            upgrade(owner)
        _ready.add(owner)
    url = database_url(settings)
    if url not in _checked:
        _warn_if_privileged(url)
        _checked.add(url)
    return url


def _warn_if_privileged(url: str) -> None:
    """One warning when the app's role could rewrite the audit log or the schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_user, r.rolsuper, pg_has_role(c.relowner, 'MEMBER')"
            " FROM pg_roles r, pg_class c"
            " WHERE r.rolname = current_user AND c.oid = 'public.audit_log'::regclass"
        ).fetchone()
    if row is not None and (row[1] or row[2]):
        log.warning(
            "the app connects to PostgreSQL as %s, a %s: set METRIFY_DATABASE_URL to a "
            "member of metrify_app and METRIFY_DATABASE_OWNER_URL to the owner "
            "(docs/guides/operations.md, database roles)",
            row[0],
            "superuser" if row[1] else "role owning the schema",
        )


def connect(settings: Settings, *, migrate: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """Open a psycopg connection to the store as the app's role, upgrading the schema
    (as the owner) on first use."""
    try:
        url = prepare(settings) if migrate else database_url(settings)
        return psycopg.connect(url, autocommit=True, **cursor_options())
    except embedded.EmbeddedError as exc:
        raise DatabaseError(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
