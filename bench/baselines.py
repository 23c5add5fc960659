"""Weather-normalised baselines: accuracy against eemeter, and the batch job's time.

``compare``: the first ``--meters`` London households of 2013 (default 100) and the
London Dark Sky hourly temperatures (UTC, °C). Every model sees the same inputs, built
once by Metrify's own preparation (:mod:`metrify.analytics.baselines.prepare`): daily
use per local day with the day's mean temperature, and hourly use per hour with its
temperature. Every fourth ISO week of the year is held out (13 weeks, spread over the
seasons); the models fit on the other 39 weeks and predict every point. Compared:

* Metrify ``daily`` (CalTRACK 2.0 degree-day model) against eemeter 4's ``DailyModel``
  (its current daily model) and ``DailyModel(model="legacy")`` (its CalTRACK 2.0 one);
* Metrify ``hourly`` (TOWT) against eemeter's ``HourlyCaltrackModel``.

Scored per meter on the held-out points: CV(RMSE) = sqrt(mean((y - yhat)^2)) / mean(y)
and NMBE = sum(y - yhat) / (m * mean(y)) (out of sample, so ``p`` = 0 for every model);
and, for reference, the same on the fitted points. eemeter runs in its own venv
bench/.eemeter-venv, built from bench/eemeter-requirements.txt (recreated when the pins
change), by ``bench/peers/eemeter_baseline_peer.py``.

``timing``: the same households loaded into a private embedded PostgreSQL (readings
with COPY, the station's hourly temperatures as weather observations, each meter linked
to the station), then the ``baselines`` batch job (:func:`metrify.batch.baselines.run`:
read, fit daily and hourly for every meter on the year, store) timed ``--runs`` times,
median with min and max. Target (issue 22): under a minute for 100 households.

    .venv/bin/python bench/baselines.py [compare] [timing] [--meters 100] [--runs 3]

Results: ``bench/results/baselines.json`` and ``bench/results/baselines-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import io
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

import numpy as np
import polars as pl
import psycopg

import common
from common import machine, server_home, stats

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
VENV = ROOT / ".eemeter-venv"
REQUIREMENTS = ROOT / "eemeter-requirements.txt"
PEER = ROOT / "peers" / "eemeter_baseline_peer.py"
RESULTS = ROOT / "results"
TZ = "Europe/London"
STATION = "LONDON-DARKSKY"


def data_folder() -> Path:
    return Path(os.environ.get("METRIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_venv() -> Path:
    """eemeter's own venv, (re)built when the pinned requirements change."""
    return common.ensure_venv(VENV, REQUIREMENTS, common.base_python(), log)


def households(count: int) -> list[Path]:
    return sorted((data_folder() / "london-smart-meters-2013").glob("*.csv.gz"))[:count]


def read_household(path: Path) -> pl.DataFrame:
    """One household's file: ``ts`` (UTC), ``kwh``; values padded with spaces, a few
    "Null", duplicates kept once."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    frame = pl.read_csv(io.BytesIO(raw), schema_overrides={"energy(kWh/hh)": pl.Utf8})
    return (
        frame.select(
            ts=pl.col("tstp").str.strip_chars().str.to_datetime(time_unit="us")
            .dt.replace_time_zone("UTC"),
            kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
        )
        .drop_nulls()
        .unique("ts", keep="first")
        .sort("ts")
    )  # fmt: skip


def read_weather() -> pl.DataFrame:
    """Dark Sky's hourly London temperatures: °C, ``time`` in UTC."""
    path = data_folder() / "london-weather" / "weather_hourly_darksky.csv"
    frame = pl.read_csv(path, null_values=["NULL"], infer_schema_length=None)
    return frame.select(
        ts=pl.col("time").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC"),
        temperature_c=pl.col("temperature").cast(pl.Float64),
    ).drop_nulls()


def held_out_days(days: pl.Series) -> pl.Series:
    """Every fourth ISO week is held out."""
    return (days.dt.week() % 4) == 0


# -- compare ------------------------------------------------------------------------


