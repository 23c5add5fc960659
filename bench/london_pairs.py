"""Paired runs of the London load: old code, raw COPY, new code, alternating.

The machine is shared, so a Metrify figure alone says little; this runs the old tree
(``git archive`` of a commit into a folder), the suite's raw COPY peer and the new tree
one after the other, several times, on one private embedded PostgreSQL, and reports
each run's wall time, the ``metrify`` process's CPU (user + system of the child), the
PostgreSQL backends' CPU (the postmaster's reaped-children time across the run) and
what the store holds afterwards (rows, flags, statuses, anomalies), so old and new are
also checked for storing the same.

    .venv/bin/python bench/london_pairs.py --old /tmp/old --new . [--triples 5]
        [--no-copy] [--files 100] [--fleet METERSxDAYS]

``--old``/``--new``: repository roots (their ``src`` goes first on ``PYTHONPATH``).
``--fleet``: instead of London, the simulated fleet (``bench/ingest.py``'s, seed 7)
as daily Parquet files, old and new only. ``--history``: instead of London, one meter's
long history, the Dutch home's five years of hourly register reads
(``dutch-home-registers/elec_quantity_lt_orig_*_5yrhours.csv``, interval energy derived
from them), old and new only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

from common import byte_compiled
from ingest import reset
from suite import LONDON_ARGS, SHARED, Loaders, Log, input_facts

ROOT = Path(__file__).resolve().parent
#: ``--history``: one meter's long history and how it is loaded
HISTORY_FILE = "elec_quantity_lt_orig_*_5yrhours.csv"
HISTORY_ARGS = [
    "--no-header", "--map", "ts=#1", "--map", "register_kwh=#2", "--unit", "register_kwh=Wh",
    "--set", "meter_id=NL-home-import-low", "--interval", "3600",
]  # fmt: skip

STORE_FACTS = {
    "rows": "SELECT count(*) FROM readings",
    "quality_sum": "SELECT coalesce(sum(quality), 0) FROM readings",
    "estimated": "SELECT count(*) FROM readings WHERE status = 'estimated'",
    "suspect": "SELECT count(*) FROM readings WHERE status = 'suspect'",
    "rejected": "SELECT count(*) FROM readings WHERE status = 'rejected'",
    "flagged_anomaly": "SELECT count(*) FROM readings WHERE quality & 1024 <> 0",
    "import_sum": "SELECT round(coalesce(sum(import_kwh), 0)::numeric, 6) FROM readings",
    "row_hash": "SELECT coalesce(sum(hashtext(meter_id || ts::text || quality::text"
    " || status || coalesce(import_kwh::text, '-') || interval_s::text)::numeric), 0)"
    " FROM readings",
    "anomalies": "SELECT count(*) FROM anomalies",
    "anomaly_hash": "SELECT coalesce(sum(hashtext(row(a.*)::text)::numeric), 0) FROM"
    " (SELECT subject_id, ts_start, ts_end, detector, severity, round(score::numeric, 6)"
    " FROM anomalies) a",
    "history": "SELECT count(*) FROM reading_history",
    "quarantine": "SELECT count(*) FROM quarantine",
}


def postmaster_children_cpu(pgdata: Path) -> float:
    """CPU seconds of the postmaster's reaped children (the backends that have ended)."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[13]) + int(fields[14])) / ticks  # cutime, cstime


def store_facts(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, sql in STORE_FACTS.items():
            try:
                row = conn.execute(sql).fetchone()
                out[name] = str(row[0]) if row else None
            except psycopg.Error as exc:
                out[name] = f"error: {exc}".splitlines()[0]
    return out


def run_metrify(
    tree: Path, url: str, pgdata: Path, files: list[Path], extra: list[str], work: Path
) -> dict[str, Any]:
    reset(url)
    byte_compiled(tree / "src")
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(tree / "src"),
        "METRIFY_DATABASE_URL": url,
        "METRIFY_LAKE_URL": str(lake),
        "METRIFY_VEE__ENABLED": "true",
        "METRIFY_ANOMALY__ENABLED": "true",
        "METRIFY_LOG_LEVEL": "ERROR",
    }
    command = [
        sys.executable, "-c", "import sys; from metrify.cli import main; sys.argv[0] = 'metrify';"
        " sys.exit(main())", "ingest", "readings", *map(str, files), *extra, "--json",
    ]  # fmt: skip
    wrap = os.environ.get("PAIRS_WRAP")  # e.g. a profiler: "py-spy record -o out.svg --"
    if wrap:
        command = [*wrap.split(), *command]
    load = os.getloadavg()[0]
    pg_before = postmaster_children_cpu(pgdata)
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    pg_cpu = postmaster_children_cpu(pgdata) - pg_before
    try:
        summary = json.loads(stdout)
    except json.JSONDecodeError:
        summary = {"error": stderr[-2000:]}
    facts = store_facts(url)
    shutil.rmtree(lake, ignore_errors=True)
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "pg_cpu": pg_cpu,
        "rss_mib": usage.ru_maxrss / 1024,
        "load": load,
        "status": os.waitstatus_to_exitcode(status),
        "read": summary.get("read"),
        "summary": {
            k: summary.get(k)
            for k in ("read", "accepted", "gaps", "estimated", "rejected", "anomalies", "statuses")
        },
        "store": facts,
        "stderr_tail": stderr[-500:] if os.waitstatus_to_exitcode(status) not in (0, 1) else "",
    }


