"""The spike rule on real households: ordinary cooking is not a spike, a glitch is.

Forty London households (Low Carbon London, 2013, half-hourly), each a year judged in
one pass as a file load judges it. Their readings are real use, so every reading the rule
marks is a false alarm; before ``spike_peak_factor`` the rule marked 0.49 % of them (an
evening's 1 kWh against an hour whose median is a quiet evening's). A glitch of 50x the
reading (or the home's mean, when the reading is near zero) is put at 60 places drawn
from a fixed seed; those must be found.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.contracts.records import Quality
from metrify.quality.rules import validate
from metrify.settings.vee import VeeConfig
from support.realdata import as_readings, london_readings

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPIKE = int(Quality.SPIKE)


@pytest.fixture(scope="module")
def households() -> pl.DataFrame:
    return london_readings(first=40)


def vee(data: pl.DataFrame) -> pl.DataFrame:
    frame = as_readings(data).with_columns(
        quality=pl.lit(0, pl.Int32), source=pl.lit("test"), _ctx=pl.lit(False)
    )
    meters = pl.DataFrame({"meter_id": data["meter_id"].unique(), "timezone": "Europe/London"})
    return validate(frame, meters, VeeConfig(), NOW)


def test_real_household_readings_are_rarely_spikes(households: pl.DataFrame) -> None:
    out = vee(households).filter(pl.col("import_kwh").is_not_null())
    assert out.height == households.height  # every reading judged (gap rows aside)
    share = out.select(((pl.col("quality") & SPIKE) != 0).mean()).item()
    assert share < 0.001  # under 0.1 % of real readings (it was 0.49 %)


def test_glitches_in_real_households_are_spikes(households: pl.DataFrame) -> None:
    # only from the second month: the rule needs spike_min_samples of history per hour
    late = households.filter(pl.col("ts") >= dt.datetime(2013, 2, 1, tzinfo=dt.UTC))
    picks = late.sample(n=60, seed=24).select("meter_id", "ts", _glitch=pl.lit(True))
    mean = pl.col("import_kwh").mean().over("meter_id")
    glitched = (
        households.join(picks, on=["meter_id", "ts"], how="left")
        .with_columns(
            import_kwh=pl.when(pl.col("_glitch"))
            .then(50.0 * pl.max_horizontal("import_kwh", mean))
            .otherwise("import_kwh")
        )
        .drop("_glitch")
    )
    out = vee(glitched)
    found = out.join(picks, on=["meter_id", "ts"]).select((pl.col("quality") & SPIKE) != 0)
    assert found.to_series().mean() >= 0.9  # type: ignore[operator]
