"""A subject's own expected level per hour of the week, and the running level against it.

Why hour-of-week: a household's Monday 8 am differs from its Sunday 8 am, and a feeder's
evening peak from its night. Why robust (median and MAD blended into a memory of a few
weeks): one spike or one holiday must not move the baseline. Rows already judged anomalous
never update it, so a bypassed meter does not teach the baseline its new, lower level,
while gradual change (a few per cent a week) stays inside the band and is followed.

Everything is vectorised over the batch: one group-by for the batch statistics, joins to
the stored profile, one EWMA per subject (``ewm_mean_by`` over time, continued across
batches by prepending the stored EWMA as the first observation).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.anomaly import levels, temperature
from metrify.anomaly.frames import columns, where, without
from metrify.anomaly.state import (
    HOURS_OF_WEEK,
    PROFILE_SCHEMA,
    SCALAR_SCHEMA,
    SLOT_VALUES,
    local_hour_of_week,
    pack_slots,
    replace_state,
    unpack_slots,
)
from metrify.contracts.columns import filled
from metrify.settings.anomaly import AnomalyConfig

P = ParamSpec("P")
T = TypeVar("T")

MAD_TO_SD = 1.4826
#: Profile rows after the 168 hours of the week (a meter's arrays are 173 long): its
#: temperature fit (temperature.py), then the evidence of its open drop run (the sums
#: behind the correlation of observed with expected, and behind the base-load share).
TEMP_SLOTS: Final = (temperature.SLOT_A, temperature.SLOT_B)
RUN_SLOTS: Final = (170, 171, 172)
_RUN_SUMS: Final = ("n", "so", "se", "soo", "see", "soe", "bs", "bn", "unused")
#: the columns :func:`_drop_evidence` adds to the rows, in order
_EVIDENCE: Final = (
    "base_cut",
    "usual_corr",
    "base_ratio",
    "drop_corr",
    "drop_rows",
    "drop_base",
    "drop_activity",
    "drop_share",
)


@dataclass
class Judged:
    """Rows with ``expected``, ``z``, point/drop/shift flags; the subjects' new state."""

    rows: pl.DataFrame
    #: the profile slots the batch learnt or set (merge with :func:`merge_slots`)
    profile: pl.DataFrame
    scalars: pl.DataFrame


def judge(
    frame: pl.DataFrame,
    profile: pl.DataFrame,
    scalars: pl.DataFrame,
    cfg: AnomalyConfig,
    *,
    floor: float,
    min_excess: float,
    levels: bool,
    floor_share: float | None = None,
    peak_factor: float | None = None,
    weather: pl.DataFrame | None = None,
    classify: bool = False,
) -> Judged:
    """Judge ``frame`` week by week, so a bulk load of a year is judged as a stream is.

    The baseline remembers ``memory_weeks``; judging a year in one go against one median
    would compare winter with summer. Each week is vectorised over all subjects; the state
    a week leaves is the next week's prior (as it is the next batch's in a stream).
    """
    # an integer code per subject for the weeks' lookups, windows and sorts (``_sid``, in
    # order of first appearance): hashing the id strings again in each week's joins cost
    # more than the judgement around them
    frame, ids = _coded(frame)
    weeks = frame.select(pl.col("ts").dt.truncate("1w").alias("week"))["week"]
    judge_week = functools.partial(
        _judge_once,
        ids=ids,
        cfg=cfg,
        floor=floor,
        min_excess=min_excess,
        levels=levels,
        floor_share=floor_share,
        peak_factor=peak_factor,
        weather=weather,
        classify=classify,
    )
    if weeks.n_unique() <= 1:
        j = judge_week(frame, profile, scalars)
        return Judged(rows=j.rows.drop("_sid"), profile=j.profile, scalars=j.scalars)
    parts: list[pl.DataFrame] = []
    states: list[pl.DataFrame] = []
    # What does not depend on the state a week leaves is found once for all weeks: each
    # row's hour of the week, whether it is new (later than the subject's last judged
    # row: the weeks' rows all follow the weeks' before), and each week's memory caps.
    frame = _newness(frame.with_columns(local_hour_of_week(frame), week=weeks), scalars, ids)
    caps = _caps(frame, cfg, "week").partition_by("week", as_dict=True, include_key=False)
    by_week = frame.partition_by("week", as_dict=True, include_key=False)
    # the slots the weeks did not set: a prefix of the profile (a merge keeps the order of
    # the rows it keeps and puts the week's after them)
    unset = profile.height
    for key in sorted(by_week):
        j = judge_week(by_week[key], profile, scalars, caps=caps[key])
        parts.append(j.rows)
        profile, unset = _merge_coded(profile, j.profile, ids, unset)
        scalars = replace_state(scalars, j.scalars)
        states.append(j.scalars)
    # what the weeks set, the latest week's value of each slot and subject winning (in
    # the order of their last setting)
    out_profile = profile.slice(unset)
    out_scalars = pl.concat(states).unique("subject_id", keep="last", maintain_order=True)
    return Judged(
        rows=pl.concat(parts, how="diagonal_relaxed").drop("_sid"),
        profile=out_profile,
        scalars=out_scalars,
    )


