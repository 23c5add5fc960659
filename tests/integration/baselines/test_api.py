"""``GET /v1/baselines/...``: answers, region scope and errors, on a store seeded with
two meters whose daily use follows a known heating line."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from support.api import Api

START = dt.date(2024, 1, 1)
DAYS = 120


def temperature(day: int) -> float:
    """Two 60-day "seasons" from -2 to 20 °C, with a weekly wobble: any 60 days see
    both sides of the balance point."""
    return 9.0 + 9.0 * np.sin(day * 2 * np.pi / 60) + 2.0 * np.sin(day * 2 * np.pi / 7)


def daily_use(day: int) -> float:
    """5 kWh a day, and 0.5 kWh per degree below 15 °C."""
    return 5.0 + 0.5 * max(15.0 - temperature(day), 0.0)


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    api.add_user("north", "analyst", ["north"])
    with api.conn() as conn:
        conn.execute("INSERT INTO weather_stations (station_id, name) VALUES ('S1', 'one')")
        conn.execute(
            "INSERT INTO meters (meter_id, region, station_id, tariff, interval_s, timezone)"
            " VALUES ('B-N', 'north', 'S1', 'std', 3600, 'UTC'),"
            " ('B-S', 'south', 'S1', 'std', 3600, 'UTC')"
        )
        for month in range(1, 6):
            for table in ("readings", "weather_observations"):
                conn.execute(
                    "SELECT metrify_ensure_partition(%s, %s)", (table, dt.date(2024, month, 1))
                )
        rows, temps = [], []
        for day in range(DAYS):
            for hour in range(24):
                ts = dt.datetime.combine(START + dt.timedelta(days=day), dt.time(hour), dt.UTC)
                temps.append(("S1", ts, temperature(day), "test"))
                for meter in ("B-N", "B-S"):
                    rows.append((meter, ts, 3600, daily_use(day) / 24, "test"))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO readings (meter_id, ts, interval_s, import_kwh, source)"
                " VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
            cur.executemany(
                "INSERT INTO weather_observations (station_id, ts, temperature_c, source)"
                " VALUES (%s, %s, %s, %s)",
                temps,
            )


def get(api: Api, who: str, path: str, **params: object) -> tuple[int, object]:
    response = api.client.get(path, params=params, headers=api.headers(who))
    return response.status_code, response.json()


def test_fit_recovers_the_heating_line(api: Api) -> None:
    code, body = get(api, "admin", "/v1/baselines/fit", meter="B-N", model="daily",
                     **{"from": "2024-01-01", "to": "2024-04-30"})  # fmt: skip
    assert code == 200, body
    assert isinstance(body, list) and len(body) == 1
    params = body[0]["params"]
    assert params["kind"] == "hdd_only"
    assert params["heating_balance_c"] == pytest.approx(15.0, abs=0.5)
    assert params["heating_slope"] == pytest.approx(0.5, abs=0.02)
    assert body[0]["n"] == DAYS
    assert body[0]["cvrmse"] < 0.02
    code, body = get(api, "admin", "/v1/baselines/fits", meter="B-N")
    assert (code, body) == (200, [])


def test_savings_of_no_change_are_not_significant(api: Api) -> None:
    code, body = get(api, "admin", "/v1/baselines/savings", meter="B-N", change="2024-03-01",
                     baseline_days=60, to="2024-04-30")  # fmt: skip
    assert code == 200, body
    assert isinstance(body, dict)
    assert abs(body["savings_kwh"]) <= body["uncertainty_kwh"] + 1e-6


def test_weather_effect_of_the_fleet_adds_both_meters(api: Api) -> None:
    code, body = get(api, "admin", "/v1/baselines/weather-effect", month="2024-03",
                     fleet="true")  # fmt: skip
    assert code == 200, body
    assert isinstance(body, dict)
    assert (body["against"], body["meters"]) == ("2024-02", 2)
    march = np.mean([daily_use(d) for d in range(60, 91)])
    february = np.mean([daily_use(d) for d in range(31, 60)])
    assert body["actual_per_day"] == pytest.approx(2 * march, rel=1e-3)
    # use is the weather's alone: the whole change is weather
    assert body["weather_per_day"] == pytest.approx(2 * (march - february), abs=0.05)


def test_scope_and_errors(api: Api) -> None:
    assert get(api, "north", "/v1/baselines/fit", meter="B-N", model="daily")[0] == 200
    assert get(api, "north", "/v1/baselines/fit", meter="B-S")[0] == 404
    assert get(api, "north", "/v1/baselines/weather-effect", month="2024-03",
               fleet="true")[0] == 403  # fmt: skip
    assert get(api, "admin", "/v1/baselines/fit", meter="NOPE")[0] == 404
    assert (
        get(api, "admin", "/v1/baselines/weather-effect", month="2024-13", fleet="true")[0] == 422
    )
    assert get(api, "admin", "/v1/baselines/weather-effect", month="2024-03")[0] == 400
    code, body = get(api, "admin", "/v1/baselines/savings", meter="B-N", change="2024-01-05")
    assert code == 422 and "days" in str(body)
