"""Temperature adjustment of the meters' expected level, on constructed series.

An electrically heated home: its use is a clean daily shape plus a known heating draw
(0.2 kW per degree below 15.5 C) under a known, slowly varying temperature. A week-long
cold snap doubles its use: without the temperature that is new load (a level shift);
with its station's observations it is the weather. A bypass afterwards is found either
way. A meter whose use does not follow the weather is judged exactly as without it.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import psycopg

from metrify.anomaly import temperature
from metrify.anomaly.meters import detect_readings
from metrify.anomaly.state import PROFILE_SCHEMA, SCALAR_SCHEMA
from metrify.contracts.records import METER, READING, TS, WEATHER
from metrify.settings import Settings
from metrify.settings.anomaly import AnomalyConfig
from support.pipeline import submit_frames
from support.series import household_kwh

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
STEP = 1800
PER_DAY = 86400 // STEP
SLOPE_KW = 0.2  # the home's heating: kW per degree below the base
BASE_C = 15.5
SNAP = (45, 52)  # days of the cold snap: about -13 C instead of 8 C
BYPASS = (56, 63)  # days the meter records a quarter
DAYS = 63


def shape(i: int) -> float:
    """kWh per half hour without heating: 0.15 at night, ~0.65 in the evening."""
    return household_kwh(i, PER_DAY)


def temp_c(h: int) -> float:
    """Hour ``h`` after T0 (negative: before): 8 C +- 4 over a 9.3-day cycle, +-2 C a day,
    and the snap, 21 C colder, which comes and goes in 3 C steps an hour."""
    day = h / 24
    t = 8 + 4 * math.sin(2 * math.pi * day / 9.3) + 2 * math.sin(2 * math.pi * (h % 24 - 9) / 24)
    into = min(h - SNAP[0] * 24, SNAP[1] * 24 - h)  # hours inside the snap (< 0: outside)
    return t - 21 * min(max(into + 1, 0) / 7, 1.0)


def heating_kwh(i: int) -> float:
    """Heating energy of half hour ``i``: 0.2 kW x heating degrees x 0.5 h."""
    return SLOPE_KW * max(0.0, BASE_C - temp_c(i // 2)) * STEP / 3600


def readings(meter: str) -> pl.DataFrame:
    values = []
    for i in range(DAYS * PER_DAY):
        v = shape(i) + heating_kwh(i)
        if BYPASS[0] * PER_DAY <= i < BYPASS[1] * PER_DAY:
            v *= 0.25
        values.append(round(v, 4))
    return pl.DataFrame(
        {
            "meter_id": meter,
            "ts": [T0 + dt.timedelta(seconds=STEP * i) for i in range(len(values))],
            "interval_s": STEP,
            "import_kwh": values,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"), pl.col("interval_s").cast(pl.Int32))


def observations(station: str) -> pl.DataFrame:
    """Hourly temperatures from five weeks before T0 (the baseline's memory) to the end."""
    hours = range(-35 * 24, DAYS * 24)
    return pl.DataFrame(
        {
            "station_id": station,
            "ts": [T0 + dt.timedelta(hours=h) for h in hours],
            "temperature_c": [round(temp_c(h), 2) for h in hours],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def incidents(conn: psycopg.Connection, meter: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT kind, ts_start, ts_end, severity FROM anomalies WHERE subject_id = %s"
        " ORDER BY ts_start",
        (meter,),
    ).fetchall()


def test_cold_snap_is_weather_not_new_load_and_a_bypass_is_still_found(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """HEAT refers to station ST1; HEAT0 has the same readings and no station."""
    submit_frames(
        settings,
        METER,
        [pl.DataFrame({"meter_id": ["HEAT", "HEAT0"], "station_id": ["ST1", None]})],
    )
    submit_frames(settings, WEATHER, [observations("ST1")])
    # a week per batch, as a stream's worker would see them over time
    frames = [readings(m) for m in ("HEAT", "HEAT0")]
    weekly = pl.concat(frames).with_columns(w=pl.col("ts").dt.truncate("1w"))
    submit_frames(
        settings,
        READING,
        [f.drop("w") for f in weekly.partition_by("w", maintain_order=True)],
    )
    snap = (T0 + dt.timedelta(days=SNAP[0]), T0 + dt.timedelta(days=SNAP[1]))
    bypass = T0 + dt.timedelta(days=BYPASS[0])

    def during_snap(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        return [r for r in rows if r[1] < snap[1] and r[2] > snap[0]]  # type: ignore[operator]

    # without the temperature the snap is new load: a level shift held for days, which
    # alerts (medium), and bursts beside it
    plain = incidents(conn, "HEAT0")
    snap_plain = during_snap(plain)
    assert [r[3] for r in snap_plain if r[0] == "level_shift"] == ["medium"]
    assert {r[0] for r in snap_plain} <= {"level_shift", "unusual_consumption"}
    # with it, the snap raises nothing at all ...
    heat = incidents(conn, "HEAT")
    assert during_snap(heat) == []
    # ... and the bypass is found, as on the meter without a station
    for rows in (heat, plain):
        drops = [r for r in rows if r[0] == "sustained_drop"]
        assert len(drops) == 1
        assert bypass <= drops[0][1] <= bypass + dt.timedelta(hours=18)  # type: ignore[operator]
        assert drops[0][3] == "medium"  # 6-7 days: more than 96 h, less than a week
    # the fit lives in two slots after the 168 hours of the week; the meter without a
    # station has an empty one (no days)
    fits = dict(
        conn.execute(
            "SELECT subject_id, level FROM anomaly_profile"
            " WHERE how = 168 AND subject_id IN ('HEAT', 'HEAT0')"
        ).fetchall()
    )
    assert fits["HEAT0"] == 0.0 and fits["HEAT"] > 14
    # and its slope is the heating the series was built with (0.2 kW per degree), within
    # what a 4-week median baseline lets a daily fit see
    n, sx, sy, sxx, sxy = conn.execute(
        "SELECT a.level, a.spread, a.weight, b.level, b.spread FROM anomaly_profile a"
        " JOIN anomaly_profile b ON b.subject_id = a.subject_id AND b.how = 169"
        " WHERE a.subject_id = 'HEAT' AND a.how = 168"
    ).fetchone()  # type: ignore[misc]
    k = (sxy - sx * sy / n) / (sxx - sx * sx / n)
    assert 0.15 < k < 0.25


def frame_of(meter: str, values: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": meter,
            "ts": [T0 + dt.timedelta(seconds=STEP * i) for i in range(len(values))],
            "interval_s": STEP,
            "import_kwh": values,
            "export_kwh": 0.0,
            "active_power_kw": None,
            "quality": 0,
            "status": "valid",
        },
        schema_overrides={"ts": TS, "interval_s": pl.Int32, "active_power_kw": pl.Float64},
    ).with_columns(pl.col("quality").cast(pl.Int32))


def test_a_meter_indifferent_to_weather_is_judged_as_without_it() -> None:
    """No heating in its use (a spike and a bypass in it): the fit finds no dependence,
    so every row's expected level, every flag and every incident is the same as when the
    detector is given no temperatures at all."""
    values = [shape(i) for i in range(DAYS * PER_DAY)]
    values[40 * PER_DAY + 20] = 5.0
    for i in range(BYPASS[0] * PER_DAY, BYPASS[1] * PER_DAY):
        values[i] *= 0.25
    frame = frame_of("COOL", values)
    has = pl.DataFrame({"meter_id": ["COOL"], "has_pv": [False], "station_id": ["ST1"]})
    weather = temperature.hourly(observations("ST1"))
    cfg = AnomalyConfig()

    def run(w: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        d = detect_readings(
            frame,
            has,
            pl.DataFrame(schema=PROFILE_SCHEMA),
            pl.DataFrame(schema=SCALAR_SCHEMA),
            cfg,
            weather=w,
        )
        return d.flags, d.incidents, d.profile

    flags, found, profile = run(weather)
    flags0, found0, profile0 = run(None)
    assert flags.sort("ts").equals(flags0.sort("ts"))
    assert found.equals(found0)
    assert {"unusual_consumption", "sustained_drop"} <= set(found["kind"])
    fit = temperature.fit_of(profile).with_columns(temperature.slope(cfg))
    assert fit["t_n"][0] >= cfg.temp_min_days  # it had the days to learn ...
    assert fit["k"][0] == 0.0  # ... and found nothing to adjust
    # the baseline's hours and the drop's evidence are the same; only the fit differs
    # (zero days without temperatures)
    rest = ~pl.col("how").is_in([168, 169])
    assert profile.filter(rest).sort("how").equals(profile0.filter(rest).sort("how"))
    assert profile0.filter(~rest)["level"].to_list() == [0.0, 0.0]


def test_temperature_cache_reads_each_span_once() -> None:
    """The stage asks per batch; only hours not yet read (or not yet observed) are read."""
    calls: list[tuple[list[str], dt.datetime, dt.datetime]] = []
    last_obs = {
        "A": T0 + dt.timedelta(hours=30),
        "B": T0 + dt.timedelta(hours=50),
        "C": T0 - dt.timedelta(hours=1),  # nothing yet
    }

    def load(stations: list[str], start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
        calls.append((stations, start, end))
        rows = [
            (s, T0 + dt.timedelta(hours=h), float(h))
            for s in stations
            for h in range(0, 100)
            if start <= T0 + dt.timedelta(hours=h) < end
            and T0 + dt.timedelta(hours=h) <= last_obs[s]
        ]
        return pl.DataFrame(rows, schema=temperature.HOURLY_SCHEMA, orient="row")

    cache = temperature.TemperatureCache(load, retry_s=0.0)
    hour = dt.timedelta(hours=1)
    got = cache.get(["A", "B"], T0, T0 + 24 * hour)
    assert got.height == 48 and len(calls) == 1
    # the same span again, and a part of it: nothing read
    cache.get(["A", "B"], T0, T0 + 24 * hour)
    cache.get(["A"], T0 + 5 * hour, T0 + 20 * hour)
    assert len(calls) == 1
    # later hours: only what lies beyond each station's coverage is read
    got = cache.get(["A", "B"], T0 + 10 * hour, T0 + 40 * hour)
    assert calls[1] == (["A", "B"], T0 + 24 * hour, T0 + 40 * hour)
    # A's observations end at hour 30, B's go on
    assert got.filter(station_id="A")["ts"].max() == T0 + 30 * hour
    assert got.filter(station_id="B").height == 30
    # A has nothing after hour 30 yet: asked again (its weather may arrive late), B not
    last_obs["A"] = T0 + 60 * hour
    got = cache.get(["A", "B"], T0 + 10 * hour, T0 + 40 * hour)
    assert calls[2] == (["A"], T0 + 31 * hour, T0 + 40 * hour)
    assert got.filter(station_id="A").height == 30
    # hours asked for and not there are not asked for again within ``retry_s`` (a
    # re-delivery, another batch of the same hours); newer hours are
    slow = temperature.TemperatureCache(load, retry_s=3600.0)
    slow.get(["C"], T0, T0 + 2 * hour)
    slow.get(["C"], T0 + hour, T0 + 2 * hour)
    assert calls[3:] == [(["C"], T0, T0 + 2 * hour)]
    slow.get(["C"], T0 + hour, T0 + 3 * hour)
    assert calls[4:] == [(["C"], T0 + hour, T0 + 3 * hour)]
