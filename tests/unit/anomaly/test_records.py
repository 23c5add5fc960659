"""Incidents come out in one order whatever order their rows were grouped in."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.anomaly.records import Subject, incidents
from metrify.contracts.anomalies import Kind

T0 = dt.datetime(2024, 3, 4, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def test_two_runs_of_one_drop_sharing_its_start_come_out_in_time_order() -> None:
    # One level shift that began at T0 and was flagged in two stretches a day apart (a
    # dip between them longer than the merge gap): both runs start at the shift's start.
    hours = [*range(0, 6), *range(30, 40)]
    flagged = pl.DataFrame(
        {
            "subject_id": ["M1"] * len(hours) + ["M0"] * 2,
            "ts": [T0 + h * HOUR for h in hours] + [T0, T0 + HOUR],
            "interval_s": [3600] * (len(hours) + 2),
            "score": [2.0] * (len(hours) + 2),
            "since": [T0] * (len(hours) + 2),
        },
        schema_overrides={"interval_s": pl.Int32},
    ).sample(fraction=1.0, shuffle=True, seed=3)
    on = Subject("meter", "subject_id", merge_gap_s=3 * 3600)
    outs = [
        incidents(
            flagged,
            kind=Kind.LEVEL_SHIFT,
            on=on,
            detector="test",
            severity=pl.lit("low"),
            evidence={"score": pl.col("score")},
        )
        for _ in range(30)
    ]
    first = outs[0]
    assert first.select("subject_id", "ts_start", "ts_end").rows() == [
        ("M0", T0, T0 + 2 * HOUR),
        ("M1", T0, T0 + 6 * HOUR),
        ("M1", T0, T0 + 40 * HOUR),
    ]
    assert all(out.equals(first) for out in outs)
