"""Through the pipeline: a bypass (use down to a quarter, base load too) two days old is a
low lead on its own, and urgent (high) when the meter reported its cover opened the day
before it began."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import psycopg

from metrify.contracts.records import EVENT, METER, READING
from metrify.settings import Settings
from support.pipeline import submit_frames
from support.series import household_kwh

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
STEP = 1800
PER_DAY = 48
BYPASS = 56  # the day the meter starts recording a quarter
DAYS = BYPASS + 2


def readings(meter: str) -> pl.DataFrame:
    values = [
        round(household_kwh(i, PER_DAY) * (0.25 if i >= BYPASS * PER_DAY else 1.0), 4)
        for i in range(DAYS * PER_DAY)
    ]
    return pl.DataFrame(
        {
            "meter_id": meter,
            "ts": [T0 + dt.timedelta(seconds=STEP * i) for i in range(len(values))],
            "interval_s": STEP,
            "import_kwh": values,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"), pl.col("interval_s").cast(pl.Int32))


def test_a_cover_opened_before_a_drop_makes_it_urgent(
    settings: Settings, conn: psycopg.Connection
) -> None:
    submit_frames(settings, METER, [pl.DataFrame({"meter_id": ["OPENED", "PLAIN"]})])
    opened_at = T0 + dt.timedelta(days=BYPASS - 1)
    submit_frames(
        settings,
        EVENT,
        [
            pl.DataFrame(
                {"meter_id": ["OPENED"], "ts": [opened_at], "event": ["Terminal cover open"]}
            ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
        ],
    )
    weekly = pl.concat([readings("OPENED"), readings("PLAIN")]).with_columns(
        w=pl.col("ts").dt.truncate("1w")
    )
    submit_frames(
        settings, READING, [f.drop("w") for f in weekly.partition_by("w", maintain_order=True)]
    )
    drops = {
        r[0]: (r[1], json.loads(r[2]))
        for r in conn.execute(
            "SELECT subject_id, severity, evidence::text FROM anomalies"
            " WHERE kind = 'sustained_drop'"
        ).fetchall()
    }
    assert set(drops) == {"OPENED", "PLAIN"}, drops
    assert drops["PLAIN"][0] == "low"  # two days: a long weekend away looks the same
    assert drops["OPENED"][0] == "high"
    assert drops["OPENED"][1]["tamper_event"] == "cover_open"
    assert drops["OPENED"][1]["tamper_event_at"] == opened_at.strftime("%Y-%m-%dT%H:%M:%SZ")