def fleet_files(spec: str, work: Path) -> list[Path]:
    from metrify.simulation import Fleet, FleetSpec, write_fleet

    meters, days = (int(x) for x in spec.split("x"))
    sim = Fleet(FleetSpec(meters=meters, days=days, interval_s=900, seed=7))
    write_fleet(sim, work / "sim", "parquet")
    return sorted((work / "sim" / "readings").glob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--triples", type=int, default=5)
    parser.add_argument("--no-copy", action="store_true")
    parser.add_argument("--only", choices=["old", "new"], default=None)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--fleet", default=None, help="METERSxDAYS: the simulated fleet")
    parser.add_argument("--history", action="store_true", help="one meter's five years")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines of every run")
    args = parser.parse_args()

    from metrify.stores import database, embedded

    log = Log()
    work = Path(tempfile.mkdtemp(prefix="lpairs", dir="/tmp"))
    home = work / "home"
    url = embedded.start(home, keep_running=False)
    pgdata = (home / "pg").resolve()
    database.upgrade(url)
    history = None
    if args.fleet:
        files = fleet_files(args.fleet, work)
        extra: list[str] = []
        kind = "parquet"
    elif args.history:
        files = sorted((SHARED / "dutch-home-registers").glob(HISTORY_FILE))
        if not files:
            sys.exit(f"no {HISTORY_FILE} under {SHARED / 'dutch-home-registers'}")
        extra = HISTORY_ARGS
        kind = "history"
        history = pl.read_csv(files[0], has_header=False).height
    else:
        files = sorted((SHARED / "london-smart-meters-2013").glob("*.csv.gz"))[: args.files]
        extra = LONDON_ARGS
        kind = "london"
    if history is None:
        rows, keys, months = input_facts(kind, files)
    else:  # register reads: the copy peer does not run
        rows, keys, months = history, history, []
    log(f"{len(files)} files, {rows:,} rows, {keys:,} keys")
    loaders = Loaders(url, work, None, log, ["copy"])
    order = [("old", args.old), ("copy", None), ("new", args.new)]
    if args.no_copy or args.fleet or args.history:
        order = [o for o in order if o[0] != "copy"]
    if args.only:
        order = [o for o in order if o[0] == args.only]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in order}
    try:
        for triple in range(args.triples):
            for name, tree in order:
                if tree is None:
                    load = os.getloadavg()[0]
                    pg_before = postmaster_children_cpu(pgdata)
                    run = loaders.peer("copy", kind, files, months, keys)
                    run["pg_cpu"] = postmaster_children_cpu(pgdata) - pg_before
                    run["load"] = load
                    log(
                        f"{triple + 1} copy: {run['seconds']:.2f} s"
                        f" ({rows / run['seconds']:,.0f}/s), PG {run['pg_cpu']:.1f} s,"
                        f" load {load:.1f}"
                    )
                else:
                    run = run_metrify(tree, url, pgdata, files, extra, work)
                    log(
                        f"{triple + 1} {name}: {run['seconds']:.2f} s"
                        f" ({rows / run['seconds']:,.0f}/s), CPU {run['cpu']:.1f} s,"
                        f" PG {run['pg_cpu']:.1f} s, RSS {run['rss_mib']:,.0f} MiB,"
                        f" load {run['load']:.1f}, exit {run['status']} {run['stderr_tail']}"
                    )
                    log(f"   store {json.dumps(run['store'])}")
                run["name"], run["triple"] = name, triple + 1
                results[name].append(run)
                if args.out:
                    with args.out.open("a") as f:
                        f.write(json.dumps(run, default=str) + "\n")
    finally:
        embedded.stop(home)
        shutil.rmtree(work, ignore_errors=True)
    for name, runs in results.items():
        if not runs:
            continue
        secs = statistics.median(r["seconds"] for r in runs)
        line = f"{name}: median {secs:.2f} s ({rows / secs:,.0f}/s)"
        if "cpu" in runs[0]:
            line += f", CPU {statistics.median(r['cpu'] for r in runs):.1f} s"
        line += f", PG {statistics.median(r['pg_cpu'] for r in runs):.1f} s"
        print(line)
    if results.get("copy"):
        for name in ("old", "new"):
            if results.get(name):
                ratios = [
                    c["seconds"] / m["seconds"]
                    for c, m in zip(results["copy"], results[name], strict=False)
                ]
                print(f"{name}/COPY per triple: {[round(r, 2) for r in ratios]}"
                      f" median {statistics.median(ratios):.2f}")  # fmt: skip
    stores = {
        name: {json.dumps(r["store"], sort_keys=True) for r in runs}
        for name, runs in results.items()
        if runs and "store" in runs[0]
    }
    print("distinct store facts:", json.dumps({k: sorted(v) for k, v in stores.items()}, indent=1))


if __name__ == "__main__":
    main()
