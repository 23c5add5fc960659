"""Estimation accuracy on real households: hide real readings, estimate them, compare.

The 100 London households of ``../shared/data/london-smart-meters-2013`` (half-hourly,
UTC, all of 2013). For each gap length (1 h, 2 h, 4 h, 8 h, 24 h, 72 h) gaps are put at
random places (fixed seed) where the meter's data around them is complete: the
``profile_weeks`` weeks before (the profile's references), the gap itself and a day
after. Gaps of one meter lie at least five weeks apart, so that no gap hides another's
references. The hidden rows become gap rows (null, ``MISSING``, suspect), ``estimate``
fills them, and the estimates are compared with the hidden truth:

* MAE per interval (kWh per half hour);
* error of the gap's total, as % of the true total (sum over gaps of |estimated total -
  true total| / sum of true totals: a daily-total-style error that small gaps with
  near-zero use cannot blow up), and the per-gap median of that percentage;

for Metrify's method and for the baseline, plain linear interpolation across the whole
gap between the readings on either side. A second run gives the meters cumulative
registers (the running sum of their readings), so that estimates are scaled to the
register delta: that shows what registers buy.

Then the timing the pipeline cares about: a 500k-row frame with no gap, and with 1% gap
rows, median of several runs.

    .venv/bin/python bench/estimation.py [--per-meter 6] [--seed 2013]

Writes ``bench/results/estimation.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from metrify.contracts.records import READING, Quality, Status
from metrify.quality.estimate import estimate
from metrify.settings.vee import VeeConfig

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
SLOT_S = 1800
SLOT_S_US = SLOT_S * 1_000_000
SLOTS_PER_DAY = 48
GAP_HOURS = (1, 2, 4, 8, 24, 72)
START = np.datetime64("2013-01-01T00:00:00", "us")


def data_dir() -> Path:
    shared = os.environ.get("METRIFY_SHARED_DATA")
    base = Path(shared) if shared else ROOT.parent.parent / "shared" / "data"
    folder = base / "london-smart-meters-2013"
    if not folder.is_dir():
        sys.exit(f"real data not found: {folder} (set METRIFY_SHARED_DATA)")
    return folder


def load() -> pl.DataFrame:
    """All households as reading rows: meter_id, ts (UTC), interval_s, import_kwh."""
    raw = pl.read_csv(
        str(data_dir() / "*.csv.gz"),
        schema_overrides={"LCLid": pl.String, "tstp": pl.String, "energy(kWh/hh)": pl.String},
    )
    return (
        raw.select(
            meter_id=pl.col("LCLid").str.strip_chars(),
            ts=pl.col("tstp").str.strip_chars().str.to_datetime(time_unit="us", time_zone="UTC"),
            import_kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
        )
        .drop_nulls(["meter_id", "ts", "import_kwh"])
        .unique(["meter_id", "ts"], keep="first")
        .sort("meter_id", "ts")
    )


def as_frame(readings: pl.DataFrame, registers: bool) -> pl.DataFrame:
    """Reading-contract frame with the pipeline's columns, every row a valid reading."""
    frame = readings.with_columns(
        interval_s=pl.lit(SLOT_S, dtype=pl.Int32),
        register_kwh=pl.col("import_kwh").cum_sum().over("meter_id") + 1000.0
        if registers
        else pl.lit(None, dtype=pl.Float64),
    )
    for name, dtype in READING.schema.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(
        *READING.schema,
        quality=pl.lit(0, dtype=pl.Int32),
        status=pl.lit(Status.VALID.value),
        source=pl.lit("file"),
        _ctx=pl.lit(False),
    )


