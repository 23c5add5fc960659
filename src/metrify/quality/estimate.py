"""Estimation: fill the gap rows validation created, the way a utility's MDM system does.

California and Ontario VEE practice, which billing and settlement rely on:

* a short gap (up to ``interpolate_max_s``, 2 h) is bridged by **linear interpolation**
  between the real readings on either side: over a few intervals consumption changes
  little, and nothing else is as predictable;
* a longer gap (up to ``estimate_max_s``, 7 days) gets a **like-day profile**: for each
  missing interval, the meter's own consumption at the same time of day on like days
  (same weekday over the previous ``profile_weeks`` weeks, blended with days of the same
  kind and with last week's days), because a household or a shop repeats its days far
  better than a straight line can follow them. The profile is then brought towards the
  level of the real readings around the gap (their ratio, clamped, weaker the longer the
  gap), since the weeks it comes from may have been colder, warmer or emptier, and near
  the gap's ends it eases into the neighbouring readings;
* when cumulative registers exist on both sides, the energy that really flowed during
  the gap is known (register delta less the closing interval), and estimates of either
  kind are scaled to it: then only the shape is estimated, never the total;
* a gap that is too long, open-ended (no real reading after it yet), has no reference,
  or whose references are mostly estimates themselves, stays a gap: an estimate built on
  estimates compounds errors, and an open gap will be estimated once the meter reports.

Estimates are marked, never hidden: ``quality`` keeps ``MISSING`` and adds ``ESTIMATED``,
``status`` becomes ``estimated``, and ``source`` names the method
(``vee:estimate:linear`` or ``vee:estimate:profile``), so a real reading that arrives
later replaces the estimate and history keeps it.

Everything is vectorised with Polars over the batch: one sort, a handful of group-bys and
one join for the profile references; there is no Python loop per gap or per reading.
"""

from __future__ import annotations

import math
from typing import Final

import polars as pl

from metrify.contracts.records import Quality, Status
from metrify.settings.vee import VeeConfig

SOURCE_LINEAR: Final = "vee:estimate:linear"
SOURCE_PROFILE: Final = "vee:estimate:profile"

_MISSING: Final = int(Quality.MISSING)
_ESTIMATED: Final = int(Quality.ESTIMATED)
#: readings that must not shape an estimate: their value is known to be wrong.
_UNTRUSTED: Final = int(Quality.SPIKE | Quality.OUT_OF_RANGE)
#: a register that may have jumped: its delta says nothing about the energy in a gap.
_REGISTER_BAD: Final = int(Quality.REGISTER_MISMATCH | Quality.REGISTER_ROLLOVER)
_DAY_S: Final = 86_400
_WEEK_DAYS: Final = 7

_LINEAR: Final = "linear"
_PROFILE: Final = "profile"


def _bit(bit: int) -> pl.Expr:
    return (pl.col("quality").fill_null(0) & bit) != 0


def _gap_target(ctx: pl.Expr) -> pl.Expr:
    """Rows this call may fill: new (non-context) gap rows that still have no value."""
    return (
        pl.col("import_kwh").is_null()
        & _bit(_MISSING)
        & ~ctx
        & (pl.col("status").fill_null("") != Status.REJECTED.value)
    )


