"""Routine drops (the meter's last drop repeated a week or two later, at the same hour of
the week, and short) are not raised again: the vectorised rule against a plain reading
of it, run by run, on random runs of a few meters."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metrify.anomaly.baseline import _weekly_drops
from metrify.anomaly.state import SCALAR_SCHEMA
from metrify.settings.anomaly import AnomalyConfig

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
WEEK = dt.timedelta(days=7)
CFG = AnomalyConfig()

# a run: (day, hour, hours long, lasted); runs of one meter that would overlap are skipped
run_strategy = st.tuples(
    st.sampled_from([0, 1, 7, 8, 14, 15, 21]),
    st.sampled_from([0, 5, 11, 13, 20]),
    st.sampled_from([1, 3, 30, 95, 97, 120]),
    st.booleans(),
)
meter_strategy = st.tuples(
    st.lists(run_strategy, max_size=5),
    st.sampled_from([None, -7, -14, -6, -20]),  # the last ended drop before: days from T0
    st.booleans(),  # the meter's rows end inside its last run (the run is still open)
)


def build(meters: list[tuple[list[tuple[int, int, int, bool]], int | None, bool]]):
    """The level rows (meter, time order) and the meters' state; and the runs as placed:
    per meter, (start, end, lasted, open)."""
    rows: list[dict[str, object]] = []
    placed: list[list[tuple[dt.datetime, dt.datetime, bool, bool]]] = []
    for sid, (runs, _, open_last) in enumerate(meters):
        mine: list[tuple[dt.datetime, dt.datetime, bool, bool]] = []
        ts = T0 - 2 * HOUR  # a quiet row before the first run
        for day, hour, hours, lasted in sorted(runs):
            start = T0 + dt.timedelta(days=day, hours=hour)
            if start <= ts:  # overlaps the run before
                continue
            quiet = ts
            while quiet < start:  # the quiet hours in between
                rows.append(row(sid, quiet, False, False, quiet))
                quiet += HOUR
            for k in range(hours):
                rows.append(row(sid, start + k * HOUR, True, lasted, start))
            ts = start + hours * HOUR
            mine.append((start, ts, lasted, False))
        if mine and open_last:  # the rows end with the last run
            start, end, lasted, _ = mine[-1]
            mine[-1] = (start, end, lasted, True)
        else:
            rows.append(row(sid, ts, False, False, ts))
        placed.append(mine)
    both = pl.DataFrame(
        rows,
        schema={
            "sid": pl.UInt32(),
            "subject_id": pl.String(),
            "ts": pl.Datetime("us", "UTC"),
            "interval_s": pl.Int32(),
            "c_drop": pl.Boolean(),
            "drop": pl.Boolean(),
            "drop_start": pl.Datetime("us", "UTC"),
        },
    )
    scalars = pl.DataFrame(
        [
            {
                "subject_id": f"M{sid}",
                "run_since": None if before is None else T0 + dt.timedelta(days=before),
            }
            for sid, (_, before, _) in enumerate(meters)
        ],
        schema={"subject_id": pl.String(), "run_since": SCALAR_SCHEMA["run_since"]},
    )
    return both, scalars, placed


def row(sid: int, ts: dt.datetime, in_run: bool, lasted: bool, start: dt.datetime):
    return {
        "sid": sid,
        "subject_id": f"M{sid}",
        "ts": ts,
        "interval_s": 3600,
        "c_drop": in_run,
        "drop": in_run and lasted,
        "drop_start": start,
    }


def repeats(start: dt.datetime, prev: dt.datetime | None) -> bool:
    """A week or two after ``prev``, within the tolerance."""
    if prev is None:
        return False
    gap = start - prev
    weeks = round(gap / WEEK)  # (Python rounds half to even too)
    tol = dt.timedelta(hours=CFG.drop_routine_tolerance_hours)
    return 1 <= weeks <= 2 and abs(gap - weeks * WEEK) <= tol


@settings(max_examples=300, deadline=None)
@given(st.lists(meter_strategy, min_size=1, max_size=3))
def test_routine_repeats_are_quiet_and_the_last_ended_drop_is_kept(meters) -> None:
    both, scalars, placed = build(meters)
    ids = pl.DataFrame({"subject_id": [f"M{sid}" for sid in range(len(meters))]})
    got, last = _weekly_drops(both, scalars, CFG, ids)

    quiet: set[tuple[int, dt.datetime]] = set()
    want_last: dict[str, dt.datetime] = {}
    medium = dt.timedelta(hours=CFG.drop_medium_hours)
    for sid, (_, before, _) in enumerate(meters):
        since = None if before is None else T0 + dt.timedelta(days=before)
        lasted = [r for r in placed[sid] if r[2]]
        for i, (start, end, _, open_) in enumerate(lasted):
            one = lasted[i - 1][0] if i >= 1 else since
            two = lasted[i - 2][0] if i >= 2 else (since if i >= 1 else None)
            if (repeats(start, one) or repeats(start, two)) and end - start < medium:
                quiet.add((sid, start))
            if not open_:
                want_last[f"M{sid}"] = start
    want_drop = [
        d and (s, start) not in quiet
        for s, d, start in zip(both["sid"], both["drop"], both["drop_start"], strict=True)
    ]
    assert got.get_column("drop").to_list() == want_drop
    assert got.drop("drop").equals(both.drop("drop"))
    assert dict(zip(last["subject_id"], last["_last_drop"], strict=True)) == want_last
