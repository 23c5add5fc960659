"""The level runs (drops and shifts that hold, with hysteresis, quiet hours held and dips
bridged) over arrays, against a plain reading of the rules, row by row and subject by
subject, on random levels of a few subjects, with and without a carried state, with
unknown and NaN levels."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metrify.anomaly.levels import QUIET_HOLD, runs
from metrify.settings.anomaly import AnomalyConfig

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
NAN = float("nan")
CONFIGS = {
    # the defaults' shape: shifts bridged, a drop's exit no looser than its entry
    "bridged": AnomalyConfig(level_min_hours=4),
    # drops with hysteresis, shifts not bridged
    "loose": AnomalyConfig(level_min_hours=3, drop_exit_ratio=0.7, shift_bridge_hours=0),
}

level = st.sampled_from([None, NAN, 0.0, 0.05, 0.2, 0.4, 0.6, 0.9, 1.0, 1.5, 2.0, 2.2, 3.0])
expected = st.sampled_from([None, 0.0, 0.05, 0.5, 1.0])  # 0: ratios of x / 0
offset = st.one_of(st.none(), st.integers(min_value=-60, max_value=-1))  # hours before T0
seed_strategy = st.one_of(
    st.none(),
    st.tuples(level, expected, offset, offset, st.one_of(st.none(), st.integers(-8, 2))),
)
rows_strategy = st.lists(
    st.tuples(st.sampled_from([1, 1, 1, 1, 2, 5, 13]), level, expected), min_size=1, max_size=30
)
subject_strategy = st.tuples(seed_strategy, rows_strategy, st.sampled_from([None, 0.3, 1.0]))


def build(subjects) -> pl.DataFrame:
    """The level rows as :func:`runs` takes them: by subject, its seed first."""
    out: list[dict[str, object]] = []
    for sid, (seed, rows, mean) in enumerate(subjects):
        if seed is not None:
            eo, ee, drop_at, shift_at, until_at = seed
            shift = None if shift_at is None else T0 + shift_at * HOUR
            out.append(
                {
                    "sid": sid,
                    "ts": T0,
                    "interval_s": 0,
                    "seed": True,
                    "eo": eo,
                    "ee": ee,
                    "mean_level": mean,
                    "drop_since": None if drop_at is None else T0 + drop_at * HOUR,
                    "shift_since": shift,
                    "shift_until": None
                    if shift is None or until_at is None
                    else T0 + until_at * HOUR,
                }
            )
        ts = T0
        for gap, eo, ee in rows:
            ts += gap * HOUR
            out.append(
                {
                    "sid": sid,
                    "ts": ts,
                    "interval_s": 3600,
                    "seed": False,
                    "eo": eo,
                    "ee": ee,
                    "mean_level": mean,
                    "drop_since": None,
                    "shift_since": None,
                    "shift_until": None,
                }
            )
    time = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        out,
        schema={
            "sid": pl.UInt32(),
            "ts": time,
            "interval_s": pl.Int32(),
            "seed": pl.Boolean(),
            "eo": pl.Float64(),
            "ee": pl.Float64(),
            "mean_level": pl.Float64(),
            "drop_since": time,
            "shift_since": time,
            "shift_until": time,
        },
    )


def gt(a: float, b: float) -> bool:
    """``a > b`` with NaN above every number (as Polars orders floats)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and not math.isnan(b)
    return a > b


def lt(a: float, b: float) -> bool:
    return gt(b, a)


def stretches(values: list[bool]) -> list[tuple[int, int]]:
    """(first, last) positions of each stretch of equal values."""
    out, first = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[i - 1]:
            out.append((first, i - 1))
            first = i
    return out


