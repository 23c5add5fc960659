"""VEE on what a naive load of real Dutch meter data stores: a cumulative register mapped
as interval energy, and PV generation beside consumption, at night only when the clock
is wrong.

Real data (``dutch-home-registers/``): the home's hourly gas register and its solar
production meter (Wh since installation).
"""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import psycopg
import pytest

from metrify.contracts.records import METER, READING, Quality
from metrify.contracts.summary import Summary
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from support.pipeline import submit_frames
from support.realdata import dutch_register_deltas, shared_data

REG = int(Quality.REGISTER_MISMATCH)
RANGE = int(Quality.OUT_OF_RANGE)

pytestmark = pytest.mark.realdata


def load(settings: Settings, frame: pl.DataFrame) -> Summary:
    with open_session(settings) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(
            frame.with_columns(
                pl.col("ts").dt.cast_time_unit("us"), interval_s=pl.lit(3600, pl.Int32)
            ),
            source="test",
        )
        pipeline.close()
        return pipeline.summary


def register_reads(start: int, hours: int) -> list[tuple[int, int]]:
    path = shared_data() / "dutch-home-registers" / "gas_quantity_CurrentGasQuantity_5yrhours.csv"
    reads = [tuple(int(x) for x in line.split(",")) for line in path.read_text().split()]
    picked = [r for r in reads if r[0] >= start][:hours]
    assert len(picked) == hours
    return picked  # type: ignore[return-value]


def test_a_register_mapped_as_interval_energy_is_rejected_with_its_reason(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Two weeks of the gas register (litres, read as if kWh per hour) on a meter with a
    30 kW maximum and on one without limits; beside them the same hours as increments,
    and an interval series that rises steadily all fortnight (never down, but it grows
    to several times where it started: consumption, not a register)."""
    start = int(dt.datetime(2019, 1, 7, tzinfo=dt.UTC).timestamp())
    reads = register_reads(start, 14 * 24)
    ts = [dt.datetime.fromtimestamp(t, dt.UTC) for t, _ in reads]
    values = [float(v) for _, v in reads]
    steps = [0.0] + [b - a for a, b in itertools.pairwise(values)]
    submit_frames(
        settings,
        METER,
        [
            pl.DataFrame(
                {"meter_id": ["REG-MAX", "REG-NOMAX", "STEPS"], "max_kw": [30.0, None, 30.0]}
            )
        ],
    )
    summary = load(
        settings,
        pl.concat(
            [
                pl.DataFrame({"meter_id": "REG-MAX", "ts": ts, "import_kwh": values}),
                pl.DataFrame({"meter_id": "REG-NOMAX", "ts": ts, "import_kwh": values}),
                pl.DataFrame(
                    {"meter_id": "STEPS", "ts": ts, "import_kwh": [s / 1000 for s in steps]}
                ),
                pl.DataFrame(
                    {
                        "meter_id": "RISING",
                        "ts": ts,
                        "import_kwh": [1 + 0.01 * i for i in range(len(ts))],
                    }
                ),
            ]
        ),
    )
    rows = dict(
        conn.execute(
            "SELECT meter_id, array[count(*), count(*) FILTER (WHERE status = 'rejected'"
            f" AND quality & {REG} <> 0), count(*) FILTER (WHERE quality & {RANGE} <> 0)]"
            " FROM readings GROUP BY 1"
        ).fetchall()
    )
    n = len(reads)
    assert rows["REG-MAX"] == [n, n, n]  # every read above 30 kWh an hour, and a register
    assert rows["REG-NOMAX"][:2] == [n, n]  # no maximum known: its steps give it away
    assert rows["STEPS"][1] == 0 and rows["RISING"][1] == 0
    assert summary.reasons["vee: cumulative register mapped as interval energy"] == 2 * n
    assert any("cumulative register" in w for w in summary.warnings)


def pv_frame(meter: str, shift_h: int = 0) -> pl.DataFrame:
    hours = dutch_register_deltas(
        "elec_solar_quantity_CurrentElectricityQuantity_5yrhours.csv", "2019-01-01", "2020-01-01"
    )
    return pl.DataFrame(
        {
            "meter_id": meter,
            "ts": [dt.datetime.fromtimestamp(t + shift_h * 3600, dt.UTC) for t, _ in hours],
            "import_kwh": 0.0,
            "generation_kwh": [v / 1000 for _, v in hours],
        }
    )


def test_generation_is_stored_and_flagged_only_at_night(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A year of the PV meter on the home's zone (no location: the zone's place is used),
    and the same year with the clock twelve hours off, as a wrong zone would store it."""
    submit_frames(
        settings,
        METER,
        [
            pl.DataFrame(
                {
                    "meter_id": ["PV", "PV-SHIFTED", "PV-PLACED"],
                    "timezone": ["Europe/Amsterdam", "Europe/Amsterdam", None],
                    "latitude": [None, None, 52.1],
                    "longitude": [None, None, 5.1],
                    "has_pv": [True, True, True],
                }
            )
        ],
    )
    right = pv_frame("PV")
    summary = load(settings, pl.concat([right, pv_frame("PV-SHIFTED", 12), pv_frame("PV-PLACED")]))
    stored = dict(
        conn.execute(
            "SELECT meter_id, array[sum(generation_kwh), count(*) FILTER (WHERE"
            f" quality & {RANGE} <> 0 AND status = 'suspect')] FROM readings GROUP BY 1"
        ).fetchall()
    )
    total = right["generation_kwh"].sum()
    assert abs(stored["PV"][0] - total) < 1e-6  # generation kept in its own field
    assert stored["PV"][1] == 0 and stored["PV-PLACED"][1] == 0
    # shifted by twelve hours, the producing hours fall at night; independently: the
    # hours producing > 1 Wh that land between 21:00 and 03:00 UTC (well past dusk in
    # the Netherlands in every season)
    night = pv_frame("X", 12).filter(
        (pl.col("generation_kwh") > 0.001)
        & ((pl.col("ts").dt.hour() >= 21) | (pl.col("ts").dt.hour() < 3))
    )
    assert stored["PV-SHIFTED"][1] >= night.height > 100
    assert summary.reasons["vee: generation at night"] == stored["PV-SHIFTED"][1]
