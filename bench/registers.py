"""What deriving interval energy from registers, and converting units, add to decoding.

(``--unit`` alone is also measured paired: the same kWh column decoded with and without
``--unit import_kwh=Wh``, in alternating order; and the one-time start of pint.)

The same readings decoded two ways, in process (no store): as interval energy in kWh
(the plain path), and as cumulative register reads in Wh (``--unit register_kwh=Wh``)
followed by the register derivation (:mod:`metrify.sources.registers`). Two inputs:

* a synthetic fleet, 1,000 meters x 1,000 half-hourly reads (1M reads), strings as a
  CSV reader hands them out, meter by meter;
* the real Dutch home's five years of hourly import register
  (``../shared/data/dutch-home-registers``, 43,807 reads).

Medians of ``--runs`` runs. The ingest rate it compares with is the whole pipeline's
(``bench/suite.py``): the derivation's share of a load is its time here over the
load's time for the same number of readings.

    .venv/bin/python bench/registers.py [--runs 3]

Writes ``bench/results/registers.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from metrify.contracts.records import READING
from metrify.sources.decode import decode
from metrify.sources.mapping import build_mapping
from metrify.sources.registers import derive_intervals, empty_carry

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def _median(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _synthetic(meters: int = 1000, reads: int = 1000) -> tuple[pl.DataFrame, int]:
    rng = np.random.default_rng(1)
    t = np.tile(np.arange(reads) * 1800 + 1_704_067_200, meters)
    ids = np.repeat([f"M{i}" for i in range(meters)], reads)
    wh = np.cumsum(rng.random((meters, reads)) * 500, axis=1).ravel().round(0)
    return pl.DataFrame({"meter_id": ids, "ts": t.astype(str), "register": wh.astype(str)}), 1800


def _real() -> tuple[pl.DataFrame, int]:
    shared = os.environ.get("METRIFY_SHARED_DATA")
    base = Path(shared) if shared else ROOT.parent.parent / "shared" / "data"
    path = (
        base
        / "dutch-home-registers"
        / "elec_quantity_lt_orig_CurrentElectricityQuantity_5yrhours.csv"
    )
    raw = pl.read_csv(path, has_header=False, new_columns=["ts", "register"], infer_schema=False)
    return raw.with_columns(meter_id=pl.lit("NL")), 3600


def _paired(runs: int, first: Callable[[], object], second: Callable[[], object]) -> list[float]:
    """Medians of ``first`` and ``second`` timed in alternating order (ABBA...), so a
    change in the machine's load hits both alike."""
    times: list[list[float]] = [[], []]
    for run in range(runs):
        order = (0, 1) if run % 2 == 0 else (1, 0)
        for which in order:
            work = first if which == 0 else second
            start = time.perf_counter()
            work()
            times[which].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def pint_start() -> float:
    """Seconds of the first ``--unit`` of a command: pint's registry loaded, once."""
    start = time.perf_counter()
    build_mapping(READING, units=["import_kwh=Wh"], interval_s=1800)
    return time.perf_counter() - start


def measure(raw: pl.DataFrame, interval_s: int, runs: int) -> dict[str, Any]:
    """Seconds to decode as intervals, to decode as registers in Wh, and to derive;
    and, paired, to decode the same intervals with and without ``--unit``."""
    plain = build_mapping(READING, maps=["import_kwh=register"], interval_s=interval_s)
    converted = build_mapping(
        READING, maps=["import_kwh=register"], units=["import_kwh=Wh"], interval_s=interval_s
    )
    registers = build_mapping(
        READING, maps=["register_kwh=register"], units=["register_kwh=Wh"], interval_s=interval_s
    )
    reads = decode(READING, raw, registers).records.with_columns(_line=pl.int_range(pl.len()))

    def derive() -> object:
        return derive_intervals(reads, empty_carry(), interval_s=interval_s, unit_kwh=0.001)

    out = {
        "reads": raw.height,
        "decode_intervals_s": _median(runs, lambda: decode(READING, raw, plain)),
        "decode_registers_wh_s": _median(runs, lambda: decode(READING, raw, registers)),
        "derive_s": _median(runs, derive),
    }
    out["derive_per_million_s"] = out["derive_s"] / raw.height * 1e6
    without, with_unit = _paired(
        max(runs, 5),
        lambda: decode(READING, raw, plain),
        lambda: decode(READING, raw, converted),
    )
    out["paired_decode_kwh_s"] = without
    out["paired_decode_kwh_unit_wh_s"] = with_unit
    out["unit_per_million_s"] = (with_unit - without) / raw.height * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "load_before": os.getloadavg()[0],
        "pint_first_unit_s": pint_start(),
        "synthetic_1m": measure(*_synthetic(), args.runs),
        "dutch_home_5y_hourly": measure(*_real(), args.runs),
        "load_after": os.getloadavg()[0],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "registers.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
