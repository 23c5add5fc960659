"""Thresholds and alert sinks of the anomaly stage.

Defaults follow what revenue-protection and grid-operations desks use as first cut-offs
(±0.2 Hz frequency excursions, a ±6 % statutory voltage band at medium voltage, feeders
flagged above 90 % of rating, a half-lost load held for a day); every value can be set
through the settings (``METRIFY_ANOMALY__DROP_RATIO=0.4``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AlertConfig(BaseModel):
    """Where new anomalies go. Every sink is optional; the log sink is on by default."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    # the severities of metrify.contracts.anomalies, spelt out: settings stand on nothing
    min_severity: Literal["info", "low", "medium", "high", "critical"] = Field(
        default="medium", description="lowest severity that alerts"
    )
    log: bool = True
    kafka_topic: str | None = Field(
        default=None, description="topic for alerts (uses METRIFY_KAFKA_* to connect)"
    )
    webhook_url: str | None = Field(default=None, description="HTTP POST target")
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_retries: int = Field(default=4, ge=0, description="extra attempts after the first")
    webhook_backoff_s: float = Field(
        default=0.5, ge=0, description="first retry delay; doubles each retry"
    )


class AnomalyConfig(BaseModel):
    """Detector thresholds, state memory and alert sinks."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    enabled: bool = True
    # hour-of-week baseline (meters and grid load)
    memory_weeks: float = Field(
        default=4.0, gt=0, description="how many weeks of samples the baseline remembers"
    )
    min_samples: float = Field(
        default=3.0, gt=0, description="samples of an hour-of-week needed before judging it"
    )
    high_mads: float = Field(
        default=7.0, gt=0, description="robust z above the hour-of-week level that is unusual"
    )
    high_min_kw: float = Field(
        default=1.0, ge=0, description="and at least this much above it (average power)"
    )
    scale_floor_share: float = Field(
        default=0.15, ge=0, description="spread assumed at least this share of the level"
    )
    scale_floor_kw: float = Field(default=0.05, gt=0, description="smallest spread assumed")
    grid_scale_floor_share: float = Field(
        default=0.02,
        ge=0,
        description="the same for grid load (aggregates are smooth: 2 %% of the level)",
    )
    peak_factor: float = Field(
        default=1.5,
        gt=0,
        description="meters: and above this many times the meter's typical daily peak "
        "(a kettle at 7 am is a household's routine, however far above its median)",
    )
    record_half_life_days: float = Field(
        default=56.0,
        gt=0,
        description="meters: a burst no higher than the highest power the meter drew "
        "recently (a record fading with this half-life) is its own routine: low severity",
    )
    record_margin: float = Field(
        default=2.0,
        gt=0,
        description="and a burst must exceed that record by this factor to be more than low "
        "(chosen on the tune half of the London households: 1.5 let a home's occasional "
        "new 5 kW draw alert)",
    )
    burst_min_kw: float = Field(
        default=4.0,
        ge=0,
        description="meters: a burst below this average power over the interval (2 kWh in "
        "half an hour: a kettle, an oven and a hob together) is ordinary for any home, "
        "however quiet it usually is: low severity",
    )
    # temperature adjustment (meters with a weather station)
    heating_base_c: float = Field(
        default=15.5,
        description="heating degrees are counted below this temperature (the UK's usual base)",
    )
    temp_half_life_days: float = Field(
        default=90.0,
        gt=0,
        description="the fit of a meter's use on temperature fades with this half-life",
    )
    temp_min_days: float = Field(
        default=14.0,
        gt=2,
        description="days of residuals a fit needs before the meter can count as weather-sensitive",
    )
    temp_min_t: float = Field(
        default=3.0,
        gt=0,
        description="and the t-statistic its heating slope must reach (a measured dependence, "
        "not noise): below it, the expected level is not adjusted",
    )
    # level shifts and sustained drops
    level_half_life_h: float = Field(default=6.0, gt=0, description="EWMA half-life")
    drop_ratio: float = Field(
        default=0.5, gt=0, lt=1, description="observed/expected below this is a drop"
    )
    drop_exit_ratio: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="a drop, once begun, goes on until observed/expected rises above this "
        "(hysteresis, as for shifts; by default none: on the London households a looser "
        "exit joined separate absences into long cases that alerted)",
    )
    shift_ratio: float = Field(
        default=2.5, gt=1, description="observed/expected above this is an upward shift"
    )
    shift_exit_ratio: float = Field(
        default=1.8,
        gt=1,
        description="a shift, once begun, goes on until observed/expected falls below this "
        "(and the excess below the same share of its threshold): a household tripling its "
        "use swings between x2 and x4 from hour to hour",
    )
    shift_bridge_hours: float = Field(
        default=6.0,
        ge=0,
        description="a shift goes on through a dip this short (its rows join the run): a "
        "home tripling its use dips under the exit ratio for a few quiet afternoon hours",
    )
    shift_excess: float = Field(
        default=1.25,
        gt=0,
        description="or observed above expected by this many times the meter's mean level "
        "(new load adds a steady draw of its own; at the home's peak the ratio stays low)",
    )
    level_min_hours: float = Field(
        default=24.0, gt=0, description="how long the ratio must hold to count (not a blip)"
    )
    drop_medium_hours: float = Field(
        default=96.0,
        gt=0,
        description="a drop with the base load gone is a bypass suspect (medium) once it "
        "has held this long: a few days away from home (a long weekend) is no case for a "
        "field visit",
    )
    drop_high_hours: float = Field(
        default=168.0, gt=0, description="and urgent (high) once it has held this long"
    )
    drop_routine_tolerance_hours: float = Field(
        default=12.0,
        ge=0,
        description="a drop beginning one or two weeks after the meter's last drop, within "
        "this many hours of the same hour of the week (when the EWMA crosses varies "
        "by hours), is its routine (away every weekend): not raised again unless it "
        "lasts drop_medium_hours",
    )
    tamper_window_hours: float = Field(
        default=72.0,
        ge=0,
        description="a tamper, cover-open, magnetic-field or reverse-running event this "
        "long before a sustained drop (or during it) makes the drop urgent (high) at once",
    )
    shift_medium_hours: float = Field(
        default=72.0, gt=0, description="new load is worth a look (medium) after this long"
    )
    adapt_after_days: float = Field(
        default=14.0,
        gt=0,
        description="a drop or shift that lasts this long becomes the new normal: the "
        "baseline learns again (the incident stays on record until someone closes it)",
    )
    vacancy_base_share: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="a drop whose base-load hours kept this share of their level is a "
        "vacancy (the fridge and standby still run: nobody home), not a bypass",
    )
    drop_rhythm_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="a drop is a bypass suspect only while the observed use still follows the "
        "home's daily rhythm: its correlation with the expected level at least this share of "
        "the correlation a normal day of this meter has; a drop that lost it (flat: nobody "
        "home) is a vacancy",
    )
    bypass_max_share: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="a drop whose base load fell, to at most this share of the expected "
        "use over the whole run, is a bypass suspect even when its rhythm drifted from the "
        "profile, provided the meter still records a living home (the two settings below)",
    )
    bypass_min_base_share: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="and its base-load hours kept at least this share (a home with "
        "everything off records next to nothing: a vacancy)",
    )
    bypass_min_activity: float = Field(
        default=0.3,
        ge=0,
        description="and the recorded use varies at least this share as much as the "
        "expected (coefficients of variation; a flat standby draw is an empty home)",
    )
    bypass_base_ratio: float = Field(
        default=3.0,
        gt=0,
        description="and the base load's share at most this many times the run's share: a "
        "meter recording a fraction of everything scales its base load with the rest; an "
        "empty home keeps its standby while the peaks go (on the tune half of the London "
        "households 1.5 gave the best F1, 0.691 against 0.674, but cut a held-out 15 %% "
        "bypass in a home that was also away into medium pieces)",
    )
    drop_rhythm_min_rows: int = Field(
        default=48,
        ge=2,
        description="rows a drop run needs (summed over its batches) before its rhythm is "
        "judged; until then the base load alone tells a bypass from a vacancy",
    )
    level_min_expected_kw: float = Field(
        default=0.1, ge=0, description="meters quieter than this are not judged for drops"
    )
    # export
    export_min_kwh: float = Field(
        default=0.01, ge=0, description="export above this on a meter without PV is unexpected"
    )
    # grid
    nominal_hz: float = Field(default=50.0, gt=0, description="nominal grid frequency")
    nominal_hz_by_node: dict[str, float] = Field(
        default_factory=dict, description="per node id or id prefix (e.g. {'QLD': 50.0})"
    )
    frequency_band_hz: float = Field(default=0.2, gt=0)
    voltage_band: float = Field(
        default=0.06, gt=0, lt=1, description="statutory band as a share of nominal_kv"
    )
    overload_share: float = Field(
        default=0.9, gt=0, description="load above this share of capacity_mw is flagged"
    )
    max_loss_share: float = Field(
        default=0.08, gt=0, lt=1, description="feeder load unexplained by its meters"
    )
    # weather
    max_temp_step_c_per_h: float = Field(default=8.0, gt=0)
    stuck_hours: float = Field(default=12.0, gt=0, description="same temperature this long")
    # incidents
    merge_gap_s: int = Field(
        default=3600, ge=0, description="flags this close continue the same incident"
    )
    alerts: AlertConfig = Field(default_factory=AlertConfig)
