"""VEE validation rules for meter readings: flag what is wrong, never change a value.

Every rule is a vectorised Polars pass over the whole frame (batch plus stored history),
sorted once by ``(meter_id, ts)``. Each sets its bit of :class:`~metrify.contracts.records.Quality`
and proposes a status; a row's status is the worst proposal (rejected > suspect > valid).
History rows (``_ctx``) take part in every window (spike baselines, flat-line runs, gaps
at the batch start, register continuity) so that judgement does not restart at each
batch, but they are returned exactly as they came in: stored history is never re-judged.

The rules, in the order :func:`validate` applies them:

1. clock: a ``ts`` beyond ``now`` + tolerance is rejected; one off its interval grid is
   suspect (``CLOCK``). The grid is UTC's or the meter's own clock's: a daily reading
   starts at local midnight (23:00 UTC in Amsterdam's winter), an hourly one in India
   at half past the UTC hour.
2. range: negative import or export, import above what the meter can physically pass in
   its interval, a power factor outside [-1, 1] are rejected; a voltage outside the
   statutory band is suspect, since the energy may still be right (``OUT_OF_RANGE``).
3. spike: import far above the meter's own recent level at that local hour (``SPIKE``);
   electricity meters only (:mod:`metrify.contracts.commodities` says why).
4. flat line / zero run: one value stuck for hours, or no consumption for days, the
   latter not on heating meters, whose summer is zeros (``FLAT_LINE``; a zero run under
   a climbing register also ``REGISTER_MISMATCH``).
5. gaps: missing intervals become gap rows (``MISSING``, values null) so that estimation
   and completeness queries can see them.
6. register: the cumulative register must advance by the interval's import
   (``REGISTER_MISMATCH``), except across a wrap of the register (``REGISTER_ROLLOVER``).
7. meter state: consumption on an inactive or removed meter is suspect (no bit).
8. bits that came in (a conflicting duplicate, a decoder's clock flag) make a row suspect.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce
from typing import Final

import polars as pl

from metrify.contracts.columns import filled
from metrify.contracts.commodities import commodities_with
from metrify.contracts.localtime import DAY_US, epoch_us, hour_of_day, local_us, utc_of_wall
from metrify.contracts.records import METER, TS, Commodity, Quality, Status
from metrify.settings.vee import VeeConfig

__all__ = ["sorted_by_meter_time", "validate"]

_US: Final = 1_000_000
#: 1.4826 x MAD estimates the standard deviation of normally distributed data.
_MAD_TO_SIGMA: Final = 1.4826
#: rated current x voltage is a single-phase power; allow 1 % for meter rounding.
_MAX_ENERGY_SLACK: Final = 1.01
#: an unknown register width is inferred only for registers of at least 5 digits.
_MIN_WRAP_KWH: Final = 1e4
#: input bits that mean "do not trust this value" on their own.
_SUSPECT_BITS: Final = int(
    Quality.MISSING
    | Quality.DUPLICATE
    | Quality.OUT_OF_RANGE
    | Quality.SPIKE
    | Quality.FLAT_LINE
    | Quality.REGISTER_MISMATCH
    | Quality.CLOCK
)
#: rows carrying these bits stay out of the spike baseline (their values are not real use).
_NOT_BASELINE: Final = int(
    Quality.MISSING | Quality.SPIKE | Quality.OUT_OF_RANGE | Quality.ESTIMATED | Quality.FLAT_LINE
)
_REQUIRED: Final = ("meter_id", "ts", "interval_s", "import_kwh", "quality", "_ctx")
_GAP_SOURCE: Final = "vee:gap"
_VALID, _SUSPECT, _REJECTED = 0, 1, 2
_STATUS_NAMES: Final = (Status.VALID.value, Status.SUSPECT.value, Status.REJECTED.value)
_INACTIVE: Final = ("inactive", "removed")
_ELECTRICITY: Final = Commodity.ELECTRICITY.value
_SPIKY: Final = commodities_with("spikes")
_ZERO_RUNS: Final = commodities_with("zero_runs")


# --------------------------------------------------------------------------- public API


def validate(
    frame: pl.DataFrame,
    meters: pl.DataFrame,
    cfg: VeeConfig,
    now: dt.datetime,
    baseline: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Flag a batch of readings and add gap rows; history rows come back unchanged.

    ``frame``: the reading contract columns plus ``quality`` (Int32, may carry bits
    already), ``source`` and ``_ctx`` (True for stored history loaded as context), at most
    one row per ``(meter_id, ts)``, in any order. ``meters``: the reference rows
    (``meter_id``, ``status``, ``max_kw``, ``rated_current_a``, ``register_digits``,
    ``timezone``, ``nominal_voltage_v``; missing meters or columns fall back to ``cfg``).
    ``baseline``: older stored rows of the same meters that only the spike rule's
    same-hour baseline can use (a lean context's near hours, see
    :mod:`metrify.quality.context`); they take part in no other rule and are not returned.

    Returns every input row plus new gap rows, sorted by ``(meter_id, ts)``, with the
    input columns and ``status``. Batch rows get ``quality`` = input bits | rule bits and
    ``status`` valid, suspect or rejected; context rows keep their values.
    """
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"validate needs columns {', '.join(missing)}")
    out = (
        frame
        if "status" in frame.columns
        else frame.with_columns(status=pl.lit(None, dtype=pl.String))
    )
    if out.schema["status"] == pl.Null:
        out = out.with_columns(pl.col("status").cast(pl.String))
    columns = out.columns
    if out.height == 0:
        return out
    now_us = epoch_us(now)

    # Meter ids as integer codes in id order: sorting on (code, ts) is much cheaper than on
    # strings, gives the output order, and the code is the meter's group number.
    ids = out.get_column("meter_id").drop_nulls().unique().sort()
    code = pl.col("meter_id").cast(pl.Enum(ids)).to_physical().cast(pl.Int64).fill_null(-1)
    df = _checked(sorted_by_meter_time(out.with_columns(_g=code)), meters, cfg, now_us, ids)
    df = df.with_columns(
        # the previous row of the same meter lies exactly one interval earlier
        _contig=(pl.col("_g") == pl.col("_g").shift(1))
        & (pl.col("_us") - pl.col("_us").shift(1) == pl.col("_iv")),
    )
    extra = None
    if baseline is not None and baseline.height:
        # the baseline's meters are the frame's: codes come from the same id list
        extra = _checked(
            baseline.with_columns(_g=code, _ctx=pl.lit(True)), meters, cfg, now_us, ids
        )
    # rule 3 judges only commodities with spikes (a heat meter has no kettle)
    df = df.with_columns(_spike=pl.lit(_spikes(df, cfg, extra)) & pl.col("_spiky"))
    df = _runs(df, cfg)
    df = _register(df, cfg)
    df = _shifts(df, cfg)
    df = _combine(df)
    gaps = _gaps(df, cfg, columns)
    if gaps.height == 0:
        return df.select(columns)
    # Both parts are in order; each gap row goes just before the reading that ends its
    # gap (row ``_anchor``), as its ``_nth`` row: one unique integer key, one cheap sort.
    per_gap = int(gaps.select(pl.col("_nth").max() + 1).item())
    main = df.select(
        *columns, _key=pl.int_range(pl.len(), dtype=pl.Int64) * (2 * per_gap) + per_gap
    )
    gaps = gaps.select(*columns, _key=pl.col("_anchor") * (2 * per_gap) + pl.col("_nth"))
    both = pl.concat([main, gaps], how="vertical")
    return _take(both, both.get_column("_key").arg_sort()).drop("_key")


