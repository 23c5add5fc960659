"""Consumption patterns over a year of the 100 London households: time and findings.

The 100 households of ``../shared/data/london-smart-meters-2013`` are registered (tariff
from ``london-weather/household_information.csv``, Europe/London) and their 2013
readings loaded once with ``metrify ingest readings`` into a store (the 30-minute
aggregates then built). Then, ``--runs`` times, ``metrify patterns run --from 2013-01-01
--to 2014-01-01 --households household_information.csv --json`` is timed as a fresh
process (read the year from the aggregates, analyse, store: what the ``patterns`` batch
job does), median with min and max. The issue's target is under a minute.

Reported beside the time: what is in the files (rows, gaps, duplicates, unparseable
values), what the store kept, and the findings of the run: the clusters (k, the
criterion's scores, bootstrap stability) and the time-of-use minus standard difference
in peak-hour share with its 95% bootstrap interval (``metrify patterns compare``), and
the ACORN groups side by side.

    PYTHONPATH=src .venv/bin/python bench/patterns.py [--runs 3] [--home DIR]

Uses ``METRIFY_DATABASE_URL`` if set, else a private embedded PostgreSQL in a temp
folder (``--home`` keeps it, and a store already loaded is reused; the load's figures
of the run that loaded it are then kept in the results).
Results: ``bench/results/patterns.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

from common import machine, server_home, stats

ROOT = Path(__file__).resolve().parent
SRC = ROOT.parent / "src"
RESULTS = ROOT / "results" / "patterns.json"
MAP = ["--map", "meter_id=LCLid", "--map", "ts=tstp", "--map", "import_kwh=energy(kWh/hh)"]


def _data() -> Path:
    return Path(os.environ.get("METRIFY_SHARED_DATA", ROOT.parent.parent / "shared" / "data"))


def _cli(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run ``metrify ARGS`` as a fresh process: (seconds, stdout)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from metrify.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"metrify {' '.join(args)} failed: {done.stderr[-2000:]}")
    return took, done.stdout


def _files_facts(files: list[Path]) -> dict[str, Any]:
    """What the files hold, read without Metrify: rows, values that are not numbers,
    duplicate keys, off-grid times, and the half-hours missing from a whole year."""
    frames = [
        pl.read_csv(f, schema_overrides={"energy(kWh/hh)": pl.String}, infer_schema=False)
        for f in files
    ]
    raw = pl.concat(frames)
    value = raw["energy(kWh/hh)"].str.strip_chars()
    number = value.cast(pl.Float64, strict=False)
    ts = raw["tstp"].str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False)
    per_meter = raw.group_by("LCLid").len()["len"]
    return {
        "files": len(files),
        "rows": raw.height,
        "unparseable_values": int(number.is_null().sum()),
        "zero_values": int((number == 0).sum()),
        "duplicate_keys": int(raw.select("LCLid", "tstp").is_duplicated().sum()),
        "off_half_hour_times": int(
            ((ts.dt.minute() % 30 != 0) | (ts.dt.second() != 0)).fill_null(True).sum()
        ),
        "missing_half_hours": 100 * 17520 - raw.height,
        "rows_per_meter": {
            "min": int(per_meter.min()),  # type: ignore[arg-type]
            "median": float(per_meter.median()),  # type: ignore[arg-type]
            "max": int(per_meter.max()),  # type: ignore[arg-type]
        },
        "meters_under_90pct": int((per_meter < 0.9 * 17520).sum()),
    }


def _load(env: dict[str, str], url: str, folder: Path) -> dict[str, Any]:
    """Register and load the 100 households unless the store holds them already."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    if row and row[0] > 0:
        return {"reused": True}
    files = sorted((_data() / "london-smart-meters-2013").glob("*.csv.gz"))
    info = pl.read_csv(_data() / "london-weather" / "household_information.csv")
    ids = [f.name.split(".")[0] for f in files]
    meters = info.filter(pl.col("LCLid").is_in(ids)).select(
        pl.col("LCLid").alias("meter_id"),
        pl.lit("london").alias("region"),
        pl.lit("Europe/London").alias("timezone"),
        pl.col("stdorToU").alias("tariff"),
    )
    meters_csv = folder / "meters.csv"
    meters.write_csv(meters_csv)
    _cli(env, "ingest", "meters", str(meters_csv))
    took, _ = _cli(env, "ingest", "readings", *map(str, files), *MAP, "--interval", "1800")
    from metrify.stores import aggregates

    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        aggregates.refresh(conn)
        built = time.perf_counter() - started
    return {"reused": False, "ingest_s": took, "aggregates_build_s": built}