def _judge_once(
    frame: pl.DataFrame,
    profile: pl.DataFrame,
    scalars: pl.DataFrame,
    cfg: AnomalyConfig,
    *,
    ids: pl.DataFrame,
    floor: float,
    min_excess: float,
    levels: bool,
    floor_share: float | None = None,
    peak_factor: float | None = None,
    weather: pl.DataFrame | None = None,
    classify: bool = False,
    caps: pl.DataFrame | None = None,
) -> Judged:
    """Judge ``frame`` (``subject_id, ts, interval_s, value, usable``, ``_sid``: the
    subject's position in ``ids``) against the state.

    ``value`` is average power over the interval. With ``weather`` (hourly temperatures per
    station) and a ``station_id`` column, the expected level of weather-sensitive subjects
    follows the temperature (:mod:`metrify.anomaly.temperature`). Returns each row's
    expected level and robust z-score, ``high`` (far above), ``low`` (far below), and when
    ``levels`` is set ``drop``/``shift`` (the EWMA ratio held beyond its threshold for
    ``level_min_hours``). With ``classify`` (meters) each drop run also gets the evidence
    that tells a bypass from an empty home (``drop_base``, ``drop_corr``, ``drop_rows``),
    accumulated over the whole run across batches.
    """
    if caps is None:  # (else ``frame`` has its hours and newness: see :func:`judge`)
        rows = _newness(frame.with_columns(local_hour_of_week(frame)), scalars, ids)
        weeks_cap = _caps(rows, cfg)
    else:
        rows, weeks_cap = frame, caps
    ok = pl.col("usable") & pl.col("new") & pl.col("value").is_not_null()
    rows = _attach(_attach_slots(rows, profile, ids, "p_"), weeks_cap, ids)
    rows = rows.with_columns(pl.col("p_weight", "p_level", "p_spread").fill_null(0.0))
    # A trusted prior is used alone (a spike in a small batch must not move it); a young
    # subject is judged on its prior blended with this batch's own medians. Only the
    # young hours need the batch's medians, so only they are grouped: once a fleet has
    # a few weeks of history, that is almost no row of a batch.
    trusted = pl.col("p_weight") >= cfg.min_samples
    w = pl.min_horizontal("p_weight", "cap")
    untrusted = rows.select(
        "_sid", "subject_id", "how", "value", "p_weight", "cap", "p_level", _keep=ok & ~trusted
    )
    fresh = _young_stats(where(untrusted, "_keep"))
    if fresh.height:
        rows = rows.join(fresh, on=["subject_id", "how"], how="left")
    else:  # (a trusted fleet: no hour is young, and the join would hash every row for none)
        rows = rows.with_columns(
            pl.lit(None, dtype).alias(c)
            for c, dtype in fresh.schema.items()
            if c not in ("subject_id", "how")
        )
    rows = rows.with_columns(pl.col("b_n").fill_null(0.0))
    blended = (w * pl.col("p_level") + pl.col("b_n") * pl.col("b_med").fill_null(0.0)) / (
        w + pl.col("b_n")
    )
    rows = rows.with_columns(
        expected=pl.when(trusted)
        .then(pl.col("p_level"))
        .when(pl.col("p_weight") + pl.col("b_n") >= cfg.min_samples)
        .then(blended)
        .otherwise(None)
    )
    use_temp = weather is not None and "station_id" in rows.columns
    if use_temp:
        assert weather is not None
        rows = temperature.attach(rows, weather, profile, cfg)
        adjust = pl.col("x").is_not_null() & (pl.col("k") > 0)
        rows = rows.with_columns(
            base="expected",
            expected=pl.when(adjust)
            .then(
                pl.max_horizontal(
                    pl.col("expected") + pl.col("k") * pl.col("x"),
                    temperature.MIN_SHARE * pl.col("expected"),
                )
            )
            .otherwise(pl.col("expected")),
        ).drop("k")
    spread = (
        pl.when(trusted)
        .then(pl.col("p_spread"))
        .otherwise(
            (w * pl.col("p_spread") + pl.col("b_n") * pl.col("b_mad").fill_null(0.0))
            / (w + pl.col("b_n"))
        )
    )
    share = cfg.scale_floor_share if floor_share is None else floor_share
    scale = pl.max_horizontal(MAD_TO_SD * spread, share * pl.col("expected").abs(), pl.lit(floor))
    rows = rows.with_columns(z=(pl.col("value") - pl.col("expected")) / scale)
    judged = pl.col("expected").is_not_null() & pl.col("usable")
    diff = pl.col("value") - pl.col("expected")
    gate: pl.Expr = pl.lit(True)
    if peak_factor is not None:
        # the typical daily peak (90th percentile of daily maxima): stored, or the batch's
        # own while the subject is young (only the young are grouped for it)
        rows = _attach(
            rows, scalars.select("subject_id", "peak_kw", "peak_days", record_ref="last_value"), ids
        )
        known_peak = pl.col("peak_days").fill_null(0) >= cfg.min_samples
        batch_peak = (
            where(rows.select("subject_id", "ts", "value", _keep=ok & ~known_peak), "_keep")
            .group_by("subject_id", pl.col("ts").dt.date().alias("day"))
            .agg(dmax=pl.col("value").max())
            .group_by("subject_id")
            .agg(b_peak=pl.col("dmax").quantile(0.9))
        )
        rows = _attach(rows, batch_peak, ids)
        peak = pl.when(known_peak).then(pl.col("peak_kw")).otherwise(pl.col("b_peak"))
        rows = rows.with_columns(peak_ref=peak)
        gate = pl.col("peak_ref").is_null() | (pl.col("value") > peak_factor * pl.col("peak_ref"))
        # A burst no higher than ``record_margin`` x what the meter drew recently (its
        # record, fading) is its own routine: a weekly sauna, the Sunday roast, the EV
        # charged on Saturdays. It is not flagged, and so it is learnt by its hour of the
        # week like any other row: the first time is an incident, the next weeks are not.
        gate = gate & ~(pl.col("value") <= cfg.record_margin * pl.col("record_ref")).fill_null(
            False
        )
    rows = rows.with_columns(
        high=(judged & (pl.col("z") > cfg.high_mads) & (diff > min_excess) & gate).fill_null(False),
        low=(judged & (pl.col("z") < -cfg.high_mads) & (-diff > min_excess)).fill_null(False),
    )
    run_slots = pl.DataFrame(schema=PROFILE_SCHEMA)
    if levels:
        means = (  # lazy: the filter is fused into the grouping (a stream batch's hot spot)
            profile.lazy()
            .filter((pl.col("how") < HOURS_OF_WEEK) & (pl.col("weight") > 0))
            .group_by("subject_id")
            .agg(mean_level=pl.col("level").mean())
            .collect()
        )
        rows, new_scalars = _levels(rows, scalars, cfg, means, ids)
        if classify:
            rows, run_slots = _drop_evidence(rows, profile, scalars, new_scalars, ids)
        adapt = dt.timedelta(days=cfg.adapt_after_days)
        # Rows of a drop or shift still going on at the end of the batch do not teach the
        # baseline (a bypassed meter must not teach it its new level) until it has lasted
        # ``adapt_after_days``. A run that already ended inside the batch was a passing
        # episode (a weekend away) and is learnt like any other row: excluding it for
        # good would freeze those hours of the week at their old level, and the next
        # week would be judged a drop again, and the next.
        open_runs = new_scalars.select(
            "subject_id", open_drop="drop_since", open_shift="shift_since"
        )
        rows = _attach(rows, open_runs, ids)
        young = [
            pl.col(f"in_{n}")
            & (pl.col(f"{n}_start") == pl.col(f"open_{n}")).fill_null(False)
            & ((pl.col("ts") - pl.col(f"{n}_start")) < adapt).fill_null(True)
            for n in ("drop", "shift")
        ]
        learn = ok & ~pl.col("high") & ~pl.col("low") & ~young[0] & ~young[1]
    else:
        rows = rows.with_columns(
            drop=pl.lit(False), shift=pl.lit(False), ratio=pl.lit(None, pl.Float64)
        )
        new_scalars = (
            rows.filter(pl.col("new"))
            .group_by("subject_id")
            .agg(last_ts=pl.col("ts").max())
            .join(scalars.drop("last_ts"), on="subject_id", how="left")
            .pipe(columns, *SCALAR_SCHEMA)
        )
        learn = ok & ~pl.col("high") & ~pl.col("low")
    # (only the columns the learning reads: filtering every column of the rows cost more)
    learnt = where(rows.select("_sid", "subject_id", "how", "ts", "value", _keep=learn), "_keep")
    new_profile = _learn(learnt, profile, weeks_cap, ids)
    if use_temp:
        fit = temperature.learn(rows.filter(learn & trusted), profile, scalars, new_scalars, cfg)
    else:  # the fit stays as it was
        fit = profile.filter(pl.col("how").is_in(TEMP_SLOTS)).join(
            columns(new_scalars, "subject_id"), on="subject_id", how="semi"
        )
    if classify:
        new_profile = pl.concat([new_profile, _slots(new_scalars["subject_id"], [fit, run_slots])])
    elif fit.height:
        new_profile = pl.concat([new_profile, columns(fit, *new_profile.columns)])
    if peak_factor is not None:
        new_scalars = _learn_peak(learnt, new_scalars, cfg)
        seen = where(rows.select("_sid", "subject_id", "value", _keep=ok), "_keep")
        new_scalars = _learn_record(seen, scalars, new_scalars, cfg)
    return Judged(rows=rows, profile=new_profile, scalars=new_scalars)


