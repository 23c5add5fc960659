"""The split daily model and the shrunk hourly one on real London households: on
weeks they did not see, they predict no worse than the plain CalTRACK fits they
extend in the middle, and within a stated margin for every household.

Every fourth ISO week of 2013 is held out (as ``bench/baselines.py`` does); the
models fit on the others. The claim: over these households the median ratio of errors
(new / plain) is at most 1; the split may cost one household at most 25 % of the
unsplit model's error (a split chosen on the training weeks can still lose on the
held-out ones: MAC000021's summer segment does), the hourly shrinkage at most 10 %
(it pulls a strongly seasonal household's months towards its year)."""

from __future__ import annotations

import gzip
import io

import numpy as np
import polars as pl
import pytest

from metrify.analytics.baselines import fit_daily, fit_hourly, one_thread
from metrify.analytics.baselines.prepare import daily_frame, hourly_frame
from support.realdata import shared_data

TZ = "Europe/London"
METERS = ("MAC000002", "MAC000003", "MAC000006", "MAC000013", "MAC000021", "MAC000022")


def household(meter: str) -> pl.DataFrame:
    with gzip.open(shared_data() / "london-smart-meters-2013" / f"{meter}.csv.gz", "rb") as fh:
        raw = pl.read_csv(io.BytesIO(fh.read()), infer_schema_length=0)
    return (
        raw.select(
            ts=pl.col("tstp").str.strip_chars().str.to_datetime(time_unit="us")
            .dt.replace_time_zone("UTC"),
            kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
        )
        .drop_nulls()
        .unique("ts", keep="first")
    )  # fmt: skip


@pytest.fixture(scope="module")
def weather() -> pl.DataFrame:
    path = shared_data() / "london-weather" / "weather_hourly_darksky.csv"
    frame = pl.read_csv(path, null_values=["NULL"], infer_schema_length=None)
    return frame.select(
        ts=pl.col("time").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC"),
        temperature_c=pl.col("temperature").cast(pl.Float64),
    ).drop_nulls()


def cvrmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - yhat) ** 2)) / y.mean())


def held_out(days: pl.Series) -> np.ndarray:
    return ((days.dt.week() % 4) == 0).to_numpy()


def test_split_and_shrunk_models_predict_unseen_weeks_no_worse(weather: pl.DataFrame) -> None:
    daily_ratio, hourly_ratio = [], []
    with one_thread():
        for meter in METERS:
            use = household(meter)
            days = daily_frame(use, weather, TZ)
            test = held_out(days["day"])
            train, unseen = days.filter(~test), days.filter(test)
            y = unseen["kwh"].to_numpy()
            split = cvrmse(y, fit_daily(train).predict_days(unseen))
            plain = cvrmse(y, fit_daily(train, split=False).predict_days(unseen))
            assert split <= 1.25 * plain, (meter, split, plain)
            daily_ratio.append(split / plain)

            hours = hourly_frame(use, weather, TZ)
            test = held_out(hours["ts"].dt.convert_time_zone(TZ).dt.date())
            train, unseen = hours.filter(~test), hours.filter(test)
            y = unseen["kwh"].to_numpy()
            shrunk = cvrmse(y, fit_hourly(train).predict(unseen))
            caltrack = cvrmse(y, fit_hourly(train, shrink=False).predict(unseen))
            assert shrunk <= 1.10 * caltrack, (meter, shrunk, caltrack)
            hourly_ratio.append(shrunk / caltrack)
    assert np.median(daily_ratio) <= 1.0
    # what the split is for: a household whose seasons differ is predicted much better
    assert min(daily_ratio) < 0.9
    assert np.median(hourly_ratio) < 1.0
