"""What ``--unit`` conversion and interval detection cost a whole load, paired.

The same real files (London households, half-hourly, UTC) are loaded end to end with
``metrify ingest readings`` (a fresh process per run, on a store emptied before each
run) three ways, in alternating order so that a change in the machine's load hits all
three alike:

* ``plain``: ``--interval 1800``, values taken as kWh;
* ``unit``: the same plus ``--unit import_kwh=kWh`` (a conversion through pint: the
  registry is loaded and every value goes through the conversion's multiply and add,
  whose factor here is 1, so every later stage sees the same values as ``plain``);
* ``detect``: no ``--interval``: each meter's interval detected from its timestamps.

    .venv/bin/python bench/units.py [--files 20] [--runs 3]

Medians of the runs; prints JSON and writes ``bench/results/units.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, server_home
from ingest import reset

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
LONDON = ["--map", "meter_id=LCLid", "--map", "ts=tstp", "--map", "import_kwh=energy(kWh/hh)"]
VARIANTS = {
    "plain": ["--interval", "1800"],
    "unit": ["--interval", "1800", "--unit", "import_kwh=kWh"],
    "detect": [],
}


def _files(count: int) -> list[Path]:
    shared = os.environ.get("METRIFY_SHARED_DATA")
    base = Path(shared) if shared else ROOT.parent.parent / "shared" / "data"
    return sorted((base / "london-smart-meters-2013").glob("*.csv.gz"))[:count]


def _load(url: str, lake: Path, files: list[Path], extra: list[str]) -> tuple[float, int]:
    env = {
        **os.environ,
        "METRIFY_DATABASE_URL": url,
        "METRIFY_LAKE_URL": str(lake),
        "METRIFY_LOG_LEVEL": "ERROR",
    }
    cli = str(Path(sys.executable).with_name("metrify"))
    started = time.perf_counter()
    out = subprocess.run(
        [cli, "ingest", "readings", *map(str, files), *LONDON, *extra, "--json"],
        env=env,
        capture_output=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    return seconds, int(json.loads(out.stdout)["read"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    files = _files(args.files)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    rows = 0
    load_before = os.getloadavg()
    with server_home(None, "metrify-units-") as (folder, url):
        lake = Path(tempfile.mkdtemp(prefix="lake-", dir=folder))
        for run in range(args.runs + 1):  # the first round warms up, uncounted
            order = list(VARIANTS) if run % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                reset(url)
                seconds, rows = _load(url, lake, files, VARIANTS[name])
                if run:
                    times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "files": len(files),
        "rows": rows,
        "seconds": times,
        "median_s": medians,
        "rate_per_s": {name: rows / s for name, s in medians.items()},
        "unit_cost_share": medians["unit"] / medians["plain"] - 1,
        "detect_cost_share": medians["detect"] / medians["plain"] - 1,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "units.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
