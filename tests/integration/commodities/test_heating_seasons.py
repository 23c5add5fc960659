"""A heating meter's seasons are not incidents; an electricity meter is judged as before.

Real data: the hourly gas register of a Dutch home (``dutch-home-registers/``, litres),
February to November 2019: about 460 m³ a month in winter, under 10 in July, heating back
in October. The same hourly energy goes to three meters: one described as an electricity
meter (what a load without commodities did), one gas meter that reports its volume in m³
(converted with its own calorific value), one heat meter in kWh. Electricity's
detectors find the seasons (a drop or vacancy in summer, a level shift when heating
starts); the gas and heat meters get none of those, no spike flags and no zero-run flags.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest

from metrify.contracts.records import METER, READING
from metrify.settings import Settings
from support.pipeline import submit_frames
from support.realdata import dutch_register_deltas

CV = 35.17  # MJ per m³: the Dutch G-gas calorific value, set on the gas meter
SEASONAL = ("sustained_drop", "vacancy", "level_shift")

pytestmark = pytest.mark.realdata


def frames() -> tuple[list[pl.DataFrame], dict[int, float]]:
    hours = dutch_register_deltas(
        "gas_quantity_CurrentGasQuantity_5yrhours.csv", "2019-02-01", "2019-12-01"
    )
    litres = dict(hours)
    ts = [dt.datetime.fromtimestamp(t, dt.UTC) for t, _ in hours]
    m3 = [v / 1000 for _, v in hours]
    kwh = [v * CV / 3.6 for v in m3]
    parts = [
        pl.DataFrame({"meter_id": "GAS-AS-ELEC", "ts": ts, "import_kwh": kwh}),
        pl.DataFrame({"meter_id": "GAS-M3", "ts": ts, "import_kwh": m3}),
        pl.DataFrame({"meter_id": "HEAT-KWH", "ts": ts, "import_kwh": kwh}),
    ]
    both = pl.concat(parts).with_columns(
        pl.col("ts").dt.cast_time_unit("us"), interval_s=pl.lit(3600, pl.Int32)
    )
    weekly = both.with_columns(w=pl.col("ts").dt.truncate("1w"))
    return [f.drop("w") for f in weekly.partition_by("w", maintain_order=True)], litres


def test_heating_seasons_are_no_incidents_for_gas_and_heat(
    settings: Settings, conn: psycopg.Connection
) -> None:
    submit_frames(
        settings,
        METER,
        [
            pl.DataFrame(
                {
                    "meter_id": ["GAS-AS-ELEC", "GAS-M3", "HEAT-KWH"],
                    "commodity": ["electricity", "gas", "heat"],
                    "unit": ["kWh", "m3", "kWh"],
                    "calorific_value_mj_m3": [None, CV, None],
                    "timezone": ["Europe/Amsterdam"] * 3,
                }
            )
        ],
    )
    batches, litres = frames()
    submit_frames(settings, READING, batches)

    kinds = dict(
        conn.execute(
            "SELECT subject_id, array_agg(DISTINCT kind) FROM anomalies GROUP BY 1"
        ).fetchall()
    )
    flags = dict(
        conn.execute(
            "SELECT meter_id, array[count(*) FILTER (WHERE quality & 8 <> 0),"
            " count(*) FILTER (WHERE quality & 16 <> 0 AND import_kwh = 0)]"
            " FROM readings GROUP BY 1"
        ).fetchall()
    )
    # electricity's detectors judge the seasons as events (the premise)
    assert set(SEASONAL) & set(kinds.get("GAS-AS-ELEC", [])), kinds
    assert flags["GAS-AS-ELEC"][0] > 0  # heating hours taken for kettle spikes
    for meter in ("GAS-M3", "HEAT-KWH"):
        assert not set(SEASONAL) & set(kinds.get(meter, [])), (meter, kinds)
        assert flags[meter] == [0, 0], (meter, flags)

    # the gas meter's volume became energy with its own calorific value; the volume stays
    t, v = next((t, v) for t, v in litres.items() if v > 500)
    row = conn.execute(
        "SELECT import_kwh, volume_m3 FROM readings WHERE meter_id = 'GAS-M3' AND ts = %s",
        (dt.datetime.fromtimestamp(t, dt.UTC),),
    ).fetchone()
    assert row is not None
    assert abs(row[1] - v / 1000) < 1e-9
    assert abs(row[0] - v / 1000 * 35.17 / 3.6) < 1e-6