def sorted_by_meter_time(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by (``_g``, ``ts``), through one Int64 key when it fits.

    A two-column sort goes through row encoding; packing the meter code and the time
    offset into one integer and gathering by its ``arg_sort`` is about three times
    faster, and this sort runs over the whole history window on every batch. Keys are
    unique per (meter, ts), so the order is the same either way.
    """
    groups, ts = pl.col("_g"), pl.col("ts")
    after = (groups > groups.shift(1)) | ((groups == groups.shift(1)) & (ts > ts.shift(1)))
    if df.select(after.fill_null(True).all()).item():  # in order already: a file's rows
        return df
    order = _group_time_order(df.get_column("_g"), df.get_column("ts").dt.epoch("us"))
    return df.sort("_g", "ts") if order is None else _take(df, order)


def _take(df: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """``df[rows]``, gathering only the columns that hold a value: a batch carries the
    contract's every field, most of them null throughout (a London household sends 4
    of 19), and gathering those nulls was most of a reorder's cost."""
    empty = [c.name for c in df.iter_columns() if c.null_count() == c.len()]
    if not empty:
        return df[rows]
    taken = df.drop(empty)[rows]
    return taken.with_columns(pl.lit(None, df.schema[name]).alias(name) for name in empty).select(
        df.columns
    )


def _group_time_order(groups: pl.Series, times: pl.Series) -> pl.Series | None:
    """The row order by (``groups``, ``times``), both integer columns without nulls,
    through one packed Int64 key; None when the key would not fit in 62 bits."""
    low, high = times.min(), times.max()
    first, last = groups.min(), groups.max()
    bounds = (low, high, first, last)
    if not all(isinstance(b, int) for b in bounds):
        return None
    assert isinstance(low, int) and isinstance(high, int)
    assert isinstance(first, int) and isinstance(last, int)
    span = high - low + 1
    if (last - first + 1) * span >= 2**62:
        return None
    return ((groups - first) * span + (times - low)).arg_sort()


# --------------------------------------------------------------------------- helpers