def _stored(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        by_status = dict(
            conn.execute("SELECT status, count(*) FROM readings GROUP BY 1").fetchall()
        )
        measured = conn.execute(
            "SELECT count(*) FROM agg_meter_30m WHERE n_present > 0 AND n_missing = 0"
            " AND n_rejected = 0 AND bucket >= '2013-01-01' AND bucket < '2014-01-01'"
        ).fetchone()
    return {"readings_by_status": by_status, "measured_half_hours": measured[0] if measured else 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args(argv)
    households = _data() / "london-weather" / "household_information.csv"
    files = sorted((_data() / "london-smart-meters-2013").glob("*.csv.gz"))
    facts = _files_facts(files)
    with server_home(args.home, "metrify-patterns-") as (_folder, url):
        url = os.environ.get("METRIFY_DATABASE_URL", url)
        work = Path(tempfile.mkdtemp(prefix="patterns-", dir="/tmp"))
        env = {
            **os.environ,
            "PYTHONPATH": str(SRC),
            "METRIFY_DATABASE_URL": url,
            "METRIFY_HOME": str(work / "home"),
            "METRIFY_LAKE_URL": str(work / "lake"),
        }
        loaded = _load(env, url, work)
        stored = _stored(url)
        period = ["--from", "2013-01-01", "--to", "2014-01-01"]
        times, run = [], {}
        for n in range(args.runs):
            took, out = _cli(
                env, "patterns", "run", *period, "--households", str(households), "--json"
            )
            times.append(took)
            run = json.loads(out)
            print(f"run {n + 1}: {took:.1f} s {run}", file=sys.stderr)
        _, clusters = _cli(env, "patterns", "clusters", "--json")
        _, tariff = _cli(env, "patterns", "compare", "--by", "tariff", "--json")
        _, acorn = _cli(env, "patterns", "compare", "--by", "acorn", "--json")
        _, fleet = _cli(env, "patterns", "show", "--fleet", "--json")
        _, clusters_table = _cli(env, "patterns", "clusters")
        _, tariff_table = _cli(env, "patterns", "compare", "--by", "tariff")
        _, acorn_table = _cli(env, "patterns", "compare", "--by", "acorn")
    fleet_row = json.loads(fleet)
    fleet_row.pop("typical_days", None)
    clustering = json.loads(clusters)
    for c in clustering["clusters"]:
        c["centre"] = [round(v, 5) for v in c["centre"]]
    tariff_json = json.loads(tariff)
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "bench/patterns.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "files": facts,
        "load": loaded,
        "store": stored,
        "run": run,
        "patterns_run_s": stats(times),
        "runs": times,
        "target_s": 60.0,
        "fleet": fleet_row,
        "clustering": clustering,
        "tou_vs_std": tariff_json["difference"],
        "tariff_groups": tariff_json["groups"],
        "tou_minus_std_by_slot": tariff_json["by_slot"],
        "acorn_groups": json.loads(acorn)["groups"],
        "tables": {"clusters": clusters_table, "tariff": tariff_table, "acorn": acorn_table},
    }
    if loaded.get("reused") and RESULTS.exists():  # keep the figures of the first load
        before = json.loads(RESULTS.read_text()).get("load", {})
        result["load"] = {**before, "reused": True}
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("patterns_run_s", "run", "tou_vs_std")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
