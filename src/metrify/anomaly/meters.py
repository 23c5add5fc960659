"""Detectors for meter readings: unusual consumption, sustained drops, level shifts, export.

Revenue protection looks for meters recording far less than they used to (bypass,
tampering; also vacancy, which billing wants to know about) and for export where no
generation is registered (unregistered PV is a safety issue for line crews as well as a
tariff one). Network planning wants sudden new load. Single far-off intervals are kept
too: a reading 20 MADs above the meter's usual level at that hour is worth a look even
when it is plausible enough to pass validation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import polars as pl

from metrify.anomaly.baseline import judge
from metrify.anomaly.frames import where
from metrify.anomaly.records import Subject, empty_incidents, incidents
from metrify.contracts.anomalies import Kind
from metrify.contracts.commodities import commodities_with, commodity_of
from metrify.contracts.records import Quality, Status
from metrify.settings.anomaly import AnomalyConfig


@dataclass
class Detected:
    """Flags per row (key columns + ``anomaly``), incidents, and the subjects' new state
    (``profile``: only the slots the batch set; ``scalars``: whole rows)."""

    flags: pl.DataFrame
    incidents: pl.DataFrame
    profile: pl.DataFrame
    scalars: pl.DataFrame


def detect_readings(
    frame: pl.DataFrame,
    has_pv: pl.DataFrame,
    profile: pl.DataFrame,
    scalars: pl.DataFrame,
    cfg: AnomalyConfig,
    weather: pl.DataFrame | None = None,
) -> Detected:
    """Run every reading detector on one batch.

    ``has_pv`` is the meters' reference data: ``meter_id``, ``has_pv`` and optionally
    ``timezone`` (the hour-of-week baseline follows each meter's local clock) and
    ``station_id`` (its weather station). ``weather``: hourly temperatures of those
    stations (``station_id, ts, temperature_c``) from ``memory_weeks`` before the batch
    to its end; with them the expected level of weather-sensitive meters follows the
    temperature. Without (or for a meter without a station) nothing is adjusted.
    """
    usable = (
        pl.col("import_kwh").is_not_null()
        & ((pl.col("quality") & int(Quality.MISSING)) == 0)
        & (pl.col("status") != Status.REJECTED.value)
    )
    base = frame.select(
        subject_id="meter_id",
        ts="ts",
        interval_s="interval_s",
        value=pl.col("import_kwh") * 3600.0 / pl.col("interval_s"),
        usable=usable,
    )
    if "timezone" in has_pv.columns and has_pv["timezone"].drop_nulls().len():
        zones = has_pv.select(subject_id="meter_id", tz="timezone").unique("subject_id")
        base = base.join(zones, on="subject_id", how="left", maintain_order="left")
    if (
        weather is not None
        and weather.height
        and "station_id" in has_pv.columns
        and has_pv["station_id"].drop_nulls().len()
    ):
        stations = has_pv.select(subject_id="meter_id", station_id="station_id").unique(
            "subject_id"
        )
        base = base.join(stations, on="subject_id", how="left", maintain_order="left")
    else:
        weather = None
    j = judge(
        base,
        profile,
        scalars,
        cfg,
        floor=cfg.scale_floor_kw,
        min_excess=cfg.high_min_kw,
        levels=True,
        peak_factor=cfg.peak_factor,
        weather=weather,
        classify=True,
    )
    rows = _seasonal_meters_judged_on_bursts(j.rows, has_pv)
    # A bypass suspect: the base load fell with the rest, and the home's rhythm went on
    # (at a fraction). A drop that lost the rhythm is an empty home, whatever its base
    # load did (a fortnight away with the fridge off). Too few rows to tell: base alone.
    rhythm_kept = (pl.col("drop_rows").fill_null(0) < cfg.drop_rhythm_min_rows) | (
        pl.col("drop_corr").fill_null(0.0)
        >= cfg.drop_rhythm_share * pl.col("usual_corr").fill_null(1.0)
    )
    # A deep drop that still records a living home's ups and downs is a bypass too, even
    # when its timing drifted from the profile (a summer routine, shifts): the meter
    # records a small share of everything, base load included, and what it records is
    # not flat. An empty home records its fridge (base kept: above), nothing at all
    # (base near zero) or a flat standby draw (no activity).
    deep = (
        (pl.col("drop_share") <= cfg.bypass_max_share)
        & (pl.col("drop_base") >= cfg.bypass_min_base_share)
        & (pl.col("drop_activity") >= cfg.bypass_min_activity)
        & (pl.col("drop_base") <= cfg.bypass_base_ratio * pl.col("drop_share"))
    ).fill_null(False)
    base_fell = (pl.col("drop_base").fill_null(0.0) < cfg.vacancy_base_share) & (rhythm_kept | deep)
    common = Subject("meter", "subject_id", cfg.merge_gap_s)
    # During a level shift the home's bursts are the shift's (its use tripled, so do its
    # peaks): one case, not a shift and a burst note every evening. A glitch-sized burst
    # (>= 6x the typical daily peak, what makes a burst high) is still its own.
    burst = pl.col("high") & (
        ~pl.col("shift") | (pl.col("value") >= 6 * pl.col("peak_ref")).fill_null(True)
    )
    found = [
        incidents(
            _flagged(
                rows,
                burst,
                score="z",
                peak_ref=pl.col("peak_ref").fill_null(pl.col("value")),
                record_ref="record_ref",
            ),
            kind=Kind.UNUSUAL_CONSUMPTION,
            detector="hour_of_week_robust_z",
            severity=_burst_severity(cfg),
            evidence={
                "expected_kw": pl.col("expected").round(3),
                "observed_kw": pl.col("value").round(3),
                "typical_daily_peak_kw": pl.col("peak_ref").round(3),
                "recent_record_kw": pl.col("record_ref").round(3),
                "robust_z": pl.col("score"),
            },
            on=common,
        ),
        *[
            incidents(
                _flagged(
                    rows,
                    pl.col("drop") & which,
                    "base_ratio",
                    "drop_corr",
                    "usual_corr",
                    "drop_activity",
                    "drop_share",
                    score=1.0 - pl.col("ratio"),
                    since="drop_start",
                ),
                kind=kind,
                detector="ewma_ratio",
                severity=severity,
                evidence={
                    "expected_kw": pl.col("expected").round(3),
                    "observed_kw": pl.col("value").round(3),
                    "observed_share": (pl.col("value") / pl.col("expected")).round(3),
                    "base_load_share": pl.col("base_ratio").round(3),
                    "rhythm_corr": pl.col("drop_corr").round(3),
                    "usual_rhythm_corr": pl.col("usual_corr").round(3),
                    "activity": pl.col("drop_activity").round(3),
                    "run_share": pl.col("drop_share").round(3),
                },
                on=common,
            )
            for kind, which, severity in (
                # the base load fell with the rest: a bypass or tampering suspect; a
                # visit is worth it after a day, urgent once it has held for three.
                (
                    Kind.SUSTAINED_DROP,
                    base_fell,
                    _lasted(
                        cfg.drop_medium_hours,
                        "medium",
                        "low",
                        longer=(cfg.drop_high_hours, "high"),
                    ),
                ),
                # use fell to the base load, which stayed: an empty home, for billing
                (Kind.VACANCY, ~base_fell, pl.lit("low")),
            )
        ],
        incidents(
            _flagged(rows, pl.col("shift"), score="ratio", since="shift_start"),
            kind=Kind.LEVEL_SHIFT,
            detector="ewma_ratio",
            severity=_lasted(cfg.shift_medium_hours, "medium", "low"),
            evidence={
                "expected_kw": pl.col("expected").round(3),
                "observed_kw": pl.col("value").round(3),
                "ratio": pl.col("score").round(3),
            },
            on=common,
        ),
    ]
    export = _export(frame, has_pv, cfg)
    found.append(
        incidents(
            export,
            kind=Kind.UNEXPECTED_EXPORT,
            detector="export_without_pv",
            # export held for an hour or more is generation, not a glitch.
            severity=pl.when((pl.col("ts_end") - pl.col("ts_start")) >= pl.duration(hours=1))
            .then(pl.lit("high"))
            .otherwise(pl.lit("medium")),
            evidence={
                "registered_pv": pl.lit(False),
                "export_kwh_mean": pl.col("export_kwh").round(4),
                "active_power_kw_mean": pl.col("active_power_kw").round(3),
            },
            on=common,
        )
        if export.height
        else empty_incidents()
    )
    flags = rows.select(
        "subject_id", "ts", anomaly=pl.col("high") | pl.col("drop") | pl.col("shift")
    )
    if export.height:
        flags = flags.join(
            export.select("subject_id", "ts", e=pl.lit(True)), on=["subject_id", "ts"], how="left"
        ).select("subject_id", "ts", anomaly=pl.col("anomaly") | pl.col("e").fill_null(False))
    return Detected(
        flags=flags.rename({"subject_id": "meter_id"}),
        incidents=pl.concat(found),
        profile=j.profile,
        scalars=j.scalars,
    )


def _flagged(
    rows: pl.DataFrame, keep: pl.Expr, *extra: str, **named: pl.Expr | str
) -> pl.DataFrame:
    """The judged rows where ``keep`` holds, with what an incident is built from: the
    subject, the interval, the expected and observed level, and ``extra`` and ``named``
    columns. (Picked before the filter: the judged rows are wide.)"""
    base = ("subject_id", "ts", "interval_s", "expected", "value")
    return where(rows.select(*base, *extra, **named, _keep=keep), "_keep")


def _seasonal_meters_judged_on_bursts(rows: pl.DataFrame, meters: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with the drop and level-shift findings of meters whose commodity does
    not take them cleared (gas, heat, water: see :mod:`metrify.contracts.commodities`).

    A heating meter's use falls tenfold in spring and climbs when heating starts: to a
    detector that compares a meter with its own recent weeks, that is a vacancy all
    summer and a level shift every autumn. Unusual single intervals are still judged.
    The detectors' state is learnt the same way for every meter, so a meter whose
    commodity is corrected later is judged on a baseline that followed it all along.
    """
    if "commodity" not in meters.columns:
        return rows
    seasonal = meters.filter(
        ~commodity_of(meters).is_in(commodities_with("level_detectors"))
    ).get_column("meter_id")
    if not seasonal.len():
        return rows
    level = ~pl.col("subject_id").is_in(seasonal.implode())
    return rows.with_columns(drop=pl.col("drop") & level, shift=pl.col("shift") & level)


def _burst_severity(cfg: AnomalyConfig) -> pl.Expr:
    """How worrying a burst is, judged against what this meter has drawn before.

    At or below ``record_margin`` x its recent record, or below ``burst_min_kw``, it is the
    home's own routine (a kettle, an electric shower it always had): low. Beyond it, it
    is new load nobody has seen here: medium, and high at six times its typical daily
    peak. A meter without a record yet is judged on its typical peak alone (>= 3x medium).
    """
    value, record = pl.col("value"), pl.col("record_ref")
    times_peak = value / pl.col("peak_ref")
    ordinary = (value < cfg.burst_min_kw) | (value <= cfg.record_margin * record).fill_null(False)
    return (
        pl.when(ordinary | (record.is_null() & (times_peak < 3)))
        .then(pl.lit("low"))
        .when(times_peak >= 6)
        .then(pl.lit("high"))
        .otherwise(pl.lit("medium"))
    )


def _lasted(
    hours: float, long: str, short: str, *, longer: tuple[float, str] | None = None
) -> pl.Expr:
    """Severity by how long the incident has lasted so far (``longer``: a further step)."""
    lasted = pl.col("ts_end") - pl.col("ts_start")
    expr = pl.when(lasted >= pl.duration(hours=hours)).then(pl.lit(long)).otherwise(pl.lit(short))
    if longer is not None:
        expr = (
            pl.when(lasted >= pl.duration(hours=longer[0])).then(pl.lit(longer[1])).otherwise(expr)
        )
    return expr


def _export(frame: pl.DataFrame, has_pv: pl.DataFrame, cfg: AnomalyConfig) -> pl.DataFrame:
    """Rows exporting (or flowing backwards) on meters with no registered generation."""
    exporting = (pl.col("export_kwh").fill_null(0.0) > cfg.export_min_kwh) | (
        pl.col("active_power_kw").fill_null(0.0)
        < -cfg.export_min_kwh * 3600.0 / pl.col("interval_s")
    )
    rows = frame.filter(exporting & (pl.col("status") != Status.REJECTED.value))
    if not rows.height:
        return pl.DataFrame()
    # a meter absent from ``has_pv`` is unknown to the reference data: no judgement;
    # export is an electricity notion (a heat network's return flow is not generation)
    ref = has_pv.select("meter_id", "has_pv", _c=commodity_of(has_pv))
    rows = rows.join(ref, on="meter_id", how="inner").filter(
        ~pl.col("has_pv") & pl.col("_c").is_in(commodities_with("export_detector"))
    )
    return rows.select(
        subject_id="meter_id",
        ts="ts",
        interval_s="interval_s",
        score=pl.col("export_kwh").fill_null(0.0),
        export_kwh=pl.col("export_kwh").fill_null(0.0),
        active_power_kw=pl.col("active_power_kw"),
    )


#: the events that say someone opened or fooled the meter
TAMPER_EVENTS: Final = ("tamper", "cover_open", "magnetic_field", "reverse_running")


def tamper_raised(
    incidents: pl.DataFrame, tampers: pl.DataFrame, window: dt.timedelta
) -> pl.DataFrame:
    """``incidents`` with each sustained drop that has a tamper event of its meter
    (``tampers``: ``meter_id, ts, event``) from ``window`` before its start to its end
    made ``high`` at once, the event named in its evidence.

    A drop alone waits days before it is urgent (a long weekend away looks the same);
    a drop beside a cover opened or a magnet held to the meter is the classic theft
    case, and a field visit should not wait for the drop to prove itself.
    """
    drops = pl.col("kind") == Kind.SUSTAINED_DROP.value
    if not tampers.height or not incidents.select(drops.any()).item():
        return incidents
    numbered = incidents.with_row_index("_i")
    hits = (
        numbered.filter(drops)
        .select("_i", "subject_id", "ts_start", "ts_end")
        .join(tampers.rename({"meter_id": "subject_id"}), on="subject_id")
        .filter((pl.col("ts") >= pl.col("ts_start") - window) & (pl.col("ts") < pl.col("ts_end")))
        .sort("ts")
        .group_by("_i")
        .agg(_event=pl.col("event").last(), _at=pl.col("ts").last())
    )
    if not hits.height:
        return incidents
    note = pl.format(
        '"tamper_event":"{}","tamper_event_at":"{}"',
        pl.col("_event"),
        pl.col("_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    evidence = pl.col("evidence").fill_null("{}").str.strip_chars_end("}")
    return (
        numbered.join(hits, on="_i", how="left")
        .with_columns(
            severity=pl.when(pl.col("_event").is_not_null())
            .then(pl.lit("high"))
            .otherwise("severity"),
            evidence=pl.when(pl.col("_event").is_null())
            .then("evidence")
            .when(evidence == "{")
            .then(pl.format("{{{}}}", note))
            .otherwise(pl.format("{},{}}}", evidence, note)),
        )
        .select(incidents.columns)
    )