def _with_meter_limits(
    frame: pl.DataFrame, meters: pl.DataFrame, cfg: VeeConfig, ids: pl.Series
) -> pl.DataFrame:
    """Attach each row's meter limits (``_max_kwh``, ``_vnom``, ``_digits``, ``_mstatus``, ``_tz``).

    A meter's own limits beat ``cfg``. The physical maximum power is ``max_kw`` if set,
    else ``rated_current_a`` x nominal voltage as a single-phase rating (a three-phase
    meter should carry ``max_kw``; without it the check is loose by 3x, never too strict),
    else no check. Meters absent from the reference table get the defaults.
    """
    names = ["meter_id", "status", "max_kw", "rated_current_a", "register_digits", "timezone"]
    wanted = {c: METER.schema[c] for c in [*names, "nominal_voltage_v", "commodity"]}
    ref = meters.select(
        pl.col(name).cast(dtype)
        if name in meters.columns
        else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in wanted.items()
    ).unique("meter_id", keep="last")
    vnom = pl.col("nominal_voltage_v").fill_null(cfg.nominal_voltage_v)
    max_kw = pl.coalesce(pl.col("max_kw"), pl.col("rated_current_a") * vnom / 1000.0)
    ref = ref.select(
        "meter_id",
        _max_kw=max_kw,
        _vnom=vnom,
        _digits=pl.col("register_digits"),
        _mstatus=pl.col("status"),
        _tz=pl.col("timezone"),
        # what the meter's commodity allows (contracts.commodities): meters without
        # reference data are judged as electricity meters
        _spiky=pl.col("commodity").fill_null(_ELECTRICITY).is_in(_SPIKY),
        _zeroruns=pl.col("commodity").fill_null(_ELECTRICITY).is_in(_ZERO_RUNS),
    )
    # Found by the meter's code (``_g``, its position in ``ids``), as a left join on the
    # id would: hashing every row's id string again cost more than the rules after it.
    code = ref.get_column("meter_id").cast(pl.Enum(ids), strict=False).to_physical()
    known = code.is_not_null()
    rank = pl.int_range(ref.height, dtype=pl.UInt32, eager=True).filter(known)
    slot = filled(None, pl.UInt32, ids.len()).scatter(code.filter(known), rank)
    g = frame.get_column("_g")  # (-1: no meter id, no limits)
    at = (
        slot.gather(pl.select(pl.when(g >= 0).then(g)).to_series())
        if ids.len()
        else filled(None, pl.UInt32, frame.height)
    )
    joined = frame.hstack([c.gather(at) for c in ref.iter_columns() if c.name != "meter_id"])
    return joined.with_columns(
        _max_kwh=pl.col("_max_kw") * pl.col("interval_s") / 3600.0 * _MAX_ENERGY_SLACK,
        _vnom=pl.col("_vnom").fill_null(cfg.nominal_voltage_v),
        _tz=pl.col("_tz").fill_null("UTC"),
        _spiky=pl.col("_spiky").fill_null(True),
        _zeroruns=pl.col("_zeroruns").fill_null(True),
    ).drop("_max_kw")


def _clock_and_range(df: pl.DataFrame, cfg: VeeConfig, now_us: int) -> pl.DataFrame:
    """Rules 1 and 2: future and misaligned timestamps; physically impossible values."""
    imp = pl.col("import_kwh")
    band = cfg.voltage_band
    volt = pl.col("voltage_v")
    return df.with_columns(
        _future=pl.col("_us") > now_us + cfg.future_tolerance_s * _US,
        _misaligned=(pl.col("_iv") <= 0)
        | ((pl.col("_us") % pl.col("_iv") != 0) & (pl.col("_lus") % pl.col("_iv") != 0)).fill_null(
            True
        ),
        _impossible=(
            (imp < 0).fill_null(False)
            | (pl.col("export_kwh") < 0).fill_null(False)
            | (imp > pl.col("_max_kwh")).fill_null(False)
            | (pl.col("power_factor").abs() > 1.0).fill_null(False)
        ),
        _volt_off=(
            (volt < pl.col("_vnom") * (1.0 - band)) | (volt > pl.col("_vnom") * (1.0 + band))
        ).fill_null(False),
    )


def _checked(
    df: pl.DataFrame, meters: pl.DataFrame, cfg: VeeConfig, now_us: int, ids: pl.Series
) -> pl.DataFrame:
    """``df`` with its meters' limits, times as integers, rules 1 and 2 and the local
    hour: what every row needs before the windowed rules, in any order. ``_g``: each
    row's meter's position in ``ids`` (-1 for none)."""
    df = _with_meter_limits(df, meters, cfg, ids)
    df = df.with_columns(
        _ctx=pl.col("_ctx").fill_null(False),
        _us=pl.col("ts").dt.epoch("us"),
        _lus=_local(df, meters),
        _iv=pl.col("interval_s").cast(pl.Int64) * _US,
    )
    df = _clock_and_range(df, cfg, now_us)
    return df.with_columns(_hour=hour_of_day(pl.col("_lus")))


def _local(df: pl.DataFrame, meters: pl.DataFrame) -> pl.Expr:
    """Each row's time on its meter's own clock (:func:`local_us`): consumption follows
    the local clock, and so do the starts of local days.

    The zones are those of the reference rows (a fleet has a handful; rows of meters
    without one are in UTC, as ``_tz`` says); unknown zones count as UTC.
    """
    names = ["UTC"]
    if "timezone" in meters.columns:
        names += meters.get_column("timezone").drop_nulls().unique().to_list()
    return local_us(df, "_tz", names)


