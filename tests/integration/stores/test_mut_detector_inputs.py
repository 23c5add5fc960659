"""The observed temperatures the weather-aware detectors read: one station's, in the
asked window, without gaps or rejected values (a mutation survivor: no test read them)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg

from metrify.contracts.records import WEATHER
from metrify.pipeline.session import ingest_frames, open_session
from metrify.settings import Settings
from metrify.simulation import Fleet, FleetSpec
from metrify.stores.detector_inputs import temperatures


def test_temperatures_of_one_station_in_a_window_without_rejected_values(
    settings: Settings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    one = Fleet(FleetSpec(meters=4, days=2, fault_rate=0.0, seed=3)).weather()
    # a second station a degree warmer, so a mix-up of stations shows in the values
    other = one.with_columns(
        station_id=pl.lit("WS-OTHER"), temperature_c=pl.col("temperature_c") + 1.0
    )
    weather = pl.concat([one, other])
    stations = sorted(weather["station_id"].unique().to_list())
    with open_session(settings) as session:
        ingest_frames(session, WEATHER, [weather], source="sim")
    first = weather["ts"].min()
    assert isinstance(first, dt.datetime)
    start, end = first + dt.timedelta(hours=3), first + dt.timedelta(hours=20)
    station = stations[0]
    expected = (
        weather.filter(
            (pl.col("station_id") == station)
            & (pl.col("ts") >= start)
            & (pl.col("ts") < end)
            & pl.col("temperature_c").is_not_null()
        )
        .select("station_id", "ts", "temperature_c")
        .sort("ts")
    )
    assert expected.height > 5
    got = temperatures(conn, [station], start, end).sort("ts")
    assert got.select("station_id", "ts").equals(expected.select("station_id", "ts"))
    assert got["temperature_c"].to_list() == expected["temperature_c"].to_list()

    # a value VEE rejected is not an observation
    dropped = expected["ts"][2]
    conn.execute(
        "UPDATE weather_observations SET status = 'rejected' WHERE station_id = %s AND ts = %s",
        (station, dropped),
    )
    again = temperatures(conn, [station], start, end)
    assert again.height == expected.height - 1
    assert dropped not in again["ts"].to_list()
    both = temperatures(conn, stations[:2], start, end)
    assert set(both["station_id"].unique().to_list()) == set(stations[:2])