def pick_gaps(
    readings: pl.DataFrame, slots: int, per_meter: int, cfg: VeeConfig, rng: np.random.Generator
) -> pl.DataFrame:
    """Random gaps of ``slots`` intervals with complete data around them.

    Complete: every interval from ``profile_weeks`` weeks (plus the scaling window)
    before the gap to a day after it is present. Gaps of a meter are five weeks apart.
    """
    before = cfg.profile_weeks * 7 * SLOTS_PER_DAY + cfg.estimate_window_s // SLOT_S
    after = SLOTS_PER_DAY
    spacing = 35 * SLOTS_PER_DAY
    year = 365 * SLOTS_PER_DAY
    picked: list[tuple[str, int]] = []
    for (meter,), part in readings.group_by("meter_id", maintain_order=True):
        slot = ((part["ts"].to_numpy().astype("datetime64[us]") - START) // SLOT_S_US).astype(int)
        present = np.zeros(year + 1, dtype=np.int64)
        present[slot[(slot >= 0) & (slot < year)]] = 1
        cum = np.concatenate([[0], np.cumsum(present)])
        lo, hi = before, year - slots - after
        if hi <= lo:
            continue
        starts = np.arange(lo, hi)
        need = before + slots + after
        complete = starts[(cum[starts + slots + after] - cum[starts - before]) == need]
        chosen: list[int] = []
        for s in rng.permutation(complete)[:400]:
            if all(abs(int(s) - c) >= spacing for c in chosen):
                chosen.append(int(s))
            if len(chosen) == per_meter:
                break
        picked += [(str(meter), c) for c in chosen]
    return pl.DataFrame(
        {"meter_id": [m for m, _ in picked], "slot": [s for _, s in picked]},
        schema={"meter_id": pl.String, "slot": pl.Int64},
    ).with_columns(gap=pl.int_range(pl.len()), slots=pl.lit(slots))


def gap_rows(gaps: pl.DataFrame) -> pl.DataFrame:
    """(meter_id, ts, gap, k) for every hidden interval."""
    return (
        gaps.with_columns(k=pl.int_ranges(0, pl.col("slots")))
        .explode("k")
        .select(
            "meter_id",
            "gap",
            "k",
            ts=pl.lit(START).dt.replace_time_zone("UTC")
            + pl.duration(seconds=(pl.col("slot") + pl.col("k")) * SLOT_S),
        )
    )


def hide(frame: pl.DataFrame, hidden: pl.DataFrame) -> pl.DataFrame:
    """Turn the hidden rows into gap rows, as validation would have made them."""
    mark = hidden.select("meter_id", "ts", _hide=pl.lit(True))
    out = frame.join(mark, on=["meter_id", "ts"], how="left", maintain_order="left")
    h = pl.col("_hide").fill_null(False)
    return out.with_columns(
        import_kwh=pl.when(h).then(None).otherwise(pl.col("import_kwh")),
        register_kwh=pl.when(h).then(None).otherwise(pl.col("register_kwh")),
        quality=pl.when(h).then(int(Quality.MISSING)).otherwise(pl.col("quality")),
        status=pl.when(h).then(pl.lit(Status.SUSPECT.value)).otherwise(pl.col("status")),
        source=pl.when(h).then(pl.lit("vee:gap")).otherwise(pl.col("source")),
    ).drop("_hide")


def linear_baseline(readings: pl.DataFrame, hidden: pl.DataFrame, slots: int) -> pl.DataFrame:
    """Plain linear interpolation between the readings just before and just after."""
    ends = hidden.group_by("gap").agg(pl.col("meter_id").first(), pl.col("ts").min())
    step = pl.duration(seconds=SLOT_S)
    v = readings.select("meter_id", "ts", "import_kwh")
    anchors = (
        ends.with_columns(t0=pl.col("ts") - step, t1=pl.col("ts") + step * slots)
        .join(v.rename({"ts": "t0", "import_kwh": "v0"}), on=["meter_id", "t0"])
        .join(v.rename({"ts": "t1", "import_kwh": "v1"}), on=["meter_id", "t1"])
        .select("gap", "v0", "v1")
    )
    return hidden.join(anchors, on="gap").select(
        "gap",
        "k",
        linear=pl.col("v0") + (pl.col("v1") - pl.col("v0")) * (pl.col("k") + 1) / (slots + 1),
    )


def score(table: pl.DataFrame, column: str) -> dict[str, float]:
    """MAE per interval and error of the gap totals for one estimate column."""
    done = table.filter(pl.col(column).is_not_null().all().over("gap"))
    per_gap = done.group_by("gap").agg(
        true=pl.col("truth").sum(),
        est=pl.col(column).sum(),
        ae=(pl.col(column) - pl.col("truth")).abs().sum(),
        n=pl.len(),
    )
    true_total = float(per_gap["true"].sum())
    abs_total = float((per_gap["est"] - per_gap["true"]).abs().sum())
    pct = per_gap.filter(pl.col("true") > 0).select(
        ((pl.col("est") - pl.col("true")).abs() / pl.col("true") * 100).median()
    )
    return {
        "gaps": per_gap.height,
        "mae_kwh": float(per_gap["ae"].sum()) / max(int(per_gap["n"].sum()), 1),
        "total_error_pct": abs_total / true_total * 100 if true_total else float("nan"),
        "median_gap_total_error_pct": float(pct.item() or float("nan")),
    }


def accuracy(
    readings: pl.DataFrame, per_meter: int, seed: int, cfg: VeeConfig
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    plain, with_reg = as_frame(readings, registers=False), as_frame(readings, registers=True)
    rows: list[dict[str, Any]] = []
    for hours in GAP_HOURS:
        slots = hours * 3600 // SLOT_S
        gaps = pick_gaps(readings, slots, per_meter, cfg, rng)
        hidden = gap_rows(gaps)
        truth = hidden.join(readings, on=["meter_id", "ts"]).select("gap", "k", truth="import_kwh")
        table = truth.join(linear_baseline(readings, hidden, slots), on=["gap", "k"])
        for name, frame in (("metrify", plain), ("metrify_registers", with_reg)):
            t = time.perf_counter()
            out = estimate(hide(frame, hidden), cfg)
            seconds = time.perf_counter() - t
            got = hidden.join(
                out.select("meter_id", "ts", "import_kwh", "source"), on=["meter_id", "ts"]
            ).select(
                "gap",
                "k",
                pl.col("import_kwh").alias(name),
                pl.col("source").alias(f"{name}_source"),
            )
            table = table.join(got, on=["gap", "k"])
            print(
                f"  {hours:>3} h {name}: {gaps.height} gaps, estimate() {seconds:.2f} s",
                file=sys.stderr,
            )
        methods = table.filter(pl.col("k") == 0)["metrify_source"].value_counts().rows()
        rows.append(
            {
                "gap_hours": hours,
                "gaps": gaps.height,
                "intervals": hidden.height,
                "methods": {str(m): int(c) for m, c in methods},
                "metrify": score(table, "metrify"),
                "linear": score(table, "linear"),
                "metrify_registers": score(table, "metrify_registers"),
            }
        )
    return rows


def timing(readings: pl.DataFrame, cfg: VeeConfig, runs: int = 5) -> dict[str, Any]:
    """estimate() on ~500k rows: without gaps (the early exit) and with 1% gap rows."""
    meters = readings.group_by("meter_id").len().filter(pl.col("len") >= 17_000)["meter_id"]
    base = as_frame(
        readings.filter(pl.col("meter_id").is_in(meters.sort().head(30).implode())), False
    )
    base = base.sample(fraction=1.0, shuffle=True, seed=1)  # arrival order is not sorted
    rng = np.random.default_rng(7)
    parts = []
    target = base.height // 100
    total = 0
    lengths = [1, 2, 4, 8, 24]
    gid = 0
    while total < target:
        hours = lengths[gid % len(lengths)]
        slots = hours * 2
        m = str(meters.sort().head(30)[int(rng.integers(30))])
        s = int(rng.integers(40 * 48, 360 * 48))
        parts.append({"meter_id": m, "slot": s, "gap": gid, "slots": slots})
        total += slots
        gid += 1
    hidden = gap_rows(pl.DataFrame(parts)).unique(["meter_id", "ts"])
    gappy = hide(base, hidden)

    def measure(frame: pl.DataFrame) -> dict[str, float]:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            estimate(frame, cfg)
            times.append(time.perf_counter() - t)
        return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}

    estimate(gappy, cfg)  # warm up
    return {
        "rows": base.height,
        "gap_rows": hidden.height,
        "gaps": gid,
        "runs": runs,
        "no_gaps": measure(base),
        "one_percent_gaps": measure(gappy),
    }


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| gap | gaps | Metrify method | MAE Metrify (kWh) | MAE linear (kWh) "
        "| total err Metrify | total err linear | median gap err Metrify / linear "
        "| MAE Metrify+registers |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        m, li, reg = r["metrify"], r["linear"], r["metrify_registers"]
        method = ", ".join(f"{k.split(':')[-1]} {v}" for k, v in sorted(r["methods"].items()))
        lines.append(
            f"| {r['gap_hours']} h | {r['gaps']} | {method} | {m['mae_kwh']:.4f} "
            f"| {li['mae_kwh']:.4f} | {m['total_error_pct']:.1f} % | {li['total_error_pct']:.1f} % "
            f"| {m['median_gap_total_error_pct']:.1f} % / {li['median_gap_total_error_pct']:.1f} % "
            f"| {reg['mae_kwh']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-meter", type=int, default=6, help="gaps per meter and length")
    parser.add_argument("--seed", type=int, default=2013)
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    cfg = VeeConfig()
    readings = load()
    print(
        f"{readings.height:,} readings of {readings['meter_id'].n_unique()} meters", file=sys.stderr
    )
    rows = accuracy(readings, args.per_meter, args.seed, cfg)
    result: dict[str, Any] = {
        "workload": "London households 2013, half-hourly; hidden real readings re-estimated",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "seed": args.seed,
        "config": cfg.model_dump(
            include={
                "interpolate_max_s",
                "estimate_max_s",
                "profile_weeks",
                "max_estimated_reference_share",
                "estimate_window_s",
                "estimate_edge_s",
                "estimate_scale_min",
                "estimate_scale_max",
            }
        ),
        "accuracy": rows,
    }
    if not args.no_timing:
        result["timing"] = timing(readings, cfg)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "estimation.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table_md(rows))
    if "timing" in result:
        t = result["timing"]
        print(
            f"\ntiming, {t['rows']:,} rows: no gaps {t['no_gaps']['median_s'] * 1000:.1f} ms; "
            f"{t['gap_rows']:,} gap rows in {t['gaps']} gaps "
            f"{t['one_percent_gaps']['median_s'] * 1000:.0f} ms (median of {t['runs']})"
        )


if __name__ == "__main__":
    main()