def _spikes(df: pl.DataFrame, cfg: VeeConfig, extra: pl.DataFrame | None = None) -> pl.Series:
    """Rule 3: import far above the meter's own recent level at the same local hour.

    A batch reading ``v`` is a spike when all of these hold:

    * its baseline has at least ``spike_min_samples`` readings: the meter's readings in the
      same local hour over the previous ``spike_window_days`` (a rolling window, so a
      year-long file is judged against its own recent month, history rows included, rows
      already known to be bad left out);
    * ``v > median + spike_mads x max(1.4826 x MAD, spike_scale_floor_kwh)``, the robust
      z-score against that window;
    * ``v - median > spike_min_kw x interval`` (in hours): material, not just unusual;
    * ``v > spike_peak_factor x`` the highest usable reading of that window: beyond
      anything the meter itself has recorded at that hour lately. A household's cooking
      half hour stands 8 MADs above its hour's median most evenings (a median of an
      hour that is often quiet), but it recurs, so the window's maximum holds one like
      it; a glitch (a stray pulse train, a 50x value) stands far above them all;
    * it is isolated: ``v`` exceeds the upper median of its ``spike_max_intervals``
      neighbours either side by ``spike_min_kw x interval`` and by ``spike_local_factor``
      times. The hour baseline alone cannot tell a spike from a change of regime (a shop
      reopening after a closed week, Monday after a holiday, a new heater); a meter
      glitch or a stray pulse train is short and stands above its own neighbours.
      Without neighbours (the series breaks on both sides) this check is skipped.

    Speed: all (meter, hour) series are laid end to end on one integer axis, each shifted
    past the previous by more than the window, so a single ungrouped
    ``rolling_median_by`` computes every group's baseline at once. The MAD (a median of
    deviations from a per-row median, which no rolling kernel offers) is computed exactly
    but only for the few rows that pass every other test, joined to their own window.
    ``extra``: history rows that count in the baseline only (prepared as ``df``).
    """
    window_s = cfg.spike_window_days * 86_400
    sub = _spike_frame(df)
    if extra is not None:
        sub = pl.concat([sub, _spike_frame(extra, first=df.height)])
    # Only (meter, hour) series holding a batch row are judged; the others are history
    # alone (most of a small stream batch's context) and cannot change a verdict.
    judged = sub.filter(~pl.col("_ctx")).get_column("_k").unique()
    if judged.len() < sub.height // 2:
        sub = sub.filter(pl.col("_k").is_in(judged.implode()))
    order = _group_time_order(sub.get_column("_k"), sub.get_column("_s"))
    sub = sub.sort("_k", "_s") if order is None else sub[order]
    first = pl.col("_k") != pl.col("_k").shift(1)
    last = pl.col("_k") != pl.col("_k").shift(-1)
    sub = sub.with_columns(
        _lo=pl.when(first.fill_null(True)).then("_s").forward_fill(),
        _hi=pl.when(last.fill_null(True)).then("_s").backward_fill(),
    ).with_columns(_span=pl.col("_hi") - pl.col("_lo") + window_s + 1)
    offset = (
        pl.when(first.fill_null(True)).then(pl.col("_span").shift(1)).otherwise(0).fill_null(0)
    ).cum_sum()
    sub = sub.with_columns(_x=(pl.col("_s") - pl.col("_lo") + offset)).set_sorted("_x")
    period = f"{window_s}i"
    # The window's median is exact but dear; its minimum is cheap and bounds it from
    # below, so a row can only pass ``v - median > threshold`` if it passes
    # ``v - minimum > threshold``. Medians are computed for those few rows only.
    sub = sub.with_columns(
        _min=pl.col("_b").rolling_min_by("_x", period, closed="left"),
        _max=pl.col("_b").rolling_max_by("_x", period, closed="right"),
        _n=pl.col("_b").is_not_null().cast(pl.Int32).rolling_sum_by("_x", period, closed="left"),
    )
    history = sub.filter(pl.col("_b").is_not_null()).select("_k", _hx="_x", _hb="_b")
    floor = cfg.spike_scale_floor_kwh
    min_excess = cfg.spike_min_kw * pl.col("_ih")
    maybe = sub.filter(
        ~pl.col("_ctx")
        & (pl.col("_n") >= cfg.spike_min_samples)
        & (pl.col("_v") - pl.col("_min") > min_excess)
        & (pl.col("_v") - pl.col("_min") > cfg.spike_mads * floor)
    )
    if cfg.spike_peak_factor > 0 and maybe.height:
        maybe = _above_own_peaks(maybe, sub, cfg)
    medians = (
        maybe.select("_row", "_k", "_x")
        .join(history, on="_k", how="inner")
        .filter((pl.col("_hx") < pl.col("_x")) & (pl.col("_hx") >= pl.col("_x") - window_s))
        .group_by("_row")
        .agg(_med=pl.col("_hb").median())
    )
    excess = pl.col("_v") - pl.col("_med")
    cand = maybe.join(medians, on="_row", how="inner").filter(
        (excess > min_excess) & (excess > cfg.spike_mads * floor)
    )
    if cand.height == 0:  # the usual batch: nothing stands out from its hour's median
        return _none(df.height, "_spike")
    near = _neighbours(df, cfg.spike_max_intervals, cand.get_column("_row"))
    cand = pl.concat([cand, near], how="horizontal")
    cand = (
        cand.with_columns(_local=_local_level(cfg.spike_max_intervals))
        .filter(
            pl.col("_local").is_null()
            | (
                (pl.col("_v") - pl.col("_local") > min_excess)
                & (pl.col("_v") > pl.col("_local") * cfg.spike_local_factor)
            )
        )
        .select("_row", "_k", "_x", "_v", "_med")
    )
    if cand.height == 0:
        return _none(df.height, "_spike")
    mad = (
        cand.join(history, on="_k", how="inner")
        .filter((pl.col("_hx") < pl.col("_x")) & (pl.col("_hx") >= pl.col("_x") - window_s))
        .group_by("_row")
        .agg(
            pl.col("_v").first(),
            pl.col("_med").first(),
            _mad=(pl.col("_hb") - pl.col("_med")).abs().median(),
        )
    )
    scale = pl.max_horizontal(pl.col("_mad") * _MAD_TO_SIGMA, pl.lit(floor))
    rows = mad.filter(pl.col("_v") > pl.col("_med") + cfg.spike_mads * scale).get_column("_row")
    return _none(df.height, "_spike").scatter(rows, True)


