"""Estimation of gap rows: linear for short gaps, like-day profiles for long ones.

Expected values are computed here independently (plain numpy on slot indices), never by
calling the code under test's helpers.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from metrify.contracts.records import READING, Quality, Status
from metrify.quality.estimate import SOURCE_LINEAR, SOURCE_PROFILE, estimate
from metrify.settings.vee import VeeConfig

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # a Monday
HH = 1800
DAY = 48
WEEK = 7 * DAY
MISSING = int(Quality.MISSING)
ESTIMATED = int(Quality.ESTIMATED)


def readings(
    values: list[float | None] | np.ndarray,
    *,
    meter: str = "m1",
    start: dt.datetime = T0,
    registers: list[float | None] | np.ndarray | None = None,
    quality: dict[int, int] | None = None,
    status: dict[int, str] | None = None,
    ctx: bool | list[bool] = False,
) -> pl.DataFrame:
    """Half-hourly rows; None values become gap rows as validation makes them."""
    vals = [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values
    ]
    n = len(vals)
    q = [MISSING if v is None else 0 for v in vals]
    st = [Status.SUSPECT.value if v is None else Status.VALID.value for v in vals]
    for i, bits in (quality or {}).items():
        q[i] = bits
    for i, s in (status or {}).items():
        st[i] = s
    frame = pl.DataFrame(
        {
            "meter_id": [meter] * n,
            "ts": [start + dt.timedelta(seconds=HH * i) for i in range(n)],
            "interval_s": [HH] * n,
            "import_kwh": vals,
            "register_kwh": list(registers) if registers is not None else [None] * n,
            "quality": q,
            "status": st,
            "source": ["vee:gap" if v is None else "file" for v in vals],
            "_ctx": ctx if isinstance(ctx, list) else [ctx] * n,
        },
        schema_overrides={
            "ts": READING.schema["ts"],
            "interval_s": pl.Int32,
            "import_kwh": pl.Float64,
            "register_kwh": pl.Float64,
            "quality": pl.Int32,
        },
    )
    for name, dtype in READING.schema.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(*READING.schema, "quality", "status", "source", "_ctx")


def values(frame: pl.DataFrame) -> list[float | None]:
    return frame.get_column("import_kwh").to_list()


def weekly(weeks: int, *, noise: float = 0.0, seed: int = 1) -> np.ndarray:
    """A household-like week: night base load, weekday evening peak, weekend midday peak."""
    i = np.arange(weeks * WEEK)
    slot, day = i % DAY, (i // DAY) % 7
    weekend = day >= 5
    v = 0.15 + 0.05 * day + np.where(weekend, 0.6 * ((slot >= 20) & (slot < 30)), 0.0)
    v = v + np.where(~weekend, 0.9 * ((slot >= 34) & (slot < 42)), 0.0)
    if noise:
        v = v + np.random.default_rng(seed).uniform(0, noise, v.size)
    return v


def reference_profile(v: np.ndarray, idx: np.ndarray, weeks: int = 4) -> np.ndarray:
    """The documented like-day profile, straight from the definition."""
    out = []
    for i in idx:
        weekend = (i // DAY) % 7 >= 5
        same_weekday = [v[i - WEEK * k] for k in range(1, weeks + 1)]
        same_kind = [
            v[i - DAY * d]
            for d in range(1, 7 * weeks + 1)
            if (((i - DAY * d) // DAY) % 7 >= 5) == weekend
        ]
        last_week = [v[i - DAY * d] for d in range(1, 8)]
        out.append(np.mean([np.mean(same_weekday), np.mean(same_kind), np.mean(last_week)]))
    return np.array(out)


# --- linear -------------------------------------------------------------------------------


def test_linear_interpolation_is_exact_and_marked() -> None:
    frame = readings([1.0, None, None, None, 2.0, 3.0])
    out = estimate(frame, VeeConfig())
    assert values(out) == pytest.approx([1.0, 1.25, 1.5, 1.75, 2.0, 3.0])
    gap = out[1:4]
    assert gap["quality"].to_list() == [MISSING | ESTIMATED] * 3  # missing is kept
    assert gap["status"].to_list() == [Status.ESTIMATED.value] * 3
    assert gap["source"].to_list() == [SOURCE_LINEAR] * 3
    assert out[[0, 4, 5]].equals(frame[[0, 4, 5]])


def test_input_order_is_kept_across_meters() -> None:
    a = readings([1.0, None, 3.0], meter="a")
    b = readings([4.0, None, None, 1.0], meter="b")
    frame = pl.concat([a, b]).sample(fraction=1.0, shuffle=True, seed=3)
    out = estimate(frame, VeeConfig())
    assert out.select("meter_id", "ts").equals(frame.select("meter_id", "ts"))
    got = {(m, t): v for m, t, v in out.select("meter_id", "ts", "import_kwh").iter_rows()}
    assert got[("a", T0 + dt.timedelta(seconds=HH))] == pytest.approx(2.0)
    assert got[("b", T0 + dt.timedelta(seconds=HH))] == pytest.approx(3.0)
    assert got[("b", T0 + dt.timedelta(seconds=2 * HH))] == pytest.approx(2.0)


def test_no_gap_returns_the_frame_untouched() -> None:
    frame = readings([1.0, 2.0, 3.0])
    assert estimate(frame, VeeConfig()) is frame


# --- registers ----------------------------------------------------------------------------


def test_linear_estimates_sum_to_the_register_delta() -> None:
    # registers at interval end: 10 after the first reading, 15 after the closing one
    frame = readings([1.0, None, None, None, 2.0], registers=[10.0, None, None, None, 15.0])
    out = estimate(frame, VeeConfig())
    est = out["import_kwh"].to_list()[1:4]
    assert sum(est) == pytest.approx(15.0 - 2.0 - 10.0)
    # shape of the line kept, level from the registers
    assert est == pytest.approx([1.25 * 3 / 4.5, 1.5 * 3 / 4.5, 1.75 * 3 / 4.5])
    regs = out["register_kwh"].to_list()
    assert regs[1:4] == pytest.approx(list(10.0 + np.cumsum(est)))
    assert regs[3] + 2.0 == pytest.approx(regs[4])  # continuous into the closing reading


def test_profile_estimates_sum_to_the_register_delta() -> None:
    v = weekly(5, noise=0.2)
    s, n = 4 * WEEK + 2 * DAY + 16, 12  # Wednesday 08:00, 6 hours
    regs = 100.0 + np.cumsum(v)
    vals: list[float | None] = list(v)
    reg_list: list[float | None] = list(regs)
    for i in range(s, s + n):
        vals[i] = reg_list[i] = None
    out = estimate(readings(vals, registers=reg_list), VeeConfig())
    est = np.array(out["import_kwh"].to_list()[s : s + n])
    assert out["source"][s] == SOURCE_PROFILE
    assert est.sum() == pytest.approx(regs[s + n] - v[s + n] - regs[s - 1])
    assert (est >= 0).all()
    assert out["register_kwh"].to_list()[s : s + n] == pytest.approx(
        list(regs[s - 1] + np.cumsum(est))
    )


def test_a_register_that_runs_backwards_is_not_used() -> None:
    frame = readings([1.0, None, None, None, 2.0], registers=[10.0, None, None, None, 5.0])
    out = estimate(frame, VeeConfig())
    assert values(out)[1:4] == pytest.approx([1.25, 1.5, 1.75])  # plain line, never negative


# --- profile ------------------------------------------------------------------------------


def test_profile_reproduces_a_repeating_pattern() -> None:
    # Every day alike (weekday dependence only via a constant): every like-day mean is the
    # pattern itself and the level is 1, so the estimate is the pattern.
    i = np.arange(5 * WEEK)
    v = 0.2 + 0.8 * ((i % DAY >= 34) & (i % DAY < 42))
    s, n = 4 * WEEK + 3 * DAY + 30, 16  # Thursday 15:00, 8 hours over the evening peak
    vals: list[float | None] = list(v)
    vals[s : s + n] = [None] * n
    cfg = VeeConfig(estimate_edge_s=1)  # no easing into the neighbours
    out = estimate(readings(vals), cfg)
    assert out["source"][s] == SOURCE_PROFILE
    assert values(out)[s : s + n] == pytest.approx(list(v[s : s + n]))


def test_profile_follows_a_weekly_pattern_as_documented() -> None:
    v = weekly(5, noise=0.3, seed=5)
    s, n = 4 * WEEK + 5 * DAY + 14, 20  # Saturday 07:00, 10 hours over the midday peak
    vals: list[float | None] = list(v)
    vals[s : s + n] = [None] * n
    out = estimate(readings(vals), VeeConfig())
    # independent computation of the documented method
    idx = np.arange(s, s + n)
    win = np.r_[np.arange(s - 24, s), np.arange(s + n, s + n + 24)]  # 12 h either side
    level = np.clip(v[win].sum() / reference_profile(v, win).sum(), 0.5, 2.0)
    scaled = reference_profile(v, idx) * level ** (43200 / (43200 + n * HH))
    k = np.arange(n)
    line = v[s - 1] + (v[s + n] - v[s - 1]) * (k + 1) / (n + 1)
    near = np.exp(-np.minimum(k + 1, n - k) * HH / 3600)
    expected = near * line + (1 - near) * scaled
    assert values(out)[s : s + n] == pytest.approx(list(expected))
    # and it has the weekend's midday peak (slots 20-29), which a straight line cannot have
    peak = np.array(values(out)[s + 6 : s + 16], dtype=float)
    assert (peak - line[6:16]).mean() > 0.3


@pytest.mark.parametrize(("factor", "level"), [(1.5, 1.5), (3.0, 2.0)])
def test_profile_is_scaled_to_the_surrounding_level(factor: float, level: float) -> None:
    # Flat history; around the gap (2 h either side) the household uses ``factor`` times
    # as much. The ratio is clamped to [0.5, 2] and counts for window / (window + gap).
    i = np.arange(5 * WEEK)
    v = 0.3 + 0.5 * ((i % DAY >= 34) & (i % DAY < 42))
    s, n, w = 4 * WEEK + 2 * DAY + 28, 16, 4  # 8 h gap, 2 h window
    v[s - w : s + n + w] *= factor
    vals: list[float | None] = list(v)
    vals[s : s + n] = [None] * n
    cfg = VeeConfig(estimate_window_s=w * HH, estimate_edge_s=1)
    out = estimate(readings(vals), cfg)
    base = 0.3 + 0.5 * ((np.arange(s, s + n) % DAY >= 34) & (np.arange(s, s + n) % DAY < 42))
    expected = base * level ** (w / (w + n))
    assert values(out)[s : s + n] == pytest.approx(list(expected))


# --- what stays a gap ---------------------------------------------------------------------


def test_gap_longer_than_estimate_max_stays() -> None:
    v = weekly(6)
    s, n = 4 * WEEK, 8 * DAY  # 8 days > 7 days
    vals: list[float | None] = list(v)
    vals[s : s + n] = [None] * n
    frame = readings(vals)
    assert estimate(frame, VeeConfig()).equals(frame)


def test_open_ended_gap_stays() -> None:
    v = weekly(5)
    vals: list[float | None] = list(v)
    vals[-10:] = [None] * 10  # nothing real after it yet
    vals[:3] = [None] * 3  # nor before this one
    frame = readings(vals)
    assert estimate(frame, VeeConfig()).equals(frame)


def test_gap_without_history_stays() -> None:
    vals: list[float | None] = [0.5] * 20 + [None] * 12 + [0.5] * 20  # 6 h, no like days
    frame = readings(vals)
    assert estimate(frame, VeeConfig()).equals(frame)


def test_gap_whose_references_are_mostly_estimated_stays() -> None:
    v = weekly(5)
    s, n = 4 * WEEK + 2 * DAY + 20, 12
    vals: list[float | None] = list(v)
    vals[s : s + n] = [None] * n
    # history before the last two days is itself estimated (earlier gaps, filled)
    estimated = {i: MISSING | ESTIMATED for i in range(s - 2 * DAY)}
    frame = readings(
        vals,
        quality=estimated,
        status=dict.fromkeys(estimated, Status.ESTIMATED.value),
        ctx=[i < s - 2 * DAY for i in range(len(vals))],
    )
    assert estimate(frame, VeeConfig()).equals(frame)
    # allowed when the share rule is relaxed, and then only real references are used
    out = estimate(frame, VeeConfig(max_estimated_reference_share=1.0))
    assert out["import_kwh"][s : s + n].null_count() == 0


# --- context and untrusted rows -------------------------------------------------------------


def test_context_rows_are_never_modified() -> None:
    v = weekly(5, noise=0.1)
    n_rows = len(v)
    vals: list[float | None] = list(v)
    ctx_gap = range(3 * WEEK + 10, 3 * WEEK + 14)  # stored, never estimated
    new_gap = range(4 * WEEK + 10, 4 * WEEK + 13)
    for i in (*ctx_gap, *new_gap):
        vals[i] = None
    ctx_flags = [i < 4 * WEEK for i in range(n_rows)]
    quality = {3 * WEEK + 50: MISSING | ESTIMATED}  # a stored estimate
    frame = readings(vals, ctx=ctx_flags, quality=quality)
    out = estimate(frame, VeeConfig())
    is_ctx = pl.col("_ctx")
    assert out.filter(is_ctx).equals(frame.filter(is_ctx))
    assert out["import_kwh"][new_gap.start : new_gap.stop].null_count() == 0


def test_context_gap_run_is_measured_but_not_filled() -> None:
    # A stored gap continues into the batch: the gap is the whole run (too long for a
    # line, so a profile), and only the batch's rows get values.
    v = weekly(5)
    s = 4 * WEEK + 20
    vals: list[float | None] = list(v)
    vals[s : s + 6] = [None] * 6
    frame = readings(vals, ctx=[i < s + 3 for i in range(len(v))])
    out = estimate(frame, VeeConfig())
    assert out["import_kwh"][s : s + 3].null_count() == 3
    assert out["source"][s + 3 : s + 6].to_list() == [SOURCE_PROFILE] * 3


@pytest.mark.parametrize(
    ("bits", "status"),
    [
        (int(Quality.SPIKE), Status.SUSPECT.value),
        (0, Status.REJECTED.value),
        (int(Quality.OUT_OF_RANGE), Status.SUSPECT.value),
    ],
)
def test_untrusted_rows_are_not_anchors(bits: int, status: str) -> None:
    frame = readings(
        [9.0, 1.0, None, None, 40.0, 2.0],
        registers=[1.0, 2.0, None, None, 50.0, 52.0],
        quality={4: bits},
        status={4: status},
    )
    out = estimate(frame, VeeConfig())
    # line from 1.0 (slot 1) to 2.0 (slot 5); the untrusted slot 4 is skipped, and the
    # registers are not used because the gap is not bounded by trustworthy readings
    assert values(out) == pytest.approx([9.0, 1.0, 1.25, 1.5, 40.0, 2.0])
    assert out[4].equals(frame[4])


def test_untrusted_history_is_not_a_reference() -> None:
    i = np.arange(5 * WEEK)
    v = 0.2 + 0.8 * ((i % DAY >= 34) & (i % DAY < 42))
    s, n = 4 * WEEK + 3 * DAY + 30, 16
    vals: list[float | None] = list(v)
    vals[s : s + n] = [None] * n
    spikes = {s - WEEK + k: int(Quality.SPIKE) for k in range(n)}
    for j in spikes:
        vals[j] = 50.0  # a week earlier, the same hours were spikes
    out = estimate(readings(vals, quality=spikes), VeeConfig(estimate_edge_s=1))
    assert values(out)[s : s + n] == pytest.approx(list(v[s : s + n]))