def _merge_coded(
    old: pl.DataFrame, new: pl.DataFrame, ids: pl.DataFrame, prefix: int
) -> tuple[pl.DataFrame, int]:
    """:func:`merge_slots` within a judge call: the slots found by the subjects' codes in
    ``ids`` (``new``'s subjects are all there), not by hashing their ids again: a week
    replaces most of the slots of every subject it judged. Also how many of ``old``'s
    first ``prefix`` rows are kept (they stay first)."""
    if not new.height:
        return old, prefix

    def key(frame: pl.DataFrame) -> pl.Series:
        code = _positions(frame.get_column("subject_id"), ids).cast(pl.Int64)
        return code * _SLOT_SPAN + frame.get_column("how").cast(pl.Int64)

    # (a subject of the profile not in ``ids`` has no code: it is kept)
    replaced = key(old).is_in(key(new).implode()).fill_null(False)
    kept = prefix - int(replaced.head(prefix).sum())
    return pl.concat([where(old, ~replaced), columns(new, *old.columns)]), kept


def _newness(frame: pl.DataFrame, scalars: pl.DataFrame, ids: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``new``: the row is later than its subject's last judged row (a
    re-delivered row is judged again but not learnt twice)."""
    rows = _attach(frame, columns(scalars, "subject_id", "last_ts"), ids)
    return rows.with_columns(
        new=pl.col("last_ts").is_null() | (pl.col("ts") > pl.col("last_ts"))
    ).drop("last_ts")


def _caps(rows: pl.DataFrame, cfg: AnomalyConfig, *by: str) -> pl.DataFrame:
    """The weight a subject's profile slot may reach, per subject (and ``by``):
    ``memory_weeks`` of its readings."""
    return (  # (by the subject's code: see _learn_peak)
        rows.group_by("_sid", *by)
        .agg(
            pl.col("subject_id").first(),
            cap=cfg.memory_weeks * 3600.0 / pl.col("interval_s").median(),
        )
        .drop("_sid")
    )


def _drop_evidence(
    rows: pl.DataFrame,
    profile: pl.DataFrame,
    scalars: pl.DataFrame,
    new_scalars: pl.DataFrame,
    ids: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What tells a bypass from an empty home, over each drop run so far.

    ``drop_base``: how the base-load hours (the quietest quarter of the meter's profile)
    fared: a vacant home keeps its fridge and standby, a bypass takes them too.
    ``drop_corr``: whether the home's daily rhythm went on: a meter under-recording
    (bypassed circuits, tampering) still records the occupants' mornings and evenings at
    a fraction; an empty home records its fridge, flat. The correlation of observed with
    expected over the run's rows, and ``drop_rows``, how many it rests on. ``usual_corr``:
    the correlation a normal day of this meter has, from its profile (the spread of its
    levels over the week against the spread within an hour): a home with a weak rhythm
    keeps a weak one when bypassed.

    Both are sums over the run, carried in the meter's state while it is open: a stream
    sends a meter a few rows a batch, and a run judged on one batch's rows alone would
    change its kind from batch to batch. Returns the rows with the three columns and the
    state slots of the runs still open.
    """
    no_open_run = scalars.get_column("drop_since").null_count() == scalars.height
    if no_open_run and not rows.get_column("in_drop").any():
        # no run going on, none begun: nothing to accumulate (most batches)
        return rows.with_columns(
            pl.lit(None, pl.Float64).alias(c) for c in _EVIDENCE
        ), pl.DataFrame(schema=PROFILE_SCHEMA)
    subjects = rows.select(pl.col("subject_id").filter(pl.col("in_drop")).unique())
    cuts = (
        profile.join(subjects, on="subject_id", how="semi")
        .filter((pl.col("how") < HOURS_OF_WEEK) & (pl.col("weight") > 0))
        .group_by("subject_id")
        .agg(
            base_cut=pl.col("level").quantile(0.25),
            # how closely a normal day follows the profile: the spread of the levels
            # across the week against the spread within an hour
            usual_corr=pl.col("level").std()
            / (pl.col("level").var() + (MAD_TO_SD * pl.col("spread").mean()) ** 2).sqrt(),
        )
    )
    rows = _attach(rows, cuts, ids)
    known = pl.col("base_cut").is_not_null() & (pl.col("p_weight") > 0)
    base = pl.col("p_level") <= pl.col("base_cut")
    if rows.select((pl.col("in_drop") & ~known).any()).item():
        # a subject too young for a profile: the quietest quarter of this batch
        quiet = pl.col("expected") <= pl.col("expected").quantile(0.25).over("subject_id")
        base = pl.when(known).then(base).otherwise(quiet)
    rows = rows.with_columns(
        base_ratio=pl.when(pl.col("in_drop") & base & pl.col("usable") & (pl.col("expected") > 0))
        .then(pl.col("value") / pl.col("expected"))
        .otherwise(None)
    )
    o, e = pl.col("value"), pl.col("expected")
    in_run = pl.col("in_drop") & pl.col("usable") & o.is_not_null() & e.is_not_null()
    batch = (
        rows.select(  # (only the columns summed are filtered, not all of the rows')
            "subject_id", "drop_start", "value", "expected", "base_ratio", "in_drop", "usable"
        )
        .filter(in_run)
        .group_by("subject_id", "drop_start")
        .agg(
            b_n=pl.len().cast(pl.Float64),
            b_so=o.sum(),
            b_se=e.sum(),
            b_soo=(o * o).sum(),
            b_see=(e * e).sum(),
            b_soe=(o * e).sum(),
            b_bs=pl.col("base_ratio").sum(),
            b_bn=pl.col("base_ratio").count().cast(pl.Float64),
        )
    )
    # the sums of the run the meter was in when the batch began (it goes on in this batch
    # with the same start)
    open_runs = scalars.select("subject_id", drop_start="drop_since").drop_nulls()
    held = where(profile, profile.get_column("how").is_in(RUN_SLOTS))
    prior = _run_sums(held.join(open_runs, on="subject_id", how="semi")).join(
        open_runs, on="subject_id", how="inner"
    )
    total = batch.join(prior, on=["subject_id", "drop_start"], how="full", coalesce=True).select(
        "subject_id",
        "drop_start",
        *[
            (pl.col(f"b_{c}").fill_null(0.0) + pl.col(f"r_{c}").fill_null(0.0)).alias(f"t_{c}")
            for c in _RUN_SUMS[:-1]
        ],
    )
    n = pl.col("t_n")
    cov = n * pl.col("t_soe") - pl.col("t_so") * pl.col("t_se")
    var = (n * pl.col("t_soo") - pl.col("t_so") ** 2) * (n * pl.col("t_see") - pl.col("t_se") ** 2)
    evidence = total.select(
        "subject_id",
        "drop_start",
        drop_corr=pl.when(var > 0).then(cov / var.sqrt()).otherwise(None),
        drop_rows=n,
        drop_base=pl.when(pl.col("t_bn") > 0).then(pl.col("t_bs") / pl.col("t_bn")),
        # the observed use's coefficient of variation over the expected's: a scale-free
        # measure of activity. A meter recording a fraction of a lived-in home keeps the
        # home's ups and downs at that fraction (ratio near 1, whatever the fraction);
        # an empty home records its fridge cycling or nothing, flat (ratio far below 1)
        drop_activity=pl.when((pl.col("t_so") > 0) & (pl.col("t_se") > 0) & (n > 1))
        .then(
            ((n * pl.col("t_soo") - pl.col("t_so") ** 2).clip(0.0).sqrt() / pl.col("t_so"))
            / ((n * pl.col("t_see") - pl.col("t_se") ** 2).clip(0.0).sqrt() / pl.col("t_se"))
        )
        .otherwise(None),
        drop_share=pl.when(pl.col("t_se") > 0).then(pl.col("t_so") / pl.col("t_se")),
    )
    # Only rows in a drop run have a run's start to find (others start no run, or one of
    # their own that has no evidence), so only their keys are joined, and the evidence
    # set beside the rows: joining the rows carried their every column along.
    at = rows.get_column("in_drop").arg_true()
    keys = pl.DataFrame([rows.get_column(c).gather(at) for c in ("subject_id", "drop_start")])
    found = keys.join(evidence, on=["subject_id", "drop_start"], how="left", maintain_order="left")
    rows = _with(
        rows,
        [
            filled(None, column.dtype, rows.height).scatter(at, column).alias(column.name)
            for column in without(found, "subject_id", "drop_start").iter_columns()
        ],
    )
    still = total.join(
        new_scalars.select("subject_id", drop_start="drop_since").drop_nulls(),
        on=["subject_id", "drop_start"],
        how="semi",
    ).with_columns(t_unused=pl.lit(0.0))
    slots = pack_slots(still, RUN_SLOTS, [f"t_{c}" for c in _RUN_SUMS])
    return rows, slots