def read(
    rows: list[dict], cfg: AnomalyConfig, any_stay: dict[str, bool]
) -> tuple[list[dict], dict[str, list[bool]]]:
    """One subject's rows judged by the rules as written, row by row; and its rows'
    stay conditions (``any_stay``: whether any row of the batch meets them)."""
    ts = [r["ts"] for r in rows]
    end = [r["ts"] + dt.timedelta(seconds=r["interval_s"]) for r in rows]
    seed = [r["seed"] for r in rows]
    known = [r["eo"] is not None and r["ee"] is not None for r in rows]
    ratio = [
        r["eo"] / r["ee"] if k and r["ee"] != 0 else None for r, k in zip(rows, known, strict=True)
    ]
    for i, r in enumerate(rows):  # 0 / 0 and x / 0 as floats divide
        if known[i] and r["ee"] == 0:
            ratio[i] = (
                NAN if r["eo"] == 0 or math.isnan(r["eo"]) else math.copysign(math.inf, r["eo"])
            )
    judgeable = [r["ee"] is not None and gt(r["ee"], cfg.level_min_expected_kw) for r in rows]
    hold, last = [], ts[0] - 2 * QUIET_HOLD
    for i in range(len(rows)):
        if judgeable[i] or seed[i]:
            last = ts[i]
        hold.append(ts[i] - last <= QUIET_HOLD)

    def held(seeded: bool, cond: list[bool | None]) -> list[bool]:
        out: list[bool] = []
        for i in range(len(rows)):
            if seed[i]:
                state: bool | None = seeded
            elif judgeable[i]:
                state = cond[i]
            elif hold[i]:
                state = None
            else:
                state = False
            out.append((out[-1] if out else False) if state is None else state)
        return out

    def shift_cond(threshold: float, share: float) -> list[bool | None]:
        out: list[bool | None] = []
        for i, r in enumerate(rows):
            more = (
                known[i]
                and r["mean_level"] is not None
                and gt(r["eo"] - r["ee"], share * r["mean_level"])
            )
            out.append(True if more else (None if ratio[i] is None else gt(ratio[i], threshold)))
        return out

    drop_exit = max(cfg.drop_exit_ratio, cfg.drop_ratio)
    shift_exit = min(cfg.shift_exit_ratio, cfg.shift_ratio)
    drop_seeded = rows[0]["seed"] and rows[0]["drop_since"] is not None
    shift_seeded = rows[0]["seed"] and rows[0]["shift_since"] is not None
    below = [lambda x, t=t: None if x is None else lt(x, t) for t in (cfg.drop_ratio, drop_exit)]
    entry = {
        "drop": held(drop_seeded, [below[0](x) for x in ratio]),
        "shift": held(shift_seeded, shift_cond(cfg.shift_ratio, cfg.shift_excess)),
    }
    stay = {
        "drop": held(drop_seeded, [below[1](x) for x in ratio]),
        "shift": held(
            shift_seeded, shift_cond(shift_exit, shift_exit / cfg.shift_ratio * cfg.shift_excess)
        ),
    }
    loose = {"drop": drop_exit > cfg.drop_ratio, "shift": shift_exit < cfg.shift_ratio}
    cond: dict[str, list[bool]] = {}
    for name in ("drop", "shift"):
        if not loose[name] or not any_stay[name]:
            cond[name] = entry[name]
            continue
        cond[name] = [False] * len(rows)
        for first, last_at in stretches(stay[name]):
            entered = False
            for i in range(first, last_at + 1):
                entered = entered or entry[name][i]
                cond[name][i] = stay[name][i] and entered
    bridge = dt.timedelta(hours=cfg.shift_bridge_hours)
    run_end = [
        (r["shift_until"] or r["ts"]) if r["seed"] else e for r, e in zip(rows, end, strict=True)
    ]

    def ended(on: list[bool]) -> list[dt.datetime]:
        out, at = [], ts[0] - 2 * bridge
        for i in range(len(rows)):
            if on[i]:
                at = run_end[i]
            out.append(at)
        return out

    if cfg.shift_bridge_hours > 0:
        on, was = cond["shift"], ended(cond["shift"])
        bridged = []
        for i in range(len(rows)):
            j = next((j for j in range(i, len(rows)) if on[j]), None)
            resumes = ts[j] if j is not None else ts[-1] + 2 * bridge
            bridged.append(on[i] or resumes - was[i] <= bridge)
        cond["shift"] = bridged

    out = [{"ratio": x} for x in ratio]
    for name in ("drop", "shift"):
        on = cond[name]
        since = [r[f"{name}_since"] if r["seed"] else r["ts"] for r in rows]
        start: list[dt.datetime | None] = [None] * len(rows)
        flagged = [False] * len(rows)
        for first, last_at in stretches(on):
            for i in range(first, last_at + 1):
                start[i] = since[first]
            lasted = any(
                on[i]
                and start[i] is not None
                and end[i] - start[i] >= dt.timedelta(hours=cfg.level_min_hours)
                for i in range(first, last_at + 1)
            )
            for i in range(first, last_at + 1):
                flagged[i] = on[i] and lasted
        kept = [s if c else None for s, c in zip(start, on, strict=True)]
        if name == "shift":
            if cfg.shift_bridge_hours > 0:
                was = ended(on)
                began, at = [], ts[0]
                for k in kept:
                    at = k if k is not None else at
                    began.append(at)
                until = []
                for i in range(len(rows)):
                    open_ = not on[i] and run_end[i] - was[i] <= bridge
                    until.append(run_end[i] if on[i] else (was[i] if open_ else None))
                    if not on[i]:
                        kept[i] = began[i] if open_ else None
            else:
                until = [e if c else None for e, c in zip(end, on, strict=True)]
            for o, u in zip(out, until, strict=True):
                o["shift_until"] = u
        for i, o in enumerate(out):
            o.update({f"c_{name}": on[i], name: flagged[i], f"{name}_start": start[i]})
            o[f"{name}_since"] = kept[i]
    return out, stay


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


@settings(max_examples=400, deadline=None)
@given(st.lists(subject_strategy, min_size=1, max_size=4), st.sampled_from(sorted(CONFIGS)))
def test_runs_read_the_rules_row_by_row(subjects, config) -> None:
    cfg = CONFIGS[config]
    both = build(subjects)
    got = runs(both, cfg)
    names = [
        "ratio",
        "c_drop",
        "c_shift",
        "drop",
        "shift",
        "drop_start",
        "shift_start",
        "drop_since",
        "shift_since",
        "shift_until",
    ]
    by_subject: dict[int, list[dict]] = {}
    for r in both.to_dicts():
        by_subject.setdefault(r["sid"], []).append(r)
    # whether any row of the batch may stay in a run (hysteresis is skipped otherwise)
    any_stay = {"drop": False, "shift": False}
    for subject in by_subject.values():
        for name, stays in read(subject, cfg, any_stay)[1].items():
            any_stay[name] = any_stay[name] or any(stays)
    want: list[dict] = []
    for sid in sorted(by_subject):
        want += read(by_subject[sid], cfg, any_stay)[0]
    for name in names:
        column = got.get_column(name).to_list()
        expected = [w[name] for w in want]
        assert all(same(a, b) for a, b in zip(column, expected, strict=True)), name
    # the columns it does not set are as they came
    assert got.select("sid", "ts", "eo", "ee").equals(both.select("sid", "ts", "eo", "ee"))