def _above_own_peaks(maybe: pl.DataFrame, sub: pl.DataFrame, cfg: VeeConfig) -> pl.DataFrame:
    """The rows of ``maybe`` above ``spike_peak_factor`` x the highest usable reading of
    their (meter, local hour) series in the window, leaving out the readings just before
    them (``spike_max_intervals`` intervals: the spike's own first half, an hour's
    earlier quarters), which would let a two-interval spike hide itself.

    ``sub`` carries ``_max``, the rolling maximum of the window ending at (and holding)
    each row; a row's peak is that of the last usable reading before its near past, found
    by one as-of join over the few candidates.
    """
    near = (pl.col("_ih") * 3600.0 * max(cfg.spike_max_intervals, 1)).cast(pl.Int64)
    peaks = sub.filter(pl.col("_b").is_not_null()).select("_k", _px="_x", _peak="_max")
    found = (
        maybe.with_columns(_q=pl.col("_x") - near)
        .sort("_q")
        .join_asof(
            peaks.sort("_px"),
            left_on="_q",
            right_on="_px",
            by="_k",
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,  # both on the one sorted axis of all series
        )
    )
    window_s = cfg.spike_window_days * 86_400
    recent = pl.col("_px") >= pl.col("_x") - window_s
    above = pl.col("_v") > cfg.spike_peak_factor * pl.col("_peak")
    return found.filter((recent & above) | ~recent.fill_null(False)).drop("_q", "_px", "_peak")


def _none(n: int, name: str) -> pl.Series:
    """``n`` times False: a rule's column where it found nothing."""
    return filled(False, pl.Boolean, n).alias(name)


