"""Baselines through the real store: two London households and the London Dark Sky
temperatures loaded with ``metrify ingest``, then ``metrify baseline`` and the
``baselines`` batch job, checked against figures computed here from the files."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import itertools
import json
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import LONDON_MAP, shared_data

pytestmark = [pytest.mark.realdata]
runner = CliRunner()
LONDON = ZoneInfo("Europe/London")
STATION = "LHR"


def invoke(*args: str) -> str:
    done = runner.invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done.stdout


def read_days(path: Path) -> dict[dt.date, tuple[float, int]]:
    """Per local day: kWh and number of half-hours, from the file itself."""
    out: dict[dt.date, list[float]] = defaultdict(list)
    seen = set()
    with gzip.open(path, "rt") as fh:
        next(fh)
        for line in fh:
            _, ts, value = (p.strip() for p in line.split(","))
            try:
                kwh = float(value)
            except ValueError:
                continue
            when = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)
            if when in seen:
                continue
            seen.add(when)
            out[when.astimezone(LONDON).date()].append(kwh)
    return {d: (sum(v), len(v)) for d, v in out.items()}


def day_hours(day: dt.date) -> float:
    start = dt.datetime.combine(day, dt.time(), LONDON)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), LONDON)
    return (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() / 3600


@pytest.fixture
def london(
    settings: Settings, database_url: str, tmp_path: Path
) -> tuple[list[str], dict[str, dict], dict]:
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:2]
    meters = [p.name.split(".")[0] for p in files]
    (tmp_path / "meters.csv").write_text(
        "meter_id,station_id,tariff,timezone\n"
        + "".join(f"{m},{STATION},Std,Europe/London\n" for m in meters)
    )
    # 2013's hours of the Dark Sky file (UTC, °C), the columns the store takes
    weather_csv = tmp_path / "weather.csv"
    temps: dict[dt.datetime, float] = {}
    with open(shared_data() / "london-weather" / "weather_hourly_darksky.csv") as fh:
        for row in csv.DictReader(fh):
            if row["time"].startswith("2013") and row["temperature"] not in ("", "NULL"):
                when = dt.datetime.fromisoformat(row["time"]).replace(tzinfo=dt.UTC)
                temps[when] = float(row["temperature"])
    weather_csv.write_text(
        "ts,temperature_c\n" + "".join(f"{t.isoformat()},{v}\n" for t, v in temps.items())
    )
    invoke("ingest", "meters", str(tmp_path / "meters.csv"))
    invoke("ingest", "weather", str(weather_csv), "--set", f"station_id={STATION}")
    invoke("ingest", "readings", *map(str, files), *LONDON_MAP)
    days = {m: read_days(p) for m, p in zip(meters, files, strict=True)}
    # what VEE changed, as stored: a gap's estimate counts, a rejected reading does not
    with psycopg.connect(database_url) as conn:
        for meter, ts, status, kwh in conn.execute(
            "SELECT meter_id, ts, status, import_kwh FROM readings"
            " WHERE status IN ('rejected', 'estimated') AND import_kwh IS NOT NULL"
        ):
            day = ts.astimezone(LONDON).date()
            total, n = days[meter].get(day, (0.0, 0))
            sign = 1 if status == "estimated" else -1
            days[meter][day] = (total + sign * kwh, n + sign)
    # the day's mean temperature from the file's hours, local days; an hour missing
    # between observations at most 3 hours apart is filled by linear interpolation
    filled = dict(temps)
    times = sorted(temps)
    for a, b in itertools.pairwise(times):
        gap = int((b - a).total_seconds() // 3600)
        if 1 < gap <= 4:
            for k in range(1, gap):
                filled[a + dt.timedelta(hours=k)] = temps[a] + (temps[b] - temps[a]) * k / gap
    by_day: dict[dt.date, list[float]] = defaultdict(list)
    for when, value in filled.items():
        by_day[when.astimezone(LONDON).date()].append(value)
    return meters, days, {d: float(np.mean(v)) for d, v in by_day.items()}


def usable(days: dict[dt.date, tuple[float, int]], temp: dict, lo: dt.date, hi: dt.date):
    """Days with >= 90 % of their half-hours and a temperature: day -> (kWh scaled, T)."""
    out = {}
    for day, (kwh, n) in days.items():
        cover = min(n / (2 * day_hours(day)), 1.0)
        if lo <= day < hi and cover >= 0.9 and day in temp:
            out[day] = (kwh / cover, temp[day])
    return out


def predict(params: dict, t: float, day: dt.date) -> float:
    """The daily model's formula, written out from its parameters: the line of the
    segment (months, and day type when weekdays and weekends are apart) the day is in."""
    weekend = day.isoweekday() >= 6
    (seg,) = [
        s
        for s in params["segments"]
        if day.month in s["months"] and (s["days"] == "all" or (s["days"] == "weekend") == weekend)
    ]
    use = seg["intercept"]
    if seg["heating_slope"] is not None:
        use += seg["heating_slope"] * max(seg["heating_balance_c"] - t, 0.0)
    if seg["cooling_slope"] is not None:
        use += seg["cooling_slope"] * max(t - seg["cooling_balance_c"], 0.0)
    if seg["weekend_shift"] is not None and weekend:
        use += seg["weekend_shift"]
    return use


def test_fit_weather_effect_savings_and_the_job(
    london: tuple[list[str], dict, dict], conn: psycopg.Connection
) -> None:
    meters, days, temp = london
    meter = meters[0]
    lo, hi = dt.date(2013, 1, 1), dt.date(2014, 1, 1)

    # fit: n is the file's usable days, and CV(RMSE) / NMBE follow from the parameters
    fits = [
        json.loads(line)
        for line in invoke("baseline", "fit", "--meter", meter, "--from", "2013-01-01",
                           "--to", "2014-01-01", "--save", "--json").splitlines()
    ]  # fmt: skip
    daily = next(f for f in fits if f["model"] == "daily")
    hourly = next(f for f in fits if f["model"] == "hourly")
    want = usable(days[meter], temp, lo, hi)
    assert daily["n"] == len(want) >= 350
    y = np.array([kwh for kwh, _ in want.values()])
    yhat = np.array([predict(daily["params"], t, d) for d, (_, t) in want.items()])
    p = daily["p"]
    assert daily["cvrmse"] == pytest.approx(
        np.sqrt(((y - yhat) ** 2).sum() / (y.size - p)) / y.mean(), rel=1e-6
    )
    assert daily["nmbe"] == pytest.approx((y - yhat).sum() / ((y.size - p) * y.mean()), abs=1e-9)
    # a London household heats: the search finds a heating balance point in the grid
    assert daily["params"]["heating_balance_c"] is not None
    assert 8 * 24 * 7 * 4 < hourly["n"] <= 8760
    assert 0 < hourly["cvrmse"] < 3
    stored = conn.execute(
        "SELECT model, n, cvrmse FROM baseline_fits WHERE meter_id = %s ORDER BY model", (meter,)
    ).fetchall()
    assert stored == [("daily", daily["n"], pytest.approx(daily["cvrmse"])),
                      ("hourly", hourly["n"], pytest.approx(hourly["cvrmse"]))]  # fmt: skip

    # weather effect over the fleet (both meters): June against May
    effect = json.loads(
        invoke("baseline", "weather-effect", "--fleet", "--month", "2013-06", "--json")
    )
    assert (effect["month"], effect["against"], effect["meters"]) == ("2013-06", "2013-05", 2)
    june = sum(
        np.mean(
            [k for k, _ in usable(days[m], temp, dt.date(2013, 6, 1), dt.date(2013, 7, 1)).values()]
        )
        for m in meters
    )
    may = sum(
        np.mean(
            [k for k, _ in usable(days[m], temp, dt.date(2013, 5, 1), dt.date(2013, 6, 1)).values()]
        )
        for m in meters
    )
    assert effect["actual_per_day"] == pytest.approx(june)
    assert effect["change_per_day"] == pytest.approx(june - may)
    parts = effect["weather_per_day"] + effect["calendar_per_day"] + effect["other_per_day"]
    assert parts == pytest.approx(june - may)
    # June was warmer than May: less heating, the weather's part is a fall in use
    assert effect["mean_temperature_c"] > effect["mean_temperature_against_c"]
    assert effect["weather_per_day"] <= 0

    # savings after a (pretend) change on 1 July: actual is the file's use after it
    got = json.loads(
        invoke("baseline", "savings", "--meter", meter, "--change", "2013-07-01",
               "--baseline-days", "181", "--to", "2014-01-01", "--json")
    )  # fmt: skip
    after = usable(days[meter], temp, dt.date(2013, 7, 1), hi)
    assert got["reporting_points"] == len(after)
    assert got["actual_kwh"] == pytest.approx(sum(k for k, _ in after.values()))
    assert got["savings_kwh"] == pytest.approx(got["predicted_kwh"] - got["actual_kwh"])
    assert got["uncertainty_kwh"] > 0

    # the same answers as tables and lines for a person
    table = invoke("baseline", "fit", "--meter", meter, "--from", "2013-01-01",
                   "--to", "2014-01-01", "--model", "daily")  # fmt: skip
    assert "CV(RMSE)" in table and "HDD(" in table
    assert "daily" in invoke("baseline", "show", "--meter", meter)
    text = invoke("baseline", "weather-effect", "--meter", meter, "--month", "2013-06")
    assert "2013-06 against 2013-05" in text and "weather" in text
    text = invoke("baseline", "savings", "--meter", meter, "--change", "2013-07-01",
                  "--baseline-days", "181", "--to", "2014-01-01")  # fmt: skip
    assert "savings" in text and "at 90 %" in text
    # the days the baseline really had, beside the period asked for
    assert f"({got['baseline_points']} days with data, CV(RMSE)" in text

    # the batch job: both meters, both models, the year up to its day
    done = runner.invoke(
        app, ["batch", "run", "--date", "2013-12-31", "--job", "baselines", "--json"]
    )
    assert done.exit_code == 0, done.output
    run = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert run["status"] == "ok" and run["details"]["fits"] == 4
    rows = conn.execute(
        "SELECT meter_id, model, period_start, period_end FROM baseline_fits"
        " WHERE period_end = '2014-01-01' ORDER BY 1, 2"
    ).fetchall()
    assert rows == [(m, k, dt.date(2013, 1, 1), dt.date(2014, 1, 1))
                    for m in meters for k in ("daily", "hourly")]  # fmt: skip


def test_bad_questions_are_one_line_errors(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "meters.csv").write_text(
        "meter_id,station_id,timezone\nLINKED,LHR,Europe/London\nALONE,,Europe/London\n"
    )
    invoke("ingest", "meters", str(tmp_path / "meters.csv"))
    for args, message in (
        # one meter named as the other commands name it, not "meter NOPE has no meters"
        (["fit", "--meter", "NOPE"], "error: no meter NOPE"),
        (["fit", "--meter", "ALONE"], "meter ALONE is not linked to a weather station"),
        (["weather-effect", "--month", "2013-06", "--segment", "X"], "segment X has no meters"),
        (["fit", "--meter", "LINKED"], "has no readings"),
        (["weather-effect", "--month", "2013-13", "--fleet"], "YYYY-MM"),
        (["weather-effect", "--month", "2013-06"], "exactly one"),
        (["weather-effect", "--month", "2013-06", "--against", "2013-06", "--fleet"],
         "is the month itself"),
        (["savings", "--meter", "LINKED", "--change", "July"], "YYYY-MM-DD"),
        (["savings", "--meter", "LINKED", "--change", "2013-07-01", "--baseline-days", "3"],
         "at least 30 days"),
        (["savings", "--meter", "LINKED", "--change", "0001-01-02"], "calendar"),
        (["fit", "--meter", "LINKED", "--model", "weekly"], "daily, hourly or both"),
    ):  # fmt: skip
        done = runner.invoke(app, ["baseline", *args])
        assert done.exit_code == 2, (args, done.output)
        assert message in done.output, (args, done.output)
        assert "Traceback" not in done.output