def estimate(
    frame: pl.DataFrame, cfg: VeeConfig, weather: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Fill the estimable gap rows of ``frame``; return all rows in their input order.

    ``frame`` holds reading-contract columns plus ``quality``, ``status``, ``source`` and
    ``_ctx`` (True for stored history given as reference; such rows are never changed,
    and a missing ``_ctx`` column means no history). A gap row is a row with a null
    ``import_kwh`` and the ``MISSING`` bit; consecutive gap rows of a meter form one gap.
    Filled rows get ``import_kwh``, ``quality | ESTIMATED``, status ``estimated``, the
    method in ``source`` and, where the surrounding readings carry registers, a
    consistent ``register_kwh``. Every other row and column comes back untouched.

    ``weather`` is accepted for temperature-adjusted estimates of weather-sensitive
    meters but not used yet; until then a cold or warm spell reaches an estimate only
    through the profile's scaling to the readings around the gap.
    """
    del weather  # reserved, see the docstring
    if frame.height == 0:
        return frame
    ctx = pl.col("_ctx").fill_null(False) if "_ctx" in frame.columns else pl.lit(False)
    # The cheap exit: one pass over three columns when the batch has no gap to fill.
    if not frame.select(_gap_target(ctx).any()).item():
        return frame
    fills = _fills(frame, ctx, cfg)
    if fills.height == 0:
        return frame
    return _apply(frame, fills)


# --- the rows and the gaps ------------------------------------------------------------------


def _work(frame: pl.DataFrame, ctx: pl.Expr) -> pl.DataFrame:
    """The columns estimation needs, for the meters that have a gap, sorted by meter, ts.

    ``rate`` is energy per second, so that readings of different interval lengths can
    be compared and interpolated; ``pos`` is the row's place in this sorted frame.
    """
    cols = frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"),
        "meter_id",
        "ts",
        "interval_s",
        "import_kwh",
        "register_kwh",
        pl.col("quality").fill_null(0).alias("quality"),
        _gap_target(ctx).alias("target"),
    )
    status = frame.get_column("status").fill_null("")
    cols = cols.with_columns(rejected=status == Status.REJECTED.value)
    meters = cols.filter("target").get_column("meter_id").unique()
    work = cols.filter(pl.col("meter_id").is_in(meters.implode())).sort("meter_id", "ts")
    bad = pl.col("rejected") | _bit(_UNTRUSTED)
    has_value = pl.col("import_kwh").is_not_null()
    work = work.with_columns(
        pos=pl.int_range(pl.len(), dtype=pl.Int64),
        miss=_bit(_MISSING),
        trusted=has_value & ~_bit(_MISSING) & ~_bit(_ESTIMATED) & ~bad,
        est_ref=has_value & _bit(_ESTIMATED) & ~bad,
        rate=pl.col("import_kwh") / pl.col("interval_s"),
    )
    # ``seg`` numbers runs of missing / present rows; ``prev_t`` / ``next_t`` point at
    # the nearest trustworthy row before / after (possibly of another meter: checked later).
    new_run = (pl.col("miss") != pl.col("miss").shift(1)) | (
        pl.col("meter_id") != pl.col("meter_id").shift(1)
    )
    trusted_pos = pl.when("trusted").then("pos")
    return work.with_columns(
        seg=new_run.fill_null(True).cum_sum(),
        prev_t=trusted_pos.forward_fill(),
        next_t=trusted_pos.backward_fill(),
    )


def _gaps(work: pl.DataFrame, cfg: VeeConfig) -> pl.DataFrame:
    """One row per gap with something to fill: its extent, anchors and chosen method.

    The anchors are the nearest trustworthy readings before and after (rejected, spiky,
    out-of-range and estimated readings are skipped), and the gap's length for the
    rules is the time between them that no trustworthy reading covers.
    """
    missing = work.filter("miss")
    iv_end = pl.col("ts") + pl.duration(seconds=pl.col("interval_s"))
    gaps = (
        # in the rows' order: the gaps' order numbers their points downstream, and the
        # estimates' means add in that order (a group order left to the threads made two
        # loads of the same file differ in an estimate's last bit)
        missing.group_by("seg", maintain_order=True)
        .agg(
            pl.col("meter_id").first(),
            first_pos=pl.col("pos").min(),
            last_pos=pl.col("pos").max(),
            start=pl.col("ts").min(),
            end=iv_end.max(),
            covered_s=pl.col("interval_s").sum(),
            has_target=pl.col("target").any(),
            all_null=pl.col("import_kwh").is_null().all(),
            prev_t=pl.col("prev_t").first(),
            next_t=pl.col("next_t").first(),
        )
        .filter("has_target")
    )
    side = work.select("meter_id", "ts", "interval_s", "import_kwh", "register_kwh", "quality")
    for name, idx_col in (("0", "prev_t"), ("1", "next_t")):
        idx = gaps.get_column(idx_col)
        got = side[idx.fill_null(0).cast(pl.UInt32)]
        found = idx.is_not_null() & (got.get_column("meter_id") == gaps.get_column("meter_id"))
        got = got.select(
            pl.when(found).then(pl.col(c)).alias(f"{c}{name}") for c in got.columns[1:]
        )
        gaps = pl.concat([gaps, got], how="horizontal")
    tol = cfg.register_tolerance_kwh
    span_s = (pl.col("ts1") - pl.col("ts0")).dt.total_seconds() - pl.col("interval_s0")
    anchored = pl.col("ts0").is_not_null() & pl.col("ts1").is_not_null()
    bounded = (
        (pl.col("prev_t") == pl.col("first_pos") - 1)
        & (pl.col("next_t") == pl.col("last_pos") + 1)
        & (pl.col("ts0") + pl.duration(seconds=pl.col("interval_s0")) == pl.col("start"))
        & (pl.col("end") == pl.col("ts1"))
        & ((pl.col("end") - pl.col("start")).dt.total_seconds() == pl.col("covered_s"))
        & pl.col("all_null")
    )
    clean0 = (pl.col("quality0") & _REGISTER_BAD) == 0
    clean1 = (pl.col("quality1") & _REGISTER_BAD) == 0
    has0 = pl.col("register_kwh0").is_not_null() & clean0
    has1 = pl.col("register_kwh1").is_not_null() & pl.col("import_kwh1").is_not_null() & clean1
    # Energy that flowed in the gap: the register at the end of the closing reading, less
    # that reading's own energy, less the register at the end of the opening reading.
    reg_energy = pl.col("register_kwh1") - pl.col("import_kwh1") - pl.col("register_kwh0")
    return (
        gaps.with_columns(span_s=span_s)
        .with_columns(
            method=pl.when(anchored & (pl.col("span_s") <= cfg.interpolate_max_s))
            .then(pl.lit(_LINEAR))
            .when(anchored & (pl.col("span_s") <= cfg.estimate_max_s))
            .then(pl.lit(_PROFILE)),
            reg_energy=pl.when(bounded & has0 & has1 & (reg_energy >= -tol)).then(
                reg_energy.clip(lower_bound=0.0)
            ),
            # Registers of the filled rows: continued from whichever side has one.
            reg_from=pl.when(bounded & has0 & has1 & (reg_energy < -tol))
            .then(pl.lit(None, dtype=pl.String))
            .when(bounded & has0)
            .then(pl.lit("before"))
            .when(bounded & has1)
            .then(pl.lit("after")),
        )
        .filter(pl.col("method").is_not_null())
    )


# --- the two methods ------------------------------------------------------------------------


def _line_rate() -> pl.Expr:
    """Rate (kWh/s) on the straight line between the anchors, at each row's ``ts``."""
    frac = (pl.col("ts") - pl.col("ts0")).dt.total_seconds() / (
        (pl.col("ts1") - pl.col("ts0")).dt.total_seconds()
    )
    r0 = pl.col("import_kwh0") / pl.col("interval_s0")
    r1 = pl.col("import_kwh1") / pl.col("interval_s1")
    return r0 + (r1 - r0) * frac


def _linear(rows: pl.DataFrame) -> pl.DataFrame:
    """Linear interpolation: the line's rate times each row's interval."""
    return rows.with_columns(raw=(_line_rate() * pl.col("interval_s")).clip(lower_bound=0.0))


def _window_rows(work: pl.DataFrame, gaps: pl.DataFrame, window_s: int) -> pl.DataFrame:
    """Trustworthy readings within ``window_s`` before and after each gap.

    Picked by position in the sorted frame (no join): the ``k`` rows either side, kept
    when they belong to the same meter, lie within the window and are trustworthy.
    """
    min_iv = max(int(work.get_column("interval_s").min() or 1), 1)  # type: ignore[arg-type]
    k = max(1, math.ceil(window_s / min_iv))
    offsets = pl.int_ranges(-k, 0).list.concat(pl.int_ranges(1, k + 1))
    near = (
        gaps.select(
            "seg",
            "meter_id",
            "start",
            "end",
            "first_pos",
            "last_pos",
            pos=offsets,
        )
        .explode("pos")
        .with_columns(
            pos=pl.when(pl.col("pos") < 0)
            .then(pl.col("first_pos") + pl.col("pos"))
            .otherwise(pl.col("last_pos") + pl.col("pos"))
        )
        .filter((pl.col("pos") >= 0) & (pl.col("pos") < work.height))
    )
    got = work.select("meter_id", "ts", "interval_s", "rate", "trusted")[
        near.get_column("pos").cast(pl.UInt32)
    ]
    near = pl.concat([near, got.rename({"meter_id": "m"})], how="horizontal")
    window = pl.duration(seconds=window_s)
    return near.filter(
        (pl.col("m") == pl.col("meter_id"))
        & pl.col("trusted")
        & (
            ((pl.col("ts") < pl.col("start")) & (pl.col("ts") >= pl.col("start") - window))
            | ((pl.col("ts") >= pl.col("end")) & (pl.col("ts") < pl.col("end") + window))
        )
    ).select("seg", "meter_id", "ts", "interval_s", actual=pl.col("rate"))


def _profile_rates(points: pl.DataFrame, work: pl.DataFrame, weeks: int) -> pl.DataFrame:
    """Like-day profile rate for each point (``pid``, ``meter_id``, ``ts``).

    Three like-day means of the meter's trustworthy rates at the same time of day, then
    their mean (of those that exist): the same weekday over the previous ``weeks`` weeks
    (the classic like day), days of the same kind (weekday or weekend) over those weeks
    (the usual fallback, and many more samples, so less noise), and every day of the
    last week (the most recent habits: heating on, a lodger moved in). On the London
    households this blend beats each of its parts, at every gap length measured.

    Also counts, per point, how many of these references were real and how many
    estimated, for the gap's reference-share rule.
    """
    lags = pl.int_ranges(1, _WEEK_DAYS * weeks + 1)
    probe = (
        points.select("pid", "meter_id", "ts", weekend=pl.col("ts").dt.weekday() >= 6, lag=lags)
        .explode("lag")
        .with_columns(ref_ts=pl.col("ts") - pl.duration(days=pl.col("lag")))
    )
    refs = work.filter(pl.col("trusted") | pl.col("est_ref")).select(
        "meter_id", ref_ts=pl.col("ts"), ref_rate=pl.col("rate"), real=pl.col("trusted")
    )
    found = (
        # the probe's order, so each mean adds its references in one order on every run
        probe.join(refs, on=["meter_id", "ref_ts"], how="inner", maintain_order="left")
        .with_columns(
            same_weekday=pl.col("lag") % _WEEK_DAYS == 0,
            same_kind=(pl.col("ref_ts").dt.weekday() >= 6) == pl.col("weekend"),
            last_week=pl.col("lag") <= _WEEK_DAYS,
        )
        .filter(pl.col("same_kind") | pl.col("last_week"))
    )
    real_rate = pl.when("real").then("ref_rate")
    return (
        found.group_by("pid", maintain_order=True)
        .agg(
            weekday=real_rate.filter("same_weekday").mean(),
            day_kind=real_rate.filter("same_kind").mean(),
            last_week=real_rate.filter("last_week").mean(),
            n_real=pl.col("real").sum(),
            n_est=(~pl.col("real")).sum(),
        )
        .select(
            "pid", "n_real", "n_est", profile=pl.mean_horizontal("weekday", "day_kind", "last_week")
        )
    )


def _profile(
    rows: pl.DataFrame, work: pl.DataFrame, gaps: pl.DataFrame, cfg: VeeConfig
) -> pl.DataFrame:
    """Like-day profile estimates for the rows of profile gaps, brought to their level.

    The level is the ratio of real to profile energy in the windows either side of the
    gap, clamped, and it counts for less the longer the gap (raised to the power
    ``window / (window + gap)``): the readings around a 4-hour gap say much about it,
    about a 3-day gap little, and a full-strength ratio from a few noisy hours made
    long gaps worse on real households. Near its ends the estimate leans on the
    neighbouring readings (weight ``exp(-distance / estimate_edge_s)`` on the straight
    line between them), because consumption carries on for a while.

    Gaps whose references are missing for any row, or estimated beyond
    ``max_estimated_reference_share``, are dropped here and stay gaps.
    """
    window = _window_rows(work, gaps, cfg.estimate_window_s)
    points = pl.concat(
        [
            rows.select("seg", "meter_id", "ts", "interval_s", actual=pl.lit(None, pl.Float64)),
            window,
        ]
    ).with_columns(pid=pl.int_range(pl.len(), dtype=pl.UInt32), is_gap=pl.col("actual").is_null())
    prof = points.join(
        _profile_rates(points, work, cfg.profile_weeks),
        on="pid",
        how="left",
        maintain_order="left",  # the level's sums below add in the points' order
    )
    in_gap = prof.filter("is_gap")
    # Per gap: every row needs a profile, and the references must be mostly real.
    real, est = pl.col("n_real").fill_null(0).sum(), pl.col("n_est").fill_null(0).sum()
    usable = (
        in_gap.group_by("seg")
        .agg(complete=pl.col("profile").is_not_null().all(), real=real, est=est)
        .filter(
            pl.col("complete")
            & (pl.col("real") > 0)
            & (
                pl.col("est")
                <= cfg.max_estimated_reference_share * (pl.col("real") + pl.col("est"))
            )
        )
        .select("seg")
    )
    level = (
        prof.filter(~pl.col("is_gap") & pl.col("profile").is_not_null())
        .group_by("seg", maintain_order=True)
        .agg(
            actual=(pl.col("actual") * pl.col("interval_s")).sum(),
            expected=(pl.col("profile") * pl.col("interval_s")).sum(),
        )
        .select(
            "seg",
            level=pl.when(pl.col("expected") > 0)
            .then(pl.col("actual") / pl.col("expected"))
            .otherwise(1.0)
            .clip(cfg.estimate_scale_min, cfg.estimate_scale_max),
        )
    )
    est_rows = (
        in_gap.select("pid", "seg", "profile")
        .join(usable, on="seg", how="semi")
        .join(level, on="seg", how="left")
    )
    ordered = rows.with_columns(pid=pl.int_range(pl.len(), dtype=pl.UInt32))
    weight = cfg.estimate_window_s / (cfg.estimate_window_s + pl.col("span_s"))
    scaled = pl.col("profile") * pl.col("level").fill_null(1.0).pow(weight)
    edge = pl.min_horizontal(
        (pl.col("ts") - pl.col("ts0")).dt.total_seconds(),
        (pl.col("ts1") - pl.col("ts")).dt.total_seconds(),
    )
    near = (-edge / cfg.estimate_edge_s).exp()
    rate = _line_rate() * near + scaled * (1.0 - near)
    return (
        ordered.join(est_rows.drop("seg"), on="pid", how="inner")
        .with_columns(raw=(rate * pl.col("interval_s")).clip(lower_bound=0.0))
        .drop("pid", "profile", "level")
    )


# --- putting it together --------------------------------------------------------------------


def _fills(frame: pl.DataFrame, ctx: pl.Expr, cfg: VeeConfig) -> pl.DataFrame:
    """The values to write: ``_i`` (row in ``frame``), import, register, quality, source."""
    work = _work(frame, ctx)
    gaps = _gaps(work, cfg)
    if gaps.height == 0:
        return pl.DataFrame()
    gap_cols = [c for c in gaps.columns if c not in ("meter_id", "first_pos", "last_pos")]
    rows = work.filter("miss").join(gaps.select(gap_cols), on="seg", how="inner")
    parts = []
    lin = rows.filter(pl.col("method") == _LINEAR)
    if lin.height:
        parts.append(_linear(lin))
    prof = rows.filter(pl.col("method") == _PROFILE)
    if prof.height:
        parts.append(_profile(prof, work, gaps.filter(pl.col("method") == _PROFILE), cfg))
    if not parts:
        return pl.DataFrame()
    est = pl.concat(parts, how="diagonal").sort("pos")
    # Registers known on both sides fix the gap's energy: scale the shape to it (an even
    # spread when the shape is all zero but energy did flow).
    total = pl.col("raw").sum().over("seg")
    count = pl.len().over("seg")
    value = (
        pl.when(pl.col("reg_energy").is_null())
        .then(pl.col("raw"))
        .when(total > 0)
        .then(pl.col("raw") * pl.col("reg_energy") / total)
        .otherwise(pl.col("reg_energy") / count)
    )
    est = est.with_columns(value=value)
    before = pl.col("register_kwh0") + pl.col("value").cum_sum().over("seg")
    after = (
        pl.col("register_kwh1")
        - pl.col("import_kwh1")
        - pl.col("value").sum().over("seg")
        + pl.col("value").cum_sum().over("seg")
    )
    est = est.with_columns(
        register=pl.when(pl.col("reg_from") == "before")
        .then(before)
        .when(pl.col("reg_from") == "after")
        .then(after)
    )
    return est.filter("target").select(
        "_i",
        "value",
        "register",
        quality=pl.col("quality") | _ESTIMATED,
        source=pl.when(pl.col("method") == _LINEAR)
        .then(pl.lit(SOURCE_LINEAR))
        .otherwise(pl.lit(SOURCE_PROFILE)),
    )


def _apply(frame: pl.DataFrame, fills: pl.DataFrame) -> pl.DataFrame:
    """Write the fills into copies of the five columns they touch, in place by row."""
    idx = fills.get_column("_i")
    with_reg = fills.filter(pl.col("register").is_not_null())
    quality = frame.get_column("quality").clone()
    return frame.with_columns(
        frame.get_column("import_kwh").clone().scatter(idx, fills.get_column("value")),
        frame.get_column("register_kwh")
        .clone()
        .scatter(with_reg.get_column("_i"), with_reg.get_column("register")),
        quality.scatter(idx, fills.get_column("quality").cast(quality.dtype)),
        frame.get_column("status").clone().scatter(idx, Status.ESTIMATED.value),
        frame.get_column("source").clone().scatter(idx, fills.get_column("source")),
    )
