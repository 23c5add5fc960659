"""Estimates of real households come out the same, to the last bit, on every run.

A year of 100 London households (Low Carbon London, 2013, half-hourly) judged in one
batch, as a file load of them now is, has 920 gap rows to estimate. The estimates'
means once added their references in an order Polars' threads chose (the gaps' order,
and the like-day references' join), so two loads of the same files stored estimates
differing in the last bit (about 200 of the 920), and the lake's checksums of two such
stores differed. Three runs must agree exactly, row order and all.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.contracts.records import READING, Status
from metrify.quality.engine import run_vee
from metrify.settings.vee import VeeConfig
from support.realdata import as_readings, london_readings

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_estimates_of_real_households_are_the_same_on_every_run() -> None:
    data = london_readings()
    batch = as_readings(data).with_columns(source=pl.lit("test"))
    context = pl.DataFrame(
        schema={**READING.schema, "quality": pl.Int32, "status": pl.String, "source": pl.String}
    )
    meters = pl.DataFrame({"meter_id": data["meter_id"].unique(), "timezone": "Europe/London"})
    runs = [run_vee(batch, context, meters, VeeConfig(), NOW) for _ in range(3)]
    estimated = runs[0].filter(pl.col("status") == Status.ESTIMATED.value)
    assert estimated.height > 500  # there is something to compare
    for other in runs[1:]:
        assert other.equals(runs[0])
