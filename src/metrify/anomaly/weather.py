"""Detectors for weather observations: implausible jumps and stuck sensors.

Weather feeds the temperature adjustment of load baselines and forecasts, so a broken
station quietly spoils both. A temperature that moves faster than the air can (default
8 °C per hour) or sits on the same value for half a day is reported; both are ``low``
severity, they concern data, not the grid.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.anomaly.meters import Detected
from metrify.anomaly.records import Subject, incidents, severity_by
from metrify.contracts.anomalies import PROFILE_SCHEMA, SCALAR_SCHEMA, Kind
from metrify.settings.anomaly import AnomalyConfig


def detect_weather(frame: pl.DataFrame, scalars: pl.DataFrame, cfg: AnomalyConfig) -> Detected:
    """Jumps against the previous observation (also across batches) and stuck runs."""
    obs = frame.filter(pl.col("temperature_c").is_not_null()).select(
        "station_id",
        "ts",
        "temperature_c",
        seed=pl.lit(False),
        since=pl.lit(None, SCALAR_SCHEMA["run_since"]),
    )
    seeds = scalars.filter(pl.col("last_value").is_not_null()).select(
        station_id="subject_id",
        ts="last_ts",
        temperature_c="last_value",
        seed=pl.lit(True),
        since="run_since",
    )
    seeds = seeds.join(obs.select("station_id").unique(), on="station_id", how="semi")
    rows = pl.concat([seeds, obs]).sort("station_id", "ts", "seed", descending=[False, False, True])
    rows = rows.unique(["station_id", "ts"], keep="first", maintain_order=True)
    prev_t = pl.col("temperature_c").shift(1).over("station_id")
    prev_ts = pl.col("ts").shift(1).over("station_id")
    hours = (pl.col("ts") - prev_ts).dt.total_seconds() / 3600.0
    rows = rows.with_columns(
        step=(pl.col("temperature_c") - prev_t).abs(),
        hours=hours,
        same=(pl.col("temperature_c") == prev_t).fill_null(False),
    )
    # A change over several hours may legitimately be larger; the allowance grows with the
    # gap but not beyond 3 h worth (fronts pass; sensors do not teleport).
    allowed = cfg.max_temp_step_c_per_h * pl.max_horizontal(
        pl.lit(1.0), pl.min_horizontal(pl.col("hours"), pl.lit(3.0))
    )
    rows = rows.with_columns(jump=(pl.col("step") > allowed).fill_null(False) & ~pl.col("seed"))
    # stuck: a run of equal values; its start carried over from the stored state.
    run = (~pl.col("same")).cum_sum().over("station_id")
    start = (
        pl.when(pl.col("seed") & pl.col("since").is_not_null())
        .then(pl.col("since"))
        .otherwise(pl.col("ts"))
    )
    rows = rows.with_columns(run=run).with_columns(
        run_start=start.first().over("station_id", "run")
    )
    stuck_for = dt.timedelta(hours=cfg.stuck_hours)
    lasted = (pl.col("ts") - pl.col("run_start")) >= stuck_for
    # the whole run is the incident once it has lasted (as for meters' drops)
    rows = rows.with_columns(
        stuck=pl.col("same").any().over("station_id", "run")
        & lasted.any().over("station_id", "run")
        & ~pl.col("seed")
    )
    real = rows.filter(~pl.col("seed")).with_columns(interval_s=pl.lit(3600, pl.Int32))
    common = Subject("station", "station_id", cfg.merge_gap_s)
    found = [
        incidents(
            real.filter("jump").select(
                "station_id", "ts", "interval_s", "temperature_c", score="step"
            ),
            kind=Kind.WEATHER_JUMP,
            detector="temperature_step",
            severity=severity_by(pl.col("score"), [(0, "low")]),
            evidence={"temperature_c": pl.col("temperature_c"), "step_c": pl.col("score")},
            on=common,
        ),
        incidents(
            real.filter("stuck").select(
                "station_id",
                "ts",
                "interval_s",
                "temperature_c",
                score=(pl.col("ts") - pl.col("run_start")).dt.total_seconds() / 3600.0,
                since="run_start",
            ),
            kind=Kind.STUCK_SENSOR,
            detector="repeated_value",
            severity=severity_by(pl.col("score"), [(0, "low")]),
            evidence={"temperature_c": pl.col("temperature_c"), "stuck_hours": pl.col("score")},
            on=common,
        ),
    ]
    last = (
        real.group_by("station_id")
        .agg(pl.all().sort_by("ts").last())
        .select(
            subject_id="station_id",
            last_ts="ts",
            ewm_obs=pl.lit(None, pl.Float64),
            ewm_exp=pl.lit(None, pl.Float64),
            drop_since=pl.lit(None, SCALAR_SCHEMA["drop_since"]),
            shift_since=pl.lit(None, SCALAR_SCHEMA["shift_since"]),
            last_value="temperature_c",
            run_since="run_start",
            peak_kw=pl.lit(None, pl.Float64),
            peak_days=pl.lit(None, pl.Float64),
            shift_until=pl.lit(None, SCALAR_SCHEMA["shift_until"]),
        )
    )
    flags = (
        frame.select("station_id", "ts")
        .join(
            real.select("station_id", "ts", anomaly=pl.col("jump") | pl.col("stuck")),
            on=["station_id", "ts"],
            how="left",
        )
        .with_columns(pl.col("anomaly").fill_null(False))
    )
    return Detected(
        flags=flags,
        incidents=pl.concat(found),
        profile=pl.DataFrame(schema=PROFILE_SCHEMA),
        scalars=last,
    )
