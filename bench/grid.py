"""Grid insight on real data, from the files (no database): the figures of
docs/guides/grid.md and bench/results/grid-2026-12-06.md.

- **London feeder**: the 100 London households of 2013 (half-hourly kWh, UTC) as the
  meters of one synthetic LV feeder of a stated capacity (default 100 kW), whose load is
  their sum: utilisation, peak drivers (coincidence factors) at the feeder's peak.
- **Time-of-use effect**: each household's share of energy in 16:00-20:00 London time,
  ToU against Std (tariffs from household_information.csv), with a bootstrap interval.
- **Shift**: the feeder's peak after moving that observed share of each household's
  peak-window energy into 20:00-24:00, and into the night (00:00-07:00), recomputed.
- **AEMO NSW** (5-minute regional demand, Jan-Feb 2025) as a node load against a stated
  capacity: hours above 80% / 100%, headroom at the peak and at P99.

Each analysis is timed once (wall clock). Usage::

    PYTHONPATH=src METRIFY_SHARED_DATA=/work/shared/data python bench/grid.py [--capacity-kw 100]

Writes ``bench/results/grid.json``. With ``--write-feeder DIR`` it writes instead the
reference and grid files that put the same feeder into a Metrify store, for ``metrify
grid`` (see docs/guides/grid.md): ``nodes.csv`` (F-LON, the stated capacity, 0.4 kV),
``meters.csv`` (the households on F-LON with their tariff, London time) and ``grid.csv``
(F-LON's load: the households' sum times ``--loss-factor``, a stated synthetic loss).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine
from metrify.analytics.grid import (
    PeakWindow,
    loading,
    peak_drivers,
    peak_share,
    shift_peak,
    tariff_effect,
)

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "grid.json"
TZ = "Europe/London"


def data() -> Path:
    return Path(os.environ.get("METRIFY_SHARED_DATA", ROOT.parent.parent / "shared" / "data"))


def london() -> pl.DataFrame:
    """Every distinct parseable reading of the 100 households (first value of a
    duplicated timestamp kept), as the readings contract has them."""
    frames = []
    for path in sorted((data() / "london-smart-meters-2013").glob("*.csv.gz")):
        raw = pl.read_csv(path, infer_schema=False)
        frames.append(raw)
    raw = pl.concat(frames)
    raw.columns = ["meter_id", "ts", "kwh"]
    return (
        raw.select(
            pl.col("meter_id").str.strip_chars(),
            ts=pl.col("ts")
            .str.strip_chars()
            .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False)
            .dt.replace_time_zone("UTC"),
            interval_s=pl.lit(1800, pl.Int32),
            import_kwh=pl.col("kwh").str.strip_chars().cast(pl.Float64, strict=False),
        )
        .filter(pl.col("ts").is_not_null() & pl.col("import_kwh").is_not_null())
        .unique(["meter_id", "ts"], keep="first", maintain_order=True)
    )


def tariffs() -> pl.DataFrame:
    info = pl.read_csv(data() / "london-weather" / "household_information.csv")
    return info.select(meter_id=pl.col("LCLid"), tariff=pl.col("stdorToU"))


def aemo_nsw() -> pl.DataFrame:
    """NSW 5-minute demand; SETTLEMENTDATE is the interval END in UTC+10."""
    files = sorted((data() / "aemo-5min").glob("*_NSW.csv"))
    raw = pl.concat([pl.read_csv(p) for p in files])
    end = pl.col("SETTLEMENTDATE").str.to_datetime("%Y/%m/%d %H:%M:%S")
    return raw.select(
        ts=(end - pl.duration(minutes=5) - pl.duration(hours=10)).dt.replace_time_zone("UTC"),
        interval_s=pl.lit(300, pl.Int32),
        load_mw=pl.col("TOTALDEMAND").cast(pl.Float64),
    ).sort("ts")


def timed(results: dict[str, float], name: str, fn: Any) -> Any:
    t = time.perf_counter()
    out = fn()
    results[name] = round(time.perf_counter() - t, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--capacity-kw", type=float, default=100.0)
    parser.add_argument("--aemo-capacity-mw", type=float, default=14_000.0)
    parser.add_argument("--write-feeder", type=Path, default=None)
    parser.add_argument("--loss-factor", type=float, default=1.04)
    args = parser.parse_args()
    if args.write_feeder:
        write_feeder(args.write_feeder, args.capacity_kw, args.loss_factor)
        return
    seconds: dict[str, float] = {}
    readings = timed(seconds, "read_london_files", london)
    households = readings["meter_id"].n_unique()
    feeder = (
        readings.group_by("ts")
        .agg(pl.col("interval_s").first(), load_mw=pl.col("import_kwh").sum() * 2 / 1000)
        .sort("ts")
    )
    cap_mw = args.capacity_kw / 1000
    load = timed(seconds, "loading", lambda: loading(feeder, cap_mw, percentile=0.99))
    drivers = timed(seconds, "peak_drivers_top4", lambda: peak_drivers(readings, top=4))
    cf = drivers.meters["coincidence_factor"]
    effects, shifts = {}, {}
    for window in (PeakWindow(16, 20), PeakWindow(16, 21)):
        win = f"{window.start:g}-{window.end:g}"
        shares = timed(
            seconds, f"peak_share {win}", lambda w=window: peak_share(readings, TZ, w)
        ).join(tariffs(), on="meter_id")
        effect = timed(
            seconds, f"tariff_effect {win}", lambda s=shares: tariff_effect(s, resamples=4000)
        )
        effects[win] = {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in effect.__dict__.items()
        }
        # the observed share, as `metrify grid flex` uses it: none when ToU used more
        share = min(max(effect.relative, 0.0), 1.0)
        for name, into in (
            (f"evening {window.end:g}-24", PeakWindow(window.end, 24)),
            ("night 0-7", PeakWindow(0, 7)),
        ):
            for label, s in (("observed", share), ("0.2", 0.2)):
                got = timed(
                    seconds,
                    f"shift {win} {name} {label}",
                    lambda s=s, into=into, w=window: shift_peak(
                        readings, s, tz=TZ, window=w, into=into
                    ),
                )
                shifts[f"peak {win} into {name}, share {label}"] = {
                    "share": round(s, 4),
                    "peak_kw": round(got.peak_kw, 2),
                    "peak_ts": got.peak_ts.isoformat(),
                    "new_peak_kw": round(got.new_peak_kw, 2),
                    "new_peak_ts": got.new_peak_ts.isoformat(),
                    "reduction_share": round(got.reduction_share, 4),
                    "new_peak_in_window": got.new_peak_in_window,
                }
    # the 16-20 comparison on subsets of days, to see whether the sign holds
    local = pl.col("ts").dt.convert_time_zone(TZ)
    weekday = local.dt.weekday() <= 5
    subsets = {
        "weekdays": weekday,
        "winter weekdays (Nov-Feb)": weekday & local.dt.month().is_in([1, 2, 11, 12]),
        "summer (Jun-Aug)": local.dt.month().is_in([6, 7, 8]),
    }
    for name, keep in subsets.items():
        sub = peak_share(readings.filter(keep), TZ).join(tariffs(), on="meter_id")
        got = tariff_effect(sub, resamples=4000)
        effects[f"16-20 {name}"] = {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in got.__dict__.items()
        }
    aemo = aemo_nsw()
    nsw = timed(seconds, "loading_aemo", lambda: loading(aemo, args.aemo_capacity_mw))
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "london_feeder": {
            "households": households,
            "readings": readings.height,
            "capacity_kw": args.capacity_kw,
            "peak_kw": round(load.peak_mw * 1000, 2),
            "peak_ts": load.peak_ts.isoformat(),
            "mean_kw": round(load.mean_mw * 1000, 2),
            "load_factor": round(load.load_factor, 4),
            "hours_above_80": load.hours_above_80,
            "hours_above_100": load.hours_above_100,
            "headroom_kw": round(load.headroom_mw * 1000, 2),
            "p99_load_kw": round(load.load_at_percentile_mw * 1000, 2),
            "headroom_p99_kw": round(load.headroom_at_percentile_mw * 1000, 2),
        },
        "peak_drivers_top4": {
            "peak_kw": round(drivers.peak_kw, 2),
            "peak_ts": [t.isoformat() for t in drivers.peak_ts],
            "sum_of_peaks_kw": round(drivers.sum_of_peaks_kw, 2),
            "group_coincidence": round(drivers.group_coincidence, 4),
            "coincidence_factor_quartiles": [
                round(float(cf.quantile(q)), 3) for q in (0.25, 0.5, 0.75)
            ],
            "top5": [
                {
                    k: round(v, 3) if isinstance(v, float) else v
                    for k, v in r.items()
                    if k != "own_peak_ts"
                }
                for r in drivers.meters.head(5).iter_rows(named=True)
            ],
            "top10_share": round(float(drivers.meters["share_of_peak"].head(10).sum()), 4),
        },
        "tariff_effect": effects,
        "shifts": shifts,
        "aemo_nsw": {
            "capacity_mw": args.aemo_capacity_mw,
            "hours": load_hours(nsw),
            "peak_mw": nsw.peak_mw,
            "peak_ts": nsw.peak_ts.isoformat(),
            "hours_above_80": nsw.hours_above_80,
            "hours_above_100": nsw.hours_above_100,
            "headroom_mw": round(nsw.headroom_mw, 2),
            "p99_mw": nsw.load_at_percentile_mw,
            "headroom_p99_mw": round(nsw.headroom_at_percentile_mw, 2),
        },
        "seconds": seconds,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


def write_feeder(folder: Path, capacity_kw: float, loss_factor: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    readings = london()
    (folder / "nodes.csv").write_text(
        f"node_id,kind,capacity_mw,nominal_kv\nF-LON,feeder,{capacity_kw / 1000},0.4\n"
    )
    tariffs().join(readings.select("meter_id").unique(), on="meter_id").select(
        "meter_id", "tariff", node_id=pl.lit("F-LON"), timezone=pl.lit(TZ)
    ).sort("meter_id").write_csv(folder / "meters.csv")
    readings.group_by("ts").agg(load_mw=pl.col("import_kwh").sum() * 2 / 1000 * loss_factor).select(
        node_id=pl.lit("F-LON"),
        ts=pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        interval_s=pl.lit(1800),
        load_mw="load_mw",
    ).sort("ts").write_csv(folder / "grid.csv")
    print(f"wrote {folder}/nodes.csv, meters.csv, grid.csv")


def load_hours(got: Any) -> float:
    return round(float(got.hours), 2)


if __name__ == "__main__":
    main()
