"""A gap inside a power outage the meter reported is estimated as zero, not interpolated.

Two meters with the same day of quarter-hours at 0.4 kWh and the same two-hour hole
(10:00-12:00 UTC); OUT reported a power failure at 09:58 and the restore at 12:03, SAME
reported nothing. OUT's eight gap rows are estimated 0 (source ``vee:estimate:outage``);
SAME's are interpolated, 0.4 each.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg

from metrify.contracts.records import EVENT, READING
from metrify.settings import Settings
from support.pipeline import submit_frames

T0 = dt.datetime(2025, 2, 3, tzinfo=dt.UTC)
HOLE = (T0 + dt.timedelta(hours=10), T0 + dt.timedelta(hours=12))


def readings(meter: str) -> pl.DataFrame:
    ts = [T0 + dt.timedelta(minutes=15 * i) for i in range(96)]
    ts = [t for t in ts if not HOLE[0] <= t < HOLE[1]]
    return pl.DataFrame(
        {"meter_id": meter, "ts": ts, "interval_s": 900, "import_kwh": 0.4}
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"), pl.col("interval_s").cast(pl.Int32))


def test_outage_gaps_are_zero_and_other_gaps_interpolated(
    settings: Settings, conn: psycopg.Connection
) -> None:
    submit_frames(
        settings,
        EVENT,
        [
            pl.DataFrame(
                {
                    "meter_id": ["OUT", "OUT"],
                    "ts": [HOLE[0] - dt.timedelta(minutes=2), HOLE[1] + dt.timedelta(minutes=3)],
                    "event": ["power_failure", "power_restore"],
                }
            ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
        ],
    )
    submit_frames(settings, READING, [pl.concat([readings("OUT"), readings("SAME")])])
    rows = conn.execute(
        "SELECT meter_id, import_kwh, status, source FROM readings"
        " WHERE ts >= %s AND ts < %s ORDER BY meter_id, ts",
        HOLE,
    ).fetchall()
    out = [r[1:] for r in rows if r[0] == "OUT"]
    same = [r[1:] for r in rows if r[0] == "SAME"]
    assert out == [(0.0, "estimated", "vee:estimate:outage")] * 8
    assert len(same) == 8 and all(abs(r[0] - 0.4) < 1e-9 and r[1] == "estimated" for r in same)
    assert all(r[2] != "vee:estimate:outage" for r in same)
    # outside the hole nothing changed
    total = conn.execute("SELECT sum(import_kwh) FROM readings WHERE meter_id = 'OUT'").fetchone()
    assert total is not None and abs(total[0] - 88 * 0.4) < 1e-9