def _run_sums(profile: pl.DataFrame) -> pl.DataFrame:
    """The open drop run's sums kept in a meter's run slots (``r_n``, ``r_so``, ...)."""
    return unpack_slots(profile, RUN_SLOTS, [f"r_{c}" for c in _RUN_SUMS])


def _weekly_drops(
    both: pl.DataFrame, scalars: pl.DataFrame, cfg: AnomalyConfig, ids: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drops that repeat the meter's last drop a week or two later, at the same hour of
    the week, are its routine (away every weekend, a weekly night shift): not raised again
    while shorter than ``drop_medium_hours``.

    The hour-of-week baseline learns such a pattern too, but a blend of medians takes
    weeks to move half-way, and until then each weekend was a new vacancy incident. The
    first one is raised; its repeats are not, unless one lasts long enough to be a case
    of its own (a bypass fitted on a Friday evening goes on past Monday).

    ``both``: the level rows (``sid``-ordered, seeds first) with ``c_drop``,
    ``drop_start`` and ``drop``; the start of the meter's last drop that lasted
    ``level_min_hours`` and ended is kept in its ``run_since`` (unused otherwise for
    meters). Returns ``both`` with ``drop`` cleared on routine repeats, and per subject
    the new last ended drop (``_last_drop``).
    """
    empty = pl.DataFrame(
        schema={"subject_id": pl.String(), "_last_drop": SCALAR_SCHEMA["run_since"]}
    )
    if not both.get_column("drop").any():  # no drop lasted in this batch: most batches
        return both, empty
    # In NumPy over the drop rows: the runs are a few dozen a week, and each of the dozen
    # Polars steps this took cost a fixed ~0.3 ms whatever its size (times in µs).
    c_drop = levels.flags(both.get_column("c_drop"))
    at = np.flatnonzero(c_drop)
    sid_all = both.get_column("sid").to_numpy()
    sid = sid_all[at]
    start = levels.micros(both.get_column("drop_start"))[at]
    drop = levels.flags(both.get_column("drop"))[at]
    last_row = np.append(sid_all[1:] != sid_all[:-1], True)[at]  # the subject's last row
    end = (
        levels.micros(both.get_column("ts"))[at]
        + both.get_column("interval_s").to_numpy()[at].astype(np.int64) * 1_000_000
    )
    # a run: the drop rows of one subject with one start (consecutive: rows in subject,
    # time order); in subject, start order
    first = np.ones(at.size, dtype=bool)
    first[1:] = (sid[1:] != sid[:-1]) | (start[1:] != start[:-1])
    heads = np.flatnonzero(first)
    lasted = np.logical_or.reduceat(drop, heads)
    if not lasted.any():
        return both, empty
    run = np.cumsum(first) - 1  # each drop row's run
    runs_sid = sid[heads][lasted]
    runs_start = start[heads][lasted]
    runs_open = np.logical_or.reduceat(last_row, heads)[lasted]
    runs_end = np.maximum.reduceat(end, heads)[lasted]
    # the start of the meter's last ended drop before the batch (``levels.NONE``: none)
    ended = np.full(ids.height, levels.NONE, dtype=np.int64)
    known = scalars.filter(pl.col("run_since").is_not_null())
    codes = _positions(known.get_column("subject_id"), ids)
    held = codes.is_not_null().to_numpy()
    ended[codes.filter(codes.is_not_null()).to_numpy()] = levels.micros(
        known.get_column("run_since")
    )[held]
    since = ended[runs_sid]

    def before(n: int) -> npt.NDArray[np.int64]:
        """The start of the subject's run ``n`` runs back (``levels.NONE``: none)."""
        out = np.full(runs_sid.size, levels.NONE, dtype=np.int64)
        if n < runs_sid.size:
            same = runs_sid[n:] == runs_sid[:-n]
            out[n:][same] = runs_start[:-n][same]
        return out

    # the last two drops before (one odd drop between two weekends does not break it)
    one_back = before(1)
    one = np.where(one_back != levels.NONE, one_back, since)
    two = np.where(
        before(2) != levels.NONE, before(2), np.where(one_back != levels.NONE, since, levels.NONE)
    )
    week = 7 * 86_400 * 1_000_000
    tol = cfg.drop_routine_tolerance_hours * 3_600_000_000

    def repeats(prev: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        some = prev != levels.NONE
        gap = np.where(some, runs_start - np.where(some, prev, 0), 0)
        weeks = np.round(gap / week)  # (half to even, as Polars rounds)
        near: npt.NDArray[np.bool_] = (
            some & (weeks >= 1) & (weeks <= 2) & (np.abs(gap - weeks * week) <= tol)
        )
        return near

    short = (runs_end - runs_start) < cfg.drop_medium_hours * 3_600_000_000
    routine = (repeats(one) | repeats(two)) & short
    if routine.any():  # (most weeks repeat no drop: every row keeps its flag)
        quiet = np.zeros(heads.size, dtype=bool)
        quiet[np.flatnonzero(lasted)[routine]] = True
        hushed = np.zeros(both.height, dtype=bool)
        hushed[at[quiet[run]]] = True
        both = both.with_columns(drop=pl.col("drop") & ~pl.Series(hushed))
    closed = ~runs_open
    if not closed.any():
        return both, empty
    # runs are in subject, start order: a subject's last closed run is its latest
    subjects, last_closed = runs_sid[closed], runs_start[closed]
    latest = np.append(subjects[1:] != subjects[:-1], True)
    last = pl.DataFrame(
        {
            "subject_id": ids.get_column("subject_id").gather(subjects[latest]),
            "_last_drop": pl.Series(last_closed[latest]).cast(SCALAR_SCHEMA["run_since"]),
        }
    )
    return both, last


def _slots(subjects: pl.Series, parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Every slot row of ``subjects`` (168-172): ``parts`` where given, else zeros.

    The arrays are stored by position, so a meter keeps all five: a fit of zero days is
    no fit, a run of zero rows no run. (Laid out by position, each subject's slots in a
    row: a cross join and a join on the ids cost more than the rest of a week's state.)
    """
    names = subjects.unique()
    slots = (*TEMP_SLOTS, *RUN_SLOTS)
    given = pl.concat([columns(p, *PROFILE_SCHEMA) for p in parts])
    code = given.get_column("subject_id").cast(pl.Enum(names), strict=False).to_physical()
    slot = given.get_column("how").replace_strict(
        {s: i for i, s in enumerate(slots)}, default=None, return_dtype=pl.Int64
    )
    at = code.cast(pl.Int64) * len(slots) + slot
    known = at.is_not_null()
    at = at.filter(known)
    size = names.len() * len(slots)
    out = [
        names.gather(pl.int_range(size, eager=True) // len(slots)).alias("subject_id"),
        pl.Series("how", slots * names.len(), dtype=pl.Int16()),
    ]
    for value in SLOT_VALUES:
        values = given.get_column(value).filter(known)
        out.append(filled(0.0, pl.Float64, size).scatter(at, values).fill_null(0.0).alias(value))
    return pl.DataFrame(out).pipe(columns, *PROFILE_SCHEMA)


def _learn_record(
    rows: pl.DataFrame, prior: pl.DataFrame, scalars: pl.DataFrame, cfg: AnomalyConfig
) -> pl.DataFrame:
    """The highest power each meter drew recently, kept in ``last_value`` (meters only).

    Unlike the typical daily peak, the record learns from every row, flagged or not: a
    home that has drawn 9 kW before (an electric shower, a sauna) owns such a load, and
    the next time it is routine. It fades with a half-life of ``record_half_life_days``,
    so an appliance sold long ago stops excusing new bursts.
    """
    seen = (  # (by the subject's code: see _learn_peak)
        rows.group_by("_sid")
        .agg(pl.col("subject_id").first(), b_max=pl.col("value").max())
        .drop("_sid")
    )
    elapsed = (pl.col("last_ts") - pl.col("prev_ts")).dt.total_seconds().fill_null(0.0)
    fade = 0.5 ** (elapsed / (cfg.record_half_life_days * 86400.0))
    return (
        scalars.join(seen, on="subject_id", how="left")
        .join(prior.select("subject_id", prev_ts="last_ts"), on="subject_id", how="left")
        .with_columns(last_value=pl.max_horizontal(pl.col("last_value") * fade, "b_max"))
        .pipe(columns, *SCALAR_SCHEMA)
    )


def _young_stats(young: pl.DataFrame) -> pl.DataFrame:
    """Per (subject, hour-of-week) of untrusted hours: batch median, count, and the MAD
    around the blended level they will be judged against."""
    if not young.height:
        return pl.DataFrame(
            schema={
                "subject_id": pl.String(),
                "how": pl.Int16(),
                "b_med": pl.Float64(),
                "b_n": pl.Float64(),
                "b_mad": pl.Float64(),
            }
        )
    ordered, groups = _hour_groups(young, ["p_weight", "cap", "p_level"])
    med = _sorted_medians(ordered.get_column("value"), groups)
    n = groups.get_column("_n").cast(pl.Float64)
    w = groups.select(pl.min_horizontal("p_weight", "cap")).to_series()
    blend = (w * groups.get_column("p_level") + n * med) / (w + n)
    return groups.select(
        "subject_id", "how", b_med=med, b_n=n, b_mad=_sorted_mads(ordered, groups, blend)
    )


def _learn_peak(rows: pl.DataFrame, scalars: pl.DataFrame, cfg: AnomalyConfig) -> pl.DataFrame:
    """Blend the batch's median daily maximum into each subject's typical daily peak."""
    days = (  # (grouped by the subject's code: hashing its id took longer)
        rows.group_by("_sid", pl.col("ts").dt.date().alias("day"))
        .agg(pl.col("subject_id").first(), dmax=pl.col("value").max())
        .group_by("_sid")
        .agg(
            pl.col("subject_id").first(),
            u_peak=pl.col("dmax").quantile(0.9),
            u_days=pl.len().cast(pl.Float64),
        )
        .drop("_sid")
    )
    cap = cfg.memory_weeks * 7
    w = pl.min_horizontal(pl.col("peak_days").fill_null(0.0), pl.lit(cap))
    blended = (w * pl.col("peak_kw").fill_null(0.0) + pl.col("u_days") * pl.col("u_peak")) / (
        w + pl.col("u_days")
    )
    has = pl.col("u_days").fill_null(0.0) > 0
    return (
        scalars.join(days, on="subject_id", how="left")
        .with_columns(
            peak_kw=pl.when(has).then(blended).otherwise(pl.col("peak_kw")),
            peak_days=pl.when(has)
            .then(pl.min_horizontal(w + pl.col("u_days"), pl.lit(cap)))
            .otherwise(pl.col("peak_days")),
        )
        .pipe(columns, *SCALAR_SCHEMA)
    )


def _slots_at(profile: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """The profile rows at the ``(subject_id, how)`` keys of ``rows`` (or, when the
    profile is hardly larger than ``rows``, all of it: for a left join onto ``rows``).

    Found by probing the profile with the batch's few keys: joining rows to the profile
    directly hashes the whole profile (172 slots of every subject held) on every batch.
    """
    if profile.height <= 2 * rows.height:
        # A load's week: the profile holds little but the week's subjects, and the
        # caller joins what this returns onto its rows (other slots never match).
        return profile
    keys = ["subject_id", "how"]
    return profile.join(rows.select(keys).unique(), on=keys, how="semi")


#: a slot's number is below this (the hours of the week, then the slots after them)
_SLOT_SPAN: Final = 256


def _attach_slots(
    rows: pl.DataFrame, profile: pl.DataFrame, ids: pl.DataFrame, prefix: str
) -> pl.DataFrame:
    """``rows`` with the profile's level, spread and weight at each row's (subject, slot)
    (``_sid``, ``how``), named with ``prefix``; null where the profile has no such slot.

    A left join on the two keys, found by position: the profile's subjects are coded as
    in ``ids``, its values scattered into a table of every code's slots and gathered at
    each row's. A join on the id string and the slot hashed both sides' keys and was the
    dearest step of a week's judgement. A profile much larger than the rows (a stream's
    cache of every meter), or subjects so many that the table would outgrow twice the
    rows and profile together, are probed with the rows' keys instead
    (:func:`_slots_at`)."""
    names = {v: f"{prefix}{v}" for v in SLOT_VALUES}
    size = ids.height * _SLOT_SPAN
    if profile.height > 2 * rows.height or size > 2 * (rows.height + profile.height):
        return rows.join(
            _slots_at(profile, rows).select("subject_id", "how", *SLOT_VALUES).rename(names),
            on=["subject_id", "how"],
            how="left",
        )
    key = pl.col("_sid").cast(pl.Int64) * _SLOT_SPAN + pl.col("how").cast(pl.Int64)
    tables = _slot_tables(profile, ids)
    return rows.with_columns(
        pl.lit(table).gather(key).alias(name)
        for table, name in zip(tables, names.values(), strict=True)
    )


def _keep_last(build: Callable[P, T]) -> Callable[P, T]:
    """``build``, remembering what it built last while it is called with the very same
    frames again (one entry, replaced whole; it holds those frames, so ``is`` cannot be
    fooled by a new frame at an old one's address, and a thread judging other frames only
    builds its own)."""
    last: list[tuple[tuple[object, ...], T]] = []

    @functools.wraps(build)
    def kept(*args: P.args, **kwargs: P.kwargs) -> T:
        entry = last[0] if last else None
        same = entry is not None and len(entry[0]) == len(args)
        if entry is not None and same and all(a is b for a, b in zip(entry[0], args, strict=True)):
            return entry[1]
        value = build(*args, **kwargs)
        last[:] = [(args, value)]
        return value

    return kept


@_keep_last
def _slot_tables(profile: pl.DataFrame, ids: pl.DataFrame) -> list[pl.Series]:
    """The profile's level, spread and weight in tables of every code's slots
    (``code * _SLOT_SPAN + how``; null where the profile has no such slot). Kept: a
    week's judgement and its learning look the same profile up."""
    code = _positions(profile.get_column("subject_id"), ids)
    at = code.cast(pl.Int64) * _SLOT_SPAN + profile.get_column("how").cast(pl.Int64)
    known = at.is_not_null()
    at = at.filter(known)
    size = ids.height * _SLOT_SPAN
    tables = [
        filled(None, pl.Float64, size).scatter(at, profile.get_column(value).filter(known))
        for value in SLOT_VALUES
    ]
    return tables


def _learn(
    rows: pl.DataFrame, profile: pl.DataFrame, caps: pl.DataFrame, ids: pl.DataFrame
) -> pl.DataFrame:
    """Blend the batch's medians and MADs into the hours of the week it saw.

    Returns only those slots (the rest of a subject's profile is unchanged): a stream
    batch brings each of thousands of meters an hour or two, and rebuilding all 168
    hours of every one of them per batch cost more than the judgement itself.
    """
    ordered, groups = _hour_groups(rows, [])
    med = _sorted_medians(ordered.get_column("value"), groups)
    stats = groups.select(
        "_sid",
        "subject_id",
        "how",
        u_med=med,
        u_n=pl.col("_n").cast(pl.Float64),
        u_mad=_sorted_mads(ordered, groups, med),
    )
    full = _attach(_attach_slots(stats, profile, ids, ""), caps, ids).with_columns(
        pl.col("level", "spread", "weight").fill_null(0.0),
        pl.col("cap").fill_null(8.0),
    )
    w = pl.min_horizontal("weight", "cap")
    total = w + pl.col("u_n")
    return full.select(
        "subject_id",
        "how",
        level=(w * pl.col("level") + pl.col("u_n") * pl.col("u_med")) / total,
        spread=(w * pl.col("spread") + pl.col("u_n") * pl.col("u_mad")) / total,
        weight=pl.min_horizontal(pl.col("weight") + pl.col("u_n"), pl.col("cap")),
    ).pipe(columns, *PROFILE_SCHEMA)


def _hour_groups(rows: pl.DataFrame, carry: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``rows`` in (subject, hour of the week, value) order with ``_g``, each row's group
    number; and one row per group: ``subject_id``, ``how``, the ``carry`` columns of its
    first row, ``_start`` (its first position) and ``_n`` (its size).

    Groups hold a few rows each (a batch brings each hour of a week one to four
    readings), and Polars' grouped median selects within each of a batch's hundred
    thousand groups apart; after one sort of all rows a median is two gathers.
    """
    key = pl.col("_sid").cast(pl.Int64) * _SLOT_SPAN + pl.col("how").cast(pl.Int64)
    ordered = (
        rows.select("_sid", "subject_id", "how", "value", *carry)
        .with_columns(_k=key)
        .sort("_k", "value")
        .with_columns(_first=(pl.col("_k") != pl.col("_k").shift(1)).fill_null(True))
    )
    groups = (
        ordered.with_row_index("_start")
        .filter("_first")
        .select("_sid", "subject_id", "how", *carry, pl.col("_start").cast(pl.Int64))
        .with_columns(_n=pl.col("_start").shift(-1).fill_null(ordered.height) - pl.col("_start"))
    )
    return ordered.select("value", _g=pl.col("_first").cum_sum() - 1), groups


def _sorted_medians(values: pl.Series, groups: pl.DataFrame) -> pl.Series:
    """The median of each group of ``values`` (sorted within groups), as Polars takes it:
    the middle value, or the two middle ones interpolated half-way."""
    start, n = groups.get_column("_start"), groups.get_column("_n")
    low = values.gather(start + (n - 1) // 2)
    high = values.gather(start + n // 2)
    return low + (high - low) * 0.5


def _sorted_mads(ordered: pl.DataFrame, groups: pl.DataFrame, centre: pl.Series) -> pl.Series:
    """The median absolute deviation of each group's values from its ``centre``."""
    g = ordered.get_column("_g")
    deviations = ordered.select(
        _g=g, dev=(ordered.get_column("value") - centre.gather(g)).abs()
    ).sort("_g", "dev")
    return _sorted_medians(deviations.get_column("dev"), groups)


def _coded(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` with ``_sid``, each row's subject's position in ``ids``, and ``ids``:
    the subjects in order of first appearance. The codes come from ``ids`` itself
    (:func:`_positions`, as every table's lookup does), so a code always is a
    position there, whatever a categorical would number."""
    ids = frame.select(pl.col("subject_id").unique(maintain_order=True).drop_nulls())
    return frame.with_columns(_sid=_positions(frame.get_column("subject_id"), ids)), ids


def _attach(
    rows: pl.DataFrame, table: pl.DataFrame, ids: pl.DataFrame, code: str = "_sid"
) -> pl.DataFrame:
    """``rows`` with the columns of ``table`` (one row per ``subject_id``) of each row's
    subject, null where it has none: a left join, found by position.

    ``ids`` lists the subjects in the order of their codes (``rows[code]``). Coding the
    table's few subjects and gathering by code costs a fraction of hashing every row's
    id again, and a week's judgement did that a dozen times."""
    keys = _positions(table.get_column("subject_id"), ids)
    rank = pl.int_range(table.height, dtype=pl.UInt32, eager=True)
    if keys.has_nulls():  # subjects the rows do not have: no row takes them
        rank, keys = rank.filter(keys.is_not_null()), keys.drop_nulls()
    where = filled(None, pl.UInt32, ids.height).scatter(keys, rank)
    at = where.gather(rows.get_column(code))
    return _with(rows, [c.gather(at) for c in table.iter_columns() if c.name != "subject_id"])


def _with(rows: pl.DataFrame, columns: list[pl.Series]) -> pl.DataFrame:
    """``rows`` with ``columns`` (computed already) added, replacing any of the same
    name. Added side by side where none is there yet: ``with_columns`` plans and runs a
    query even for columns that are ready, about as dear as the lookup that made them."""
    if any(column.name in rows.columns for column in columns):
        return rows.with_columns(columns)
    return rows.hstack(columns)


def _positions(subjects: pl.Series, ids: pl.DataFrame) -> pl.Series:
    """Each of ``subjects``' position in ``ids`` (null for one not there)."""
    return subjects.cast(_coding(ids), strict=False).to_physical()


@_keep_last
def _coding(ids: pl.DataFrame) -> pl.Enum:
    """The Enum of ``ids``' subjects, in their order. Kept: a judge call looks its
    subjects up hundreds of times in the same list (a year's load, 500 times), and
    building the Enum type each time was half of each lookup."""
    return pl.Enum(ids.get_column("subject_id"))


def _by_subject_and_time(both: pl.DataFrame) -> pl.DataFrame:
    """The level rows (each subject's seed, then its rows) in subject, time order.

    A batch's rows mostly come in time order within each subject already (VEE returns
    them so); then a stable sort on the subject's code alone keeps each seed (first in
    ``both``, and older than the subject's new rows) before them, and a look at each
    row against the one before confirms the order. A sort on three keys cost three
    times that."""
    by_subject = both.sort("sid", maintain_order=True)
    sid, ts = pl.col("sid"), pl.col("ts")
    # (no time is null: the live rows' never are, and seeds without one are left out)
    if not by_subject.select(((sid == sid.shift(1)) & (ts <= ts.shift(1))).any()).item():
        return by_subject
    return both.sort("sid", "ts", "seed", descending=[False, False, True])


def _levels(
    rows: pl.DataFrame,
    scalars: pl.DataFrame,
    cfg: AnomalyConfig,
    means: pl.DataFrame,
    ids: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """EWMA of observed and expected power per subject; drops and shifts that last.

    An upward shift is the ratio above ``shift_ratio``, or the excess above
    ``shift_excess`` x the subject's mean level (``means``): new load (a heater, grow
    lights) draws its own steady power on top of the home's pattern, so at the evening
    peak the ratio dips while the excess holds.
    """
    half_life = f"{round(cfg.level_half_life_h * 3600)}s"
    # a row number to join the results back on: cheaper than (subject_id, ts)
    rows = rows.with_row_index("_row")
    # (each filter here takes only the columns it keeps: the rows are wide)
    live = where(
        rows.select(
            "_row",
            "subject_id",
            pl.col("_sid").alias("sid"),
            "ts",
            "interval_s",
            obs=pl.when(pl.col("usable")).then(pl.col("value")).otherwise(pl.col("expected")),
            exp="expected",
            seed=pl.lit(False),
            _keep=pl.col("new") & pl.col("expected").is_not_null(),
        ),
        "_keep",
    )
    # the running levels of the subjects judged now (found by code: a join on the ids
    # hashed every live row's id again)
    # (a level kept without its time cannot be placed among the rows: no state is
    # written so, and :func:`levels.runs` takes every row's time as known)
    running = scalars.filter(pl.col("ewm_obs").is_not_null() & pl.col("last_ts").is_not_null())
    codes = _positions(running.get_column("subject_id"), ids).alias("sid")
    judged = codes.is_in(live.get_column("sid").unique().implode()).fill_null(False)
    seeds = where(running.with_columns(codes), judged)
    start = seeds.select(
        _row=pl.lit(None, pl.UInt32),
        subject_id="subject_id",
        sid=pl.col("sid"),
        ts="last_ts",
        interval_s=pl.lit(0, pl.Int32),
        obs="ewm_obs",
        exp="ewm_exp",
        seed=pl.lit(True),
        drop_since="drop_since",
        shift_since="shift_since",
        shift_until="shift_until",
    )
    both = pl.concat(
        [
            start,
            live.with_columns(
                drop_since=pl.lit(None, SCALAR_SCHEMA["drop_since"]),
                shift_since=pl.lit(None, SCALAR_SCHEMA["shift_since"]),
                shift_until=pl.lit(None, SCALAR_SCHEMA["shift_until"]),
            ),
        ],
        how="vertical_relaxed",
    )
    # The windows below partition by an integer code of the subject (``_sid``): hashing
    # the id strings for each of a dozen windows cost more than the windows themselves.
    both = _by_subject_and_time(both)
    both = both.with_columns(
        eo=pl.col("obs").ewm_mean_by("ts", half_life=half_life).over("sid"),
        ee=pl.col("exp").ewm_mean_by("ts", half_life=half_life).over("sid"),
    )
    both = _attach(both, means, ids, code="sid")
    both = levels.runs(both, cfg)
    both, last_drops = _weekly_drops(both, scalars, cfg, ids)
    real = where(
        columns(
            both,
            "_row",
            "subject_id",
            "sid",
            "eo",
            "ee",
            "drop_since",
            "shift_since",
            "shift_until",
            "ratio",
            "drop",
            "shift",
            "drop_start",
            "shift_start",
            "c_drop",
            "c_shift",
        ),
        ~both.get_column("seed"),
    )
    last_of_subject = (pl.col("sid") != pl.col("sid").shift(-1)).fill_null(True)
    ran = real.filter(last_of_subject).select(
        "subject_id",
        ewm_obs="eo",
        ewm_exp="ee",
        drop_since="drop_since",
        shift_since="shift_since",
        shift_until="shift_until",
    )
    # Every subject with new rows moves its last_ts on (so a re-delivery is not learnt
    # twice); subjects too young to judge keep their (empty) running levels.
    moved = (
        where(columns(rows, "subject_id", "ts", "new"), "new")
        .group_by("subject_id")
        .agg(last_ts=pl.col("ts").max())
        .join(without(scalars, "last_ts"), on="subject_id", how="left")
    )
    new_scalars = pl.concat(
        [
            moved.join(ran, on="subject_id", how="anti"),
            columns(
                moved, "subject_id", "last_ts", "last_value", "run_since", "peak_kw", "peak_days"
            ).join(ran, on="subject_id"),
        ],
        how="diagonal_relaxed",
    ).pipe(columns, *SCALAR_SCHEMA)
    new_scalars = (
        new_scalars.join(last_drops, on="subject_id", how="left")
        .with_columns(run_since=pl.coalesce("_last_drop", "run_since"))
        .pipe(columns, *SCALAR_SCHEMA)
    )
    flags = real.select(
        "ratio",
        "drop",
        "shift",
        "drop_start",
        "shift_start",
        in_drop="c_drop",
        in_shift="c_shift",
    )
    return _with(
        without(rows, "_row"), _scatter(flags, real.get_column("_row"), rows.height)
    ), new_scalars


def _scatter(part: pl.DataFrame, rows: pl.Series, height: int) -> list[pl.Series]:
    """``part``'s columns put at positions ``rows`` of ``height`` rows: a flag False
    elsewhere, any other value null. (Two scatters per column instead of a join on the
    row number, which hashed every row of the week again.)"""
    out = []
    for column in part.iter_columns():
        if column.dtype == pl.Boolean:
            base = filled(False, pl.Boolean, height)
        else:
            base = filled(None, column.dtype, height)
        out.append(base.scatter(rows, column).alias(column.name))
    return out