def _scores(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    ok = ~np.isnan(yhat)
    if ok.sum() < 2 or y[ok].mean() == 0:
        return {"cvrmse": float("nan"), "nmbe": float("nan"), "points": int(ok.sum())}
    y, yhat = y[ok], yhat[ok]
    return {
        "cvrmse": float(np.sqrt(np.mean((y - yhat) ** 2)) / y.mean()),
        "nmbe": float(np.sum(y - yhat) / (y.size * y.mean())),
        "points": int(y.size),
    }


def head_to_head(table: pl.DataFrame, ours: str, theirs: str) -> dict[str, Any]:
    """Per meter with both scores: how often Metrify's CV(RMSE) is at least as good,
    how often within 1 % of the peer's (relative), and the medians."""
    both = table.select(ours, theirs).fill_nan(None).drop_nulls()
    return {
        "meters": both.height,
        "metrify_at_least_as_good": int((both[ours] <= both[theirs] + 1e-12).sum()),
        "metrify_within_1pct": int((both[ours] <= 1.01 * both[theirs]).sum()),
        "median_metrify": both[ours].median(),
        "median_peer": both[theirs].median(),
    }


PAIRS = {
    "daily_vs_eemeter": ("daily_metrify_test_cvrmse", "daily_eemeter_test_cvrmse"),
    "daily_vs_eemeter_legacy": ("daily_metrify_test_cvrmse", "daily_eemeter_legacy_test_cvrmse"),
    "daily_strict_vs_eemeter": ("daily_metrify_strict_test_cvrmse", "daily_eemeter_test_cvrmse"),
    "daily_strict_vs_eemeter_legacy": (
        "daily_metrify_strict_test_cvrmse",
        "daily_eemeter_legacy_test_cvrmse",
    ),
    "daily_vs_strict": ("daily_metrify_test_cvrmse", "daily_metrify_strict_test_cvrmse"),
    "daily_unsplit_vs_eemeter": ("daily_metrify_unsplit_test_cvrmse", "daily_eemeter_test_cvrmse"),
    "daily_vs_unsplit": ("daily_metrify_test_cvrmse", "daily_metrify_unsplit_test_cvrmse"),
    "hourly_vs_eemeter": ("hourly_metrify_test_cvrmse", "hourly_eemeter_test_cvrmse"),
    "hourly_plain_vs_eemeter": ("hourly_metrify_plain_test_cvrmse", "hourly_eemeter_test_cvrmse"),
    "hourly_vs_plain": ("hourly_metrify_test_cvrmse", "hourly_metrify_plain_test_cvrmse"),
}


def compare(args: argparse.Namespace) -> dict[str, Any]:
    from metrify.analytics import baselines
    from metrify.analytics.baselines import prepare

    python = ensure_venv()
    weather = read_weather()
    daily_frames, hourly_frames = [], []
    for path in households(args.meters):
        meter = path.name.split(".")[0]
        use = read_household(path)
        d = prepare.daily_frame(use, weather, TZ).with_columns(meter=pl.lit(meter))
        h = prepare.hourly_frame(use, weather, TZ).with_columns(meter=pl.lit(meter))
        local_day = h["ts"].dt.convert_time_zone(TZ).dt.date()
        daily_frames.append(d.with_columns(train=~held_out_days(d["day"])))
        hourly_frames.append(h.with_columns(train=~held_out_days(local_day)))
    daily = pl.concat(daily_frames)
    hourly = pl.concat(hourly_frames)
    log(f"{daily['meter'].n_unique()} meters: {daily.height} days, {hourly.height} hours")

    # Metrify, one meter at a time as the job does
    # each variant timed on its own: the default model, and the ones it is compared with
    preds_d, preds_h = [], []
    seconds = {"metrify_daily": 0.0, "metrify_daily_unsplit": 0.0, "metrify_daily_strict": 0.0,
               "metrify_hourly": 0.0, "metrify_hourly_plain": 0.0}  # fmt: skip

    def timed(name: str, fit: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fit(*args, **kwargs)
        seconds[name] += time.perf_counter() - t0
        return out

    with baselines.one_thread():
        for rows in daily.partition_by("meter", maintain_order=True):
            train = rows.filter("train")
            try:
                model = timed("metrify_daily", baselines.fit_daily, train)
                unsplit = timed("metrify_daily_unsplit", baselines.fit_daily, train, split=False)
                strict = timed("metrify_daily_strict", baselines.fit_daily, train, weekend=False)
                got, got_strict = model.predict_days(rows), strict.predict_days(rows)
                got_unsplit = unsplit.predict_days(rows)
                kind = model.kind + ("+weekend" if model.weekend_shift is not None else "")
                split = model.split
            except ValueError:
                got = got_strict = got_unsplit = np.full(rows.height, np.nan)
                kind = split = "none"
            preds_d.append(
                rows.select("meter", "day").with_columns(
                    predicted=pl.Series(got), strict=pl.Series(got_strict),
                    unsplit=pl.Series(got_unsplit), kind=pl.lit(kind), split=pl.lit(split),
                )
            )  # fmt: skip
        for rows in hourly.partition_by("meter", maintain_order=True):
            train = rows.filter("train")
            model_h = timed("metrify_hourly", baselines.fit_hourly, train)
            plain = timed("metrify_hourly_plain", baselines.fit_hourly, train, shrink=False)
            preds_h.append(rows.select("meter", "ts").with_columns(
                predicted=pl.Series(model_h.predict(rows)),
                plain=pl.Series(plain.predict(rows))))  # fmt: skip
    ours_d, ours_h = pl.concat(preds_d), pl.concat(preds_h)
    log("Metrify: " + json.dumps({k: round(v, 1) for k, v in seconds.items()}))

    peer_meters = sorted(daily["meter"].unique().to_list())[: args.peer_meters]
    peer_daily = daily.filter(pl.col("meter").is_in(peer_meters))
    peer_hourly = hourly.filter(pl.col("meter").is_in(peer_meters)).with_columns(
        pl.col("ts").dt.convert_time_zone("UTC")
    )
    peer, ee, cached = run_peer(python, peer_daily, peer_hourly)
    ee_d = ee["daily"].with_columns(pl.col("day").cast(pl.Date))
    ee_dl = ee["daily_legacy"].with_columns(pl.col("day").cast(pl.Date))
    ee_h = ee["hourly"].with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    joined_d = (
        daily.join(ours_d, on=["meter", "day"])
        .join(ee_d.rename({"predicted": "ee"}), on=["meter", "day"], how="left")
        .join(ee_dl.rename({"predicted": "ee_legacy"}), on=["meter", "day"], how="left")
    )
    joined_h = (
        hourly.with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
        .join(ours_h.with_columns(pl.col("ts").dt.convert_time_zone("UTC")), on=["meter", "ts"])
        .join(ee_h.rename({"predicted": "ee"}), on=["meter", "ts"], how="left")
    )

    rows = []
    for (meter,), d in joined_d.partition_by("meter", as_dict=True, maintain_order=True).items():
        h = joined_h.filter(pl.col("meter") == meter)
        row: dict[str, Any] = {
            "meter": meter,
            "daily_form": d["kind"][0],
            "daily_split": d["split"][0],
        }
        for split, keep in (("test", ~d["train"]), ("train", d["train"])):
            y = d.filter(keep)["kwh"].to_numpy()
            for col, name in (("predicted", "metrify"), ("strict", "metrify_strict"),
                              ("unsplit", "metrify_unsplit"), ("ee", "eemeter"),
                              ("ee_legacy", "eemeter_legacy")):  # fmt: skip
                s = _scores(y, d.filter(keep)[col].fill_null(np.nan).to_numpy())
                row[f"daily_{name}_{split}_cvrmse"] = s["cvrmse"]
                row[f"daily_{name}_{split}_nmbe"] = s["nmbe"]
        for split, keep in (("test", ~h["train"]), ("train", h["train"])):
            y = h.filter(keep)["kwh"].to_numpy()
            for col, name in (
                ("predicted", "metrify"),
                ("plain", "metrify_plain"),
                ("ee", "eemeter"),
            ):
                s = _scores(y, h.filter(keep)[col].fill_null(np.nan).to_numpy())
                row[f"hourly_{name}_{split}_cvrmse"] = s["cvrmse"]
                row[f"hourly_{name}_{split}_nmbe"] = s["nmbe"]
        rows.append(row)
    table = pl.DataFrame(rows)

    return {
        "meters": table.height,
        "peer_meters": len(peer_meters),
        "peer_cached": cached,
        "held_out": "every 4th ISO week of 2013 (week % 4 == 0)",
        "eemeter": peer["eemeter"],
        "eemeter_failed": {k: len(v) for k, v in peer["failed"].items()},
        "eemeter_failures_sample": {
            k: dict(list(v.items())[:3]) for k, v in peer["failed"].items()
        },
        "seconds": {**seconds, **{f"eemeter_{k}": v for k, v in peer["seconds"].items()}},
        **{name: head_to_head(table, *cols) for name, cols in PAIRS.items()},
        "daily_forms": dict(table.group_by("daily_form").len().iter_rows()),
        "daily_splits": dict(table.group_by("daily_split").len().iter_rows()),
        "per_meter": table.to_dicts(),
    }


def run_peer(
    python: Path, daily: pl.DataFrame, hourly: pl.DataFrame
) -> tuple[dict[str, Any], dict[str, pl.DataFrame], bool]:
    """eemeter's predictions for the inputs, cached under the venv by the inputs' hash
    (eemeter takes tens of seconds per meter and model; a re-run of the benchmark with
    the same inputs reuses them, and says so)."""
    names = ("daily", "daily_legacy", "hourly")
    digest = hashlib.sha256()
    for frame in (daily, hourly):
        digest.update(frame.hash_rows().to_numpy().tobytes())
    digest.update(REQUIREMENTS.read_bytes())
    cache = VENV / "cache" / digest.hexdigest()[:16]
    cached = (cache / "peer.json").exists()
    if cached:
        log(f"eemeter: reusing the predictions in {cache.relative_to(REPO)}")
    else:
        work = Path(tempfile.mkdtemp(prefix="metrify-bl-"))
        try:
            daily.write_parquet(work / "daily.parquet")
            hourly.write_parquet(work / "hourly.parquet")
            spec = {
                "daily": str(work / "daily.parquet"),
                "hourly": str(work / "hourly.parquet"),
                "out": str(work),
                "models": list(names),
            }
            (work / "spec.json").write_text(json.dumps(spec))
            log(f"eemeter on {daily['meter'].n_unique()} meters ...")
            done = subprocess.run(
                [str(python), str(PEER), str(work / "spec.json")],
                capture_output=True, text=True, check=False,
                env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"eemeter peer failed:\n{done.stderr[-4000:]}")
            cache.mkdir(parents=True, exist_ok=True)
            for name in names:
                shutil.copy(work / f"eemeter_{name}.parquet", cache)
            (cache / "peer.json").write_text(done.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    peer = json.loads((cache / "peer.json").read_text())
    log(f"eemeter {peer['eemeter']}: {peer['seconds']}")
    return peer, {n: pl.read_parquet(cache / f"eemeter_{n}.parquet") for n in names}, cached


# -- timing -------------------------------------------------------------------------


def _seed(url: str, paths: list[Path], weather: pl.DataFrame) -> int:
    """The households' readings (COPY), the station's temperatures, the meters linked."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE readings, reading_history, meters, weather_observations,"
            " weather_stations, baseline_fits, agg_dirty, agg_group_dirty"
        )
        conn.execute("INSERT INTO weather_stations (station_id, name) VALUES (%s, 'London')",
                     (STATION,))  # fmt: skip
        meters = [p.name.split(".")[0] for p in paths]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO meters (meter_id, station_id, tariff, interval_s, timezone)"
                " VALUES (%s, %s, 'std', 1800, %s)",
                [(m, STATION, TZ) for m in meters],
            )
        for month in range(1, 13):
            for table in ("readings", "weather_observations"):
                conn.execute("SELECT metrify_ensure_partition(%s, %s)",
                             (table, dt.date(2013, month, 1)))  # fmt: skip
        conn.execute("SELECT metrify_ensure_partition('readings', %s)", (dt.date(2014, 1, 1),))
        total = 0
        with conn.cursor() as cur:
            for meter, path in zip(meters, paths, strict=True):
                use = read_household(path).filter(pl.col("ts").dt.year() == 2013)
                with cur.copy(
                    "COPY readings (meter_id, ts, interval_s, import_kwh, source) FROM STDIN"
                ) as copy:
                    for ts, kwh in use.iter_rows():
                        copy.write_row((meter, ts, 1800, kwh, "bench"))
                total += use.height
            year = weather.filter(pl.col("ts").dt.year() == 2013)
            with cur.copy(
                "COPY weather_observations (station_id, ts, temperature_c, source) FROM STDIN"
            ) as copy:
                for ts, t in year.iter_rows():
                    copy.write_row((STATION, ts, t, "bench"))
        conn.execute("TRUNCATE agg_dirty, agg_group_dirty")
        conn.execute("VACUUM ANALYZE readings")
        conn.execute("VACUUM ANALYZE weather_observations")
    return total


def timing(args: argparse.Namespace) -> dict[str, Any]:
    from metrify.batch import baselines as job
    from metrify.batch.context import Interval, JobContext
    from metrify.settings import Settings

    paths = households(args.meters)
    with server_home(args.home, "metrify-bl-") as (_, url):
        t0 = time.perf_counter()
        readings = _seed(url, paths, read_weather())
        log(f"seeded {readings:,} readings in {time.perf_counter() - t0:.0f} s")
        times, outcomes = [], []
        for run in range(args.runs):
            with psycopg.connect(url, autocommit=True) as conn:
                ctx = JobContext(Settings(), conn, None, Interval(dt.date(2013, 12, 31)))
                t0 = time.perf_counter()
                outcome = job.run(ctx)
                times.append(time.perf_counter() - t0)
                stored = conn.execute("SELECT count(*) FROM baseline_fits").fetchone()
            outcomes.append(outcome.details)
            log(f"run {run + 1}: {times[-1]:.1f} s, {outcome.rows} fits ({stored})")
    return {
        "meters": len(paths),
        "readings": readings,
        "job_s": stats(times),
        "runs": times,
        "median_s": statistics.median(times),
        "target_s": 60.0,
        "outcome": outcomes[-1],
    }


# -- report -------------------------------------------------------------------------


def _f(value: Any, pct: bool = True) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value * 100:.1f}" if pct else f"{value}"


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        f"# Weather-normalised baselines, {result['date']}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {result['machine']}. Load during the run: {result.get('load', '')}.",
        "",
    ]
    c = result.get("compare")
    if c:
        lines += [
            f"## Accuracy against eemeter {c['eemeter']} ({c['meters']} London households, 2013)",
            "",
            f"Held out: {c['held_out']}; every model fits on the other weeks, same inputs"
            " (Metrify's daily and hourly frames, Dark Sky temperatures). CV(RMSE) and NMBE"
            " on the held-out points, in %, out of sample (p = 0).",
            "",
            "| comparison | meters | Metrify at least as good | Metrify within 1 % of peer"
            " | median CV(RMSE) Metrify | median CV(RMSE) peer |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, label in (
            ("daily_vs_eemeter", "daily: Metrify (season/day-type split) vs eemeter DailyModel"),
            (
                "daily_vs_eemeter_legacy",
                "daily: Metrify (season/day-type split) vs eemeter DailyModel(legacy)",
            ),
            (
                "daily_unsplit_vs_eemeter",
                "daily: Metrify unsplit (CalTRACK + weekend term, the previous default)"
                " vs eemeter DailyModel",
            ),
            (
                "daily_strict_vs_eemeter",
                "daily: Metrify CalTRACK 2.0 strict (no weekend term) vs eemeter DailyModel",
            ),
            (
                "daily_strict_vs_eemeter_legacy",
                "daily: Metrify CalTRACK 2.0 strict vs eemeter DailyModel(legacy)",
            ),
            ("daily_vs_unsplit", "daily: Metrify split vs Metrify unsplit (all meters)"),
            ("daily_vs_strict", "daily: Metrify split vs Metrify strict (all meters)"),
            (
                "hourly_vs_eemeter",
                "hourly: Metrify TOWT (shrunk monthly corrections) vs eemeter HourlyCaltrackModel",
            ),
            (
                "hourly_plain_vs_eemeter",
                "hourly: Metrify TOWT plain (CalTRACK, the previous default) vs eemeter",
            ),
            ("hourly_vs_plain", "hourly: Metrify shrunk vs Metrify plain (all meters)"),
        ):
            if key not in c:
                continue
            h = c[key]
            lines.append(
                f"| {label} | {h['meters']} | {h['metrify_at_least_as_good']} |"
                f" {h.get('metrify_within_1pct', '-')} |"
                f" {_f(h['median_metrify'])} | {_f(h['median_peer'])} |"
            )
        lines += [
            "",
            f"Daily model forms chosen by Metrify's search (whole-year fit): {c['daily_forms']}.",
            f"Daily splits chosen by the cross-validation: {c.get('daily_splits', '-')}.",
            f"eemeter ran on the first {c['peer_meters']} households only (it takes about a"
            " minute per household and model on this machine); Metrify on all of them."
            f" eemeter failures per model: {c['eemeter_failed']}."
            + (
                " eemeter's predictions were reused from an earlier run on the same inputs"
                " (bench/.eemeter-venv/cache, keyed by the inputs' hash); its seconds are"
                " that run's."
                if c.get("peer_cached")
                else ""
            ),
            "Seconds (Metrify on every meter, eemeter on its share): "
            + json.dumps({k: round(v, 1) for k, v in c["seconds"].items()}),
            "",
            "### Per meter (held-out CV(RMSE) and NMBE, %)",
            "",
            "| meter | daily split | daily CV Metrify | daily CV eemeter | daily CV eemeter legacy"
            " | daily CV Metrify unsplit | daily CV Metrify strict | daily NMBE Metrify"
            " | hourly CV Metrify | hourly CV Metrify plain | hourly CV eemeter"
            " | hourly NMBE Metrify |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in c["per_meter"]:
            lines.append(
                f"| {r['meter']} | {r.get('daily_split', '-')}"
                f" | {_f(r['daily_metrify_test_cvrmse'])}"
                f" | {_f(r['daily_eemeter_test_cvrmse'])}"
                f" | {_f(r['daily_eemeter_legacy_test_cvrmse'])}"
                f" | {_f(r.get('daily_metrify_unsplit_test_cvrmse'))}"
                f" | {_f(r['daily_metrify_strict_test_cvrmse'])}"
                f" | {_f(r['daily_metrify_test_nmbe'])} | {_f(r['hourly_metrify_test_cvrmse'])}"
                f" | {_f(r.get('hourly_metrify_plain_test_cvrmse'))}"
                f" | {_f(r['hourly_eemeter_test_cvrmse'])} | {_f(r['hourly_metrify_test_nmbe'])} |"
            )
        lines.append("")
    t = result.get("timing")
    if t:
        j = t["job_s"]
        lines += [
            f"## The `baselines` batch job ({t['meters']} households, a year,"
            f" {t['readings']:,} readings)",
            "",
            f"Median of {len(t['runs'])}: **{j['median']:.1f} s** (min {j['min']:.1f}, max"
            f" {j['max']:.1f}); target under {t['target_s']:.0f} s. Reads the year from"
            " PostgreSQL, fits daily and hourly models for every meter and stores them.",
            f"Outcome: `{json.dumps(t['outcome'])}`",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["compare", "timing"])
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--peer-meters", type=int, default=30, help="eemeter on the first N meters only"
    )
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the Markdown from the JSON"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        kept = json.loads((RESULTS / "baselines.json").read_text())
        if "compare" in kept:
            table = pl.DataFrame(kept["compare"]["per_meter"])
            for name, cols in PAIRS.items():
                kept["compare"][name] = head_to_head(table, *cols)
        (RESULTS / "baselines.json").write_text(json.dumps(kept, indent=1, default=str) + "\n")
        (RESULTS / f"baselines-{kept['date']}.md").write_text(markdown(kept, kept["command"]))
        return 0
    load = os.getloadavg()
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "load": f"1-min load average {load[0]:.1f} at start",
    }
    if "compare" in args.parts:
        result["compare"] = compare(args)
    if "timing" in args.parts:
        result["timing"] = timing(args)
    load = os.getloadavg()
    result["load"] += f", {load[0]:.1f} at end ({os.cpu_count()} cores)"
    command = (
        "METRIFY_SHARED_DATA=../shared/data PYTHONPATH=src .venv/bin/python bench/baselines.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    if args.no_write:
        print(
            json.dumps({k: v for k, v in result.items() if k != "compare"}, indent=1, default=str)
        )
        if "compare" in result:
            print(
                json.dumps(
                    {k: v for k, v in result["compare"].items() if k != "per_meter"},
                    indent=1,
                    default=str,
                )
            )
        return 0
    result["command"] = command.strip()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "baselines.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RESULTS / f"baselines-{result['date']}.md").write_text(markdown(result, command.strip()))
    log(f"wrote {RESULTS / 'baselines.json'} and baselines-{result['date']}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
