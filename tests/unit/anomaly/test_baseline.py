"""The baseline's vectorised pieces against plain definitions: the hour-of-week medians
and MADs (one sort of the batch) against Polars' own grouped median on random groups
(sizes odd and even, ties, one-row groups); runs of a level change numbered over all
subjects at once."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metrify.anomaly.baseline import _coded, _learn, _levels, _young_stats
from metrify.anomaly.state import PROFILE_SCHEMA, SCALAR_SCHEMA
from metrify.settings.anomaly import AnomalyConfig

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["M1", "M2", "meter-3", "Z"]),
        st.integers(0, 3),
        # few distinct values, so ties are common
        st.sampled_from([0.0, 0.1, 0.25, 0.3, 1.5, 2.0, 7.25]) | st.floats(0, 50),
    ),
    min_size=1,
    max_size=80,
)


def frame(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"subject_id": pl.String(), "how": pl.Int16(), "value": pl.Float64()},
        orient="row",
    ).sample(fraction=1.0, shuffle=True, seed=1)


def expected(rows: pl.DataFrame, centre: pl.Expr) -> pl.DataFrame:
    """Per (subject, hour): median, count, MAD around ``centre``, by Polars' group-by."""
    return (
        rows.group_by("subject_id", "how")
        .agg(
            med=pl.col("value").median(), n=pl.len(), mad=(pl.col("value") - centre).abs().median()
        )
        .sort("subject_id", "how")
    )


@settings(max_examples=200, deadline=None)
@given(rows_strategy)
def test_learnt_levels_and_spreads_are_the_group_medians_and_mads(
    rows: list[tuple[str, int, float]],
) -> None:
    batch, ids = _coded(frame(rows))
    caps = batch.select("subject_id").unique().with_columns(cap=pl.lit(1000.0))
    got = _learn(batch, pl.DataFrame(schema=PROFILE_SCHEMA), caps, ids).sort("subject_id", "how")
    want = expected(batch, pl.col("value").median())
    assert got.select("subject_id", "how").equals(want.select("subject_id", "how"))
    # a fresh slot's level is its median and its spread its MAD (weight 0 before)
    for g, w in zip(got.iter_rows(named=True), want.iter_rows(named=True), strict=True):
        assert abs(g["level"] - w["med"]) <= 1e-12 * max(1.0, abs(w["med"]))
        assert abs(g["spread"] - w["mad"]) <= 1e-12 * max(1.0, abs(w["mad"]))
        assert g["weight"] == w["n"]


@settings(max_examples=200, deadline=None)
@given(rows_strategy, st.floats(0, 20), st.floats(0, 5))
def test_young_hours_get_the_median_and_the_mad_around_the_blended_level(
    rows: list[tuple[str, int, float]], weight: float, level: float
) -> None:
    batch, _ = _coded(
        frame(rows).with_columns(p_weight=pl.lit(weight), cap=pl.lit(8.0), p_level=pl.lit(level))
    )
    got = _young_stats(batch).sort("subject_id", "how")
    n = pl.len().cast(pl.Float64)
    w = min(weight, 8.0)
    blend = (w * level + n * pl.col("value").median()) / (w + n)
    want = expected(batch, blend)
    assert got.select("subject_id", "how").equals(want.select("subject_id", "how"))
    assert got["b_med"].to_list() == want["med"].to_list()
    assert got["b_n"].to_list() == want["n"].cast(pl.Float64).to_list()
    for g, m in zip(got["b_mad"], want["mad"], strict=True):
        assert abs(g - m) <= 1e-12 * max(1.0, abs(m))


LEVEL_T0 = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)


def _hourly(subject: str, values: list[float]) -> pl.DataFrame:
    """Level rows of one subject, hourly from :data:`LEVEL_T0`, expected 1.0 each."""
    return pl.DataFrame(
        {
            "subject_id": subject,
            "ts": [LEVEL_T0 + dt.timedelta(hours=h) for h in range(len(values))],
            "interval_s": 3600,
            "value": values,
            "expected": 1.0,
            "usable": True,
            "new": True,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "interval_s": pl.Int32()},
    )


def levels(
    rows: pl.DataFrame, cfg: AnomalyConfig, means: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The level judgement of ``rows`` for subjects with no state yet."""
    coded, ids = _coded(rows)
    return _levels(coded, pl.DataFrame(schema=SCALAR_SCHEMA), cfg, means, ids)


def test_a_drop_run_never_carries_over_from_one_subject_to_the_next() -> None:
    """Runs are numbered over all subjects' rows at once: subject A ends in a drop and B
    is low from its first row, so B's run must start at B's own first row."""
    cfg = AnomalyConfig()
    t0 = LEVEL_T0
    hours = 24
    rows = pl.concat(
        [
            _hourly("A", [1.0] * (hours // 2) + [0.05] * (hours // 2)),
            _hourly("B", [0.05] * hours),
        ]
    )
    means = pl.DataFrame({"subject_id": ["A", "B"], "mean_level": [1.0, 1.0]})
    out, _ = levels(rows, cfg, means)
    b = out.filter(pl.col("subject_id") == "B").sort("ts")
    assert b["in_drop"].all()
    assert b["drop_start"].unique().to_list() == [t0]
    a = out.filter((pl.col("subject_id") == "A") & pl.col("in_drop"))
    assert a["drop_start"].min() > t0


def test_a_stretch_that_only_stays_above_the_exit_is_no_shift() -> None:
    """Hysteresis works per stretch: a shift is entered (x3 for two days), ends (back to
    normal for a day), and a later stretch between the exit (x1.8) and the entry (x2.5)
    thresholds, with no row that enters, is no shift, however many entries came before."""
    cfg = AnomalyConfig(level_half_life_h=0.25)
    rows = _hourly("A", [3.0] * 48 + [1.0] * 24 + [2.0] * 48)
    means = pl.DataFrame({"subject_id": ["A"], "mean_level": [1.0]})
    out, _ = levels(rows, cfg, means)
    out = out.sort("ts")
    assert out["in_shift"].head(48).all()  # entered at once, held for two days
    assert out["shift"].head(48).all()  # lasted a day: the whole run is the incident
    assert not out["in_shift"].tail(46).any()  # only staying, never entering
    assert not out["in_shift"].slice(50, 22).any()  # the day back to normal


def test_levels_do_not_depend_on_the_order_the_rows_come_in() -> None:
    """The running levels follow each subject's time, however its rows arrive: two
    subjects' rows each in reverse time and taking turns (so no row follows one of its
    own subject: a later hour comes before an earlier one only with the other subject's
    row between) give the verdicts of the same rows in order."""
    cfg = AnomalyConfig()
    rows = pl.concat(
        [
            _hourly("A", [1.0] * 12 + [0.05] * 30 + [1.0] * 6),
            _hourly("B", [1.0] * 20 + [3.5] * 28),
        ]
    )
    means = pl.DataFrame({"subject_id": ["A", "B"], "mean_level": [1.0, 1.0]})
    columns = ["subject_id", "ts", "ratio", "in_drop", "drop", "in_shift", "shift"]
    in_order, _ = levels(rows, cfg, means)
    turns = (
        rows.sort("ts", descending=True)
        .with_columns(turn=pl.int_range(pl.len()).over("subject_id"))
        .sort("turn", "subject_id")
        .drop("turn")
    )
    shuffled, _ = levels(turns, cfg, means)
    assert (
        in_order.select(columns)
        .sort("subject_id", "ts")
        .equals(shuffled.select(columns).sort("subject_id", "ts"))
    )
    assert in_order["in_drop"].any() and in_order["in_shift"].any()  # both runs judged
