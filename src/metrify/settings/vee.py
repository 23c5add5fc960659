"""Thresholds of the VEE engine.

Defaults follow common MDM practice (interpolate only short gaps, like-day estimates up to
a week, robust spike detection); every value can be changed through the settings
(``METRIFY_VEE__SPIKE_MADS=10``) and a meter's own limits in the reference table beat
these defaults.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VeeConfig(BaseModel):
    """Validation, estimation and editing thresholds."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    enabled: bool = True
    # clock
    future_tolerance_s: int = Field(
        default=300, ge=0, description="how far ahead of now a ts may lie"
    )
    # range
    nominal_voltage_v: float = Field(default=230.0, gt=0)
    voltage_band: float = Field(
        default=0.10, gt=0, lt=1, description="statutory band, +-share of nominal"
    )
    # spike: robust z-score against the meter's own level at that hour of day
    spike_window_days: int = Field(default=28, ge=1)
    spike_mads: float = Field(
        default=8.0, gt=0, description="MADs above the median that make a spike"
    )
    spike_min_kw: float = Field(
        default=1.0, ge=0, description="and at least this much above it (as power)"
    )
    spike_min_samples: int = Field(
        default=5, ge=1, description="history needed before spikes are judged"
    )
    spike_max_intervals: int = Field(
        default=2,
        ge=0,
        description="longest excursion that is a spike (it must stand above this many readings "
        "either side); longer is a level change; 0 drops the neighbour check",
    )
    spike_local_factor: float = Field(
        default=2.0,
        ge=1,
        description="and at least this many times the level of those neighbours (a busy "
        "site's ordinary swings exceed spike_min_kw but do not double its load)",
    )
    spike_peak_factor: float = Field(
        default=2.0,
        ge=0,
        description="and at least this many times the highest reading of the same local hour "
        "in the window (the meter's own recurring peaks, a household's cooking, are not "
        "spikes; a glitch stands far above anything it recorded); 0 drops the check",
    )
    spike_scale_floor_kwh: float = Field(
        default=0.001, gt=0, description="smallest spread assumed (1 Wh, a meter's resolution)"
    )
    # flat lines and zero runs
    flat_line_hours: float = Field(
        default=6.0, gt=0, description="same non-zero value this long = stuck"
    )
    zero_run_hours: float = Field(
        default=48.0, gt=0, description="zero consumption this long = suspect"
    )
    # gaps
    max_gap_rows_days: float = Field(
        default=31.0, gt=0, description="a gap longer than this gets no gap rows (clock jumps)"
    )
    shift_window_hours: float = Field(
        default=48.0, gt=0, description="how far a whole-interval clock jump is traced"
    )
    # registers
    register_tolerance_kwh: float = Field(default=0.01, ge=0)
    register_tolerance_share: float = Field(default=0.02, ge=0)
    # estimation
    interpolate_max_s: int = Field(default=7200, ge=0, description="gaps up to this: linear")
    estimate_max_s: int = Field(
        default=7 * 86400, ge=0, description="gaps beyond this stay unestimated"
    )
    profile_weeks: int = Field(
        default=4, ge=1, description="weeks of like days for profile estimates"
    )
    max_estimated_reference_share: float = Field(default=0.5, ge=0, le=1)
    estimate_window_s: int = Field(
        default=12 * 3600,
        gt=0,
        description="real readings this far either side of a gap set a profile's level",
    )
    estimate_edge_s: int = Field(
        default=3600,
        gt=0,
        description="near a gap's ends a profile leans on the neighbours; e-folding time",
    )
    estimate_scale_min: float = Field(
        default=0.5, gt=0, description="lowest factor a profile is scaled by to meet that level"
    )
    estimate_scale_max: float = Field(
        default=2.0, gt=0, description="highest factor a profile is scaled by to meet that level"
    )
    # history
    context_days: int = Field(
        default=7, ge=0, description="days of stored history loaded per batch"
    )
    lean_context: bool = Field(
        default=True,
        description="judge a meter on its last hours and its same-hour history where "
        "nothing further back can change a verdict (same verdicts, far less work per "
        "stream batch); false always passes the whole context",
    )