def _spike_frame(df: pl.DataFrame, first: int = 0) -> pl.DataFrame:
    """The columns the spike rule windows over, in ``df`` order (sorted by meter, time).

    ``_b`` is the baseline value: null for rows known to be bad (flagged spike, out of
    range, missing, estimated or stuck on input, or impossible now), which therefore
    neither count as history nor move the median.
    """
    imp = pl.col("import_kwh")
    usable = (
        imp.is_not_null()
        & (imp >= 0)
        & ((pl.col("quality") & _NOT_BASELINE) == 0)
        & ~pl.col("_impossible")
        & ~pl.col("_future")
    )
    return df.select(
        pl.int_range(first, first + pl.len(), dtype=pl.Int64).alias("_row"),
        (pl.col("_us") // _US).alias("_s"),
        (pl.col("_g") * 24 + pl.col("_hour")).alias("_k"),
        imp.alias("_v"),
        pl.when(usable).then(imp).alias("_b"),
        "_ctx",
        (pl.col("interval_s").cast(pl.Float64) / 3600.0).alias("_ih"),
    )


def _neighbours(df: pl.DataFrame, width: int, rows: pl.Series) -> pl.DataFrame:
    """For the given rows of ``df``: the imports up to ``width`` readings either side
    (``_nb0``, ``_nb1``, ...), null past a break in the series (gap, other meter)."""
    imp = pl.col("import_kwh")
    contig = pl.col("_contig").fill_null(False)
    columns: list[pl.Expr] = []
    back = forward = pl.lit(True)
    for k in range(1, width + 1):
        back = back & contig.shift(k - 1, fill_value=False)
        forward = forward & contig.shift(-k, fill_value=False)
        columns.append(pl.when(back).then(imp.shift(k)).alias(f"_nb{2 * k - 2}"))
        columns.append(pl.when(forward).then(imp.shift(-k)).alias(f"_nb{2 * k - 1}"))
    if not columns:
        return pl.DataFrame(height=rows.len())
    return df.select(columns)[rows]


def _local_level(width: int) -> pl.Expr:
    """The upper median of the ``2 * width`` neighbouring readings (those that exist).

    A spike of up to ``width`` intervals leaves at most ``width - 1`` high neighbours, so
    the upper median is still an ordinary reading; a level change (an office opening,
    a heater coming on) lifts at least half of them and so the reading is not isolated.
    Null when no neighbour exists.
    """
    if width == 0:
        return pl.lit(None, dtype=pl.Float64)
    values = pl.concat_list([f"_nb{i}" for i in range(2 * width)]).list.drop_nulls()
    ordered = values.list.sort()
    return ordered.list.get(ordered.list.len() // 2, null_on_oob=True)


#: a non-zero value is stuck only when this many contiguous readings repeat it: one
#: daily or 12-hourly reading is longer than ``flat_line_hours`` alone, and every
#: reading of a daily meter (gas, a register read once a day) was flagged a flat line
MIN_STUCK_READINGS: Final = 3


def _runs(df: pl.DataFrame, cfg: VeeConfig) -> pl.DataFrame:
    """Rule 4: one value repeated for hours (stuck), or zero for days (dead or vacant).

    Runs are maximal sequences of contiguous readings (each exactly one interval after the
    last) with the same import (a stuck one of at least :data:`MIN_STUCK_READINGS`);
    history rows are part of them, so a run that began before the batch is measured from
    its true start. Run length is rows x interval. A zero run over which the register
    still climbs is a dead interval channel on a live meter (the register saw use the
    intervals did not): ``REGISTER_MISMATCH`` as well; under a flat or absent register it
    is just an empty property (``FLAT_LINE`` alone).
    """
    imp = pl.col("import_kwh")
    new_run = (
        ~pl.col("_contig").fill_null(False) | (imp != imp.shift(1)).fill_null(True) | imp.is_null()
    )
    idx = pl.int_range(pl.len(), dtype=pl.Int64)
    df = df.with_columns(_run=new_run.cum_sum())
    df = df.with_columns(
        _rs=pl.when(pl.col("_run") != pl.col("_run").shift(1).fill_null(-1))
        .then(idx)
        .forward_fill(),
        _re=pl.when(pl.col("_run") != pl.col("_run").shift(-1).fill_null(-1))
        .then(idx)
        .backward_fill(),
    )
    reads = pl.col("_re") - pl.col("_rs") + 1
    run_s = reads * pl.col("interval_s").cast(pl.Int64)
    df = df.with_columns(
        _flat=imp.is_not_null()
        & (
            ((imp != 0) & (run_s > cfg.flat_line_hours * 3600) & (reads >= MIN_STUCK_READINGS))
            | ((imp == 0) & (run_s > cfg.zero_run_hours * 3600) & pl.col("_zeroruns"))
        ),
    )
    zero_runs = df.filter(pl.col("_flat") & (imp == 0))
    if zero_runs.height == 0:
        return df.with_columns(_dead=pl.lit(False))
    dead = (
        zero_runs.group_by("_run")
        .agg(_climb=pl.col("register_kwh").max() - pl.col("register_kwh").min())
        .filter(pl.col("_climb") > cfg.register_tolerance_kwh)
        .get_column("_run")
    )
    return df.with_columns(
        _dead=pl.col("_flat") & (imp == 0) & pl.col("_run").is_in(dead.implode())
    )


def _register(df: pl.DataFrame, cfg: VeeConfig) -> pl.DataFrame:
    """Rule 6: the register must advance by the interval's import, except across a wrap.

    Judged only where the previous reading is exactly one interval earlier and both carry a
    register. A negative advance that matches the import once ``10**register_digits`` is
    added is a rollover (valid). With the width unknown, a wrap is inferred when the
    previous register sat within 1 % below a power of ten of at least 10**4 and the new
    one is below 1 % of it: a meter does not lose 99 % of its register any other way.
    """
    reg = pl.col("register_kwh")
    prev = reg.shift(1)
    imp = pl.col("import_kwh")
    delta = reg - prev
    tol = pl.max_horizontal(
        pl.lit(cfg.register_tolerance_kwh), cfg.register_tolerance_share * imp.abs()
    )
    judged = (
        pl.col("_contig").fill_null(False)
        & reg.is_not_null()
        & prev.is_not_null()
        & imp.is_not_null()
    )
    matches = (delta - imp).abs() <= tol
    unmatched = (judged & ~matches).fill_null(False)
    df = df.with_columns(
        _prev_reg=prev, _unmatched=unmatched, _ri=pl.int_range(pl.len(), dtype=pl.Int64)
    )
    if not df.get_column("_unmatched").any():
        # The usual batch: every judged register matches. The wrap arithmetic below
        # (powers and logarithms over every row) is left for the rows that need it.
        return df.with_columns(_rollover=pl.lit(False), _mismatch=pl.col("_dead")).drop(
            "_prev_reg", "_unmatched", "_ri"
        )
    prev = pl.col("_prev_reg")
    delta = reg - prev
    known_wrap = pl.lit(10.0).pow(pl.col("_digits").cast(pl.Float64))
    inferred_wrap = pl.lit(10.0).pow(prev.clip(lower_bound=1.0).log10().ceil())
    inferred_ok = (
        (inferred_wrap >= _MIN_WRAP_KWH)
        & (inferred_wrap - prev <= 0.01 * inferred_wrap)
        & (reg < 0.01 * inferred_wrap)
    )
    wrap = (
        pl.when(pl.col("_digits").is_not_null())
        .then(known_wrap)
        .when(inferred_ok)
        .then(inferred_wrap)
    )
    rolled = (delta < 0) & ((delta + wrap - imp).abs() <= tol).fill_null(False)
    # only the unmatched rows are judged further (a filtered slice, then put back)
    odd = df.filter(pl.col("_unmatched")).select("_ri", _r=rolled.fill_null(False))
    rolled_rows = odd.filter(pl.col("_r")).get_column("_ri").implode()
    other_rows = odd.filter(~pl.col("_r")).get_column("_ri").implode()
    return df.with_columns(
        _rollover=pl.col("_ri").is_in(rolled_rows),
        _mismatch=pl.col("_ri").is_in(other_rows) | pl.col("_dead"),
    ).drop("_prev_reg", "_unmatched", "_ri")


def _shifts(df: pl.DataFrame, cfg: VeeConfig) -> pl.DataFrame:
    """Whole-interval clock jumps, evidenced by the register and the duplicates they cause.

    A meter whose clock jumps by whole intervals sends readings that stay on the grid, so
    alignment cannot see them. Two traces give them away: a hole after which the register
    advanced by no more than the next reading's own import (no energy flowed while the
    readings were "missing": they were not lost, they were relabelled), and, within
    ``shift_window_hours``, a run of conflicting duplicates where the relabelled readings
    land on real ones. A forward jump lies between the hole and the duplicates after it;
    a backward jump between the duplicates before the hole and the hole. Only with both
    traces are the readings in between flagged ``CLOCK`` (suspect); a hole alone is left
    to the gap rule, since a vacant home also shows a flat register.
    """
    n = df.height
    shifted = _none(n, "_shifted")
    if "register_kwh" not in df.columns or not n:
        return df.with_columns(shifted)
    reg, imp = pl.col("register_kwh"), pl.col("import_kwh")
    same = pl.col("_g") == pl.col("_g").shift(1)
    step = pl.col("_us") - pl.col("_us").shift(1)
    holes = step / pl.col("_iv") - 1
    tol = pl.max_horizontal(
        pl.lit(cfg.register_tolerance_kwh), cfg.register_tolerance_share * imp.abs()
    )
    hole = (same & ~pl.col("_ctx") & (step > pl.col("_iv"))).fill_null(False)
    if not df.select(hole.any()).item():
        # The usual batch: no batch row follows a hole, so there is no evidence to weigh
        # (the per-meter median below is a window over every row).
        return df.with_columns(shifted)
    typical = imp.median().over("_g")
    evidence = (
        hole & ((reg - reg.shift(1) - imp).abs() <= tol) & (typical * holes > 10 * tol)
    ).fill_null(False)
    marks = df.select(
        _ev=evidence, _dup=(pl.col("quality").fill_null(0) & int(Quality.DUPLICATE)) != 0
    )
    points = marks.get_column("_ev").arg_true().to_list()
    if not points:
        return df.with_columns(shifted)
    group = df.get_column("_g").to_numpy()
    stamp = df.get_column("_us").to_numpy()
    dup = marks.get_column("_dup").to_numpy()
    window = int(cfg.shift_window_hours * 3600 * _US)
    flags = shifted.to_numpy().copy()
    for i in points:  # evidence points are rare: a loop over them is cheap
        g = group[i]
        j = i
        while j < n and group[j] == g and stamp[j] - stamp[i] <= window and not dup[j]:
            j += 1
        if j < n and group[j] == g and dup[j] and stamp[j] - stamp[i] <= window:
            while j + 1 < n and group[j + 1] == g and dup[j + 1]:
                j += 1
            flags[i : j + 1] = True
            continue
        k = i - 1
        while k >= 0 and group[k] == g and stamp[i] - stamp[k] <= window and not dup[k]:
            k -= 1
        if k >= 0 and group[k] == g and dup[k] and stamp[i] - stamp[k] <= window:
            while k - 1 >= 0 and group[k - 1] == g and dup[k - 1]:
                k -= 1
            flags[k:i] = True
    return df.with_columns(pl.Series("_shifted", flags) & ~pl.col("_ctx"))


def _utc_starts(gaps: pl.DataFrame) -> pl.DataFrame:
    """Gap rows with their ``ts`` in UTC: ``_t`` is UTC already, or, where the gap was
    counted on the meter's clock (``_on_local``), a wall time of its zone ``_tz``. A wall
    time the clock skips (a zone that springs forward at midnight) gets no row; one it
    repeats is taken the first time."""
    plain = pl.col("_t").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if not gaps.get_column("_on_local").any():
        return gaps.with_columns(ts=plain.cast(TS))
    utc = gaps.filter(~pl.col("_on_local")).with_columns(ts=plain.cast(TS))
    parts = [utc]
    for (zone,), part in gaps.filter(pl.col("_on_local")).group_by("_tz"):
        start = utc_of_wall(part.get_column("_t"), str(zone))
        parts.append(
            part.with_columns(
                ts=start.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(TS)
            ).filter(pl.col("ts").is_not_null())
        )
    return pl.concat(parts).sort("_anchor", "_t")


def _combine(df: pl.DataFrame) -> pl.DataFrame:
    """Fold the rule columns into ``quality`` and ``status``; context rows keep theirs."""
    q = Quality
    bits: list[tuple[str | pl.Expr, int]] = [
        (pl.col("_future") | pl.col("_misaligned") | pl.col("_shifted"), int(q.CLOCK)),
        (pl.col("_impossible") | pl.col("_volt_off"), int(q.OUT_OF_RANGE)),
        ("_spike", int(q.SPIKE)),
        ("_flat", int(q.FLAT_LINE)),
        ("_mismatch", int(q.REGISTER_MISMATCH)),
        ("_rollover", int(q.REGISTER_ROLLOVER)),
        (pl.col("import_kwh").is_null(), int(q.MISSING)),
    ]
    rule_bits = reduce(
        lambda acc, item: acc | pl.when(item[0]).then(pl.lit(item[1], pl.Int32)).otherwise(0),
        bits,
        pl.lit(0, pl.Int32),
    )
    quality = (pl.col("quality").fill_null(0).cast(pl.Int32) | rule_bits).cast(pl.Int32)
    rejected = pl.col("_future") | pl.col("_impossible")
    suspect = ((quality & _SUSPECT_BITS) != 0) | (
        pl.col("_mstatus").is_in(_INACTIVE) & (pl.col("import_kwh") > 0)
    ).fill_null(False)
    severity = pl.when(rejected).then(_REJECTED).when(suspect).then(_SUSPECT).otherwise(_VALID)
    status = (
        pl.when(severity == _REJECTED)
        .then(pl.lit(_STATUS_NAMES[_REJECTED]))
        .when(severity == _SUSPECT)
        .then(pl.lit(_STATUS_NAMES[_SUSPECT]))
        .otherwise(pl.lit(_STATUS_NAMES[_VALID]))
    )
    ctx = pl.col("_ctx")
    return df.with_columns(
        quality=pl.when(ctx).then(pl.col("quality")).otherwise(quality).cast(pl.Int32),
        status=pl.when(ctx).then(pl.col("status")).otherwise(status),
    )


def _gaps(df: pl.DataFrame, cfg: VeeConfig, columns: list[str]) -> pl.DataFrame:
    """Rule 5: one null row per interval that no reading covers, between known readings.

    Every row (history included, so a gap straddling the batch start is found) anchors;
    rows in the future do not, so no gaps are invented up to a clock-jumped reading. A
    misaligned reading occupies the grid slot it starts in (it is flagged CLOCK; a gap
    row beside it would count its energy twice). Gaps lying wholly in history are not
    re-judged. Gap rows take the earlier reading's interval. A gap longer than
    ``max_gap_rows_days`` gets no rows at all: that is a meter off the network or a clock
    jump, and millions of null rows would help nobody.

    Gap rows lie strictly between two consecutive anchors of one meter and every row that
    is not an anchor lies after all of them (the future), so no gap row can take an
    existing key. Each carries the row number of the reading it precedes (``_anchor``)
    and its place in the gap (``_nth``): :func:`validate` merges them in with one integer
    sort instead of re-sorting the whole frame on strings.
    """
    max_us = int(cfg.max_gap_rows_days * DAY_US)
    iv = pl.when(pl.col("_iv") > 0).then(pl.col("_iv"))  # no grid without an interval
    anchors = df.with_columns(_i=pl.int_range(pl.len(), dtype=pl.Int64)).filter(~pl.col("_future"))
    # A meter whose readings lie on its own clock's grid and not on UTC's (local days,
    # India's hours) has its gaps on that grid: counted on the local clock, each gap
    # row's local start then turned back into UTC (a 23- or 25-hour day included).
    local = ((pl.col("_lus") % iv == 0) & (pl.col("_us") % iv != 0)).fill_null(False)
    anchors = anchors.select(
        "meter_id",
        "_g",
        "_ctx",
        "_i",
        "_tz",
        _local=local,
        _uslot=pl.col("_us") - (pl.col("_us") % iv).fill_null(0),
        _lslot=pl.col("_lus") - (pl.col("_lus") % iv).fill_null(0),
        _iv=iv,
        _interval="interval_s",
    )
    # a gap is counted on the clock of the reading before it
    on_local = pl.col("_local").shift(1).fill_null(False)
    found = anchors.with_columns(
        _slot=pl.when(on_local).then("_lslot").otherwise("_uslot"),
        _start=pl.when(on_local)
        .then(pl.col("_lslot").shift(1))
        .otherwise(pl.col("_uslot").shift(1))
        + pl.col("_iv").shift(1),
        _step=pl.col("_iv").shift(1),
        _pint=pl.col("_interval").shift(1),
        _pctx=pl.col("_ctx").shift(1),
        _same=pl.col("_g") == pl.col("_g").shift(1),
        _on_local=on_local,
    ).filter(
        pl.col("_same")
        & (pl.col("_slot") > pl.col("_start"))
        & (pl.col("_slot") - pl.col("_start") <= max_us)
        & ~(pl.col("_ctx") & pl.col("_pctx"))
    )
    schema = df.schema
    if found.height == 0:
        return pl.DataFrame(
            schema={**{c: schema[c] for c in columns}, "_anchor": pl.Int64(), "_nth": pl.Int64()}
        )
    gaps = found.select(
        "meter_id",
        "_start",
        "_step",
        "_tz",
        "_on_local",
        pl.int_ranges("_start", "_slot", "_step").alias("_t"),
        pl.col("_pint").alias("interval_s"),
        pl.col("_i").alias("_anchor"),
    ).explode("_t")
    gaps = _utc_starts(gaps).with_columns(
        _nth=(pl.col("_t") - pl.col("_start")) // pl.col("_step"),
    )
    fill = {
        "quality": pl.lit(int(Quality.MISSING), pl.Int32),
        "status": pl.lit(Status.SUSPECT.value),
        "source": pl.lit(_GAP_SOURCE),
        "_ctx": pl.lit(False),
    }
    return gaps.select(
        *(
            (
                pl.col(c)
                if c in ("meter_id", "ts", "interval_s")
                else fill.get(c, pl.lit(None)).alias(c)
            ).cast(schema[c])
            for c in columns
        ),
        "_anchor",
        "_nth",
    )
