"""Voltage and frequency against EN 50160, from the resolution the data has.

**Supply voltage (LV and MV)**: during each period of one week, 95% of the 10-minute
mean r.m.s. values shall lie within nominal ±10% (and, for LV, all of them within
+10%/-15%). Here a week is an ISO week in UTC (Monday 00:00); weeks cut by the range
are reported with their coverage. 10-minute values are built as IEC 61000-4-30 does,
the quadratic mean of the finer r.m.s. values in each 10-minute window aligned to the
hour. When the data is coarser than 10 minutes (a 30-minute mean), each interval stands
for its 10-minute windows; that is **not** the standard's measurement: a coarse mean
inside the band can hide 10-minute excursions, so ``exact`` says False and a pass is an
indication, while a coarse mean outside the band does prove at least one 10-minute
value outside (a mean of values inside a band lies inside it).

**Frequency (synchronous systems)**: 10-second means within 50 Hz ±1% (49.5-50.5 Hz)
for 99.5% of a year and within +4%/-6% (47-52 Hz) for 100% of the time. The contract's
shortest interval is 60 s, so 10-second means are never available: shares are time
shares of the interval means. An interval mean outside a band proves a 10-second mean
outside it (so a failure of the 100% criterion is proven by one); a mean inside proves
nothing about the 10-second values within it, so a pass is an upper bound on what the
standard would find. A year is a calendar year in UTC, reported with its coverage.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = ["FrequencyYear", "frequency_compliance", "voltage_compliance"]

TEN_MINUTES = 600
WEEK_S = 7 * 86400
#: EN 50160 limits
VOLTAGE_BAND = 0.10
VOLTAGE_SHARE = 0.95
LV_LOW_ALL = 0.15
FREQ_BAND = 0.01
FREQ_SHARE = 0.995
FREQ_HIGH_ALL, FREQ_LOW_ALL = 0.04, 0.06


def _ten_minute(frame: pl.DataFrame, value: str, keys: list[str]) -> pl.DataFrame:
    """10-minute values ``keys``, ``ts``, ``v``, ``weight`` (how many 10-minute windows
    the value stands for) and ``exact`` (built from intervals of 10 minutes or less)."""
    rows = frame.filter(pl.col(value).is_not_null())
    fine = rows.filter(pl.col("interval_s") <= TEN_MINUTES)
    coarse = rows.filter(pl.col("interval_s") > TEN_MINUTES)
    parts = []
    if not fine.is_empty():
        parts.append(
            fine.group_by(*keys, pl.col("ts").dt.truncate("10m"))
            .agg(
                v=(pl.col(value).pow(2) * pl.col("interval_s"))
                .sum()
                .truediv(pl.col("interval_s").sum())
                .sqrt(),
                covered=pl.col("interval_s").sum(),
            )
            # a window needs most of its time measured to count as a 10-minute value
            .filter(pl.col("covered") >= TEN_MINUTES // 2)
            .select(*keys, "ts", "v", weight=pl.lit(1.0), exact=pl.lit(True))
        )
    if not coarse.is_empty():
        parts.append(
            coarse.select(
                *keys,
                "ts",
                v=pl.col(value).cast(pl.Float64),
                weight=(pl.col("interval_s") / TEN_MINUTES).cast(pl.Float64),
                exact=pl.lit(False),
            )
        )
    if not parts:
        schema: dict[str, Any] = {
            **{k: frame.schema[k] for k in keys},
            "ts": frame.schema["ts"],
            "v": pl.Float64,
            "weight": pl.Float64,
            "exact": pl.Boolean,
        }
        return pl.DataFrame(schema=schema)
    return pl.concat(parts)


def voltage_compliance(
    frame: pl.DataFrame,
    value: str,
    nominal: float | pl.Expr,
    *,
    keys: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Per ISO week (and per ``keys``, e.g. ``meter_id``) the EN 50160 voltage test of
    ``value`` (``voltage_v`` of meters or ``voltage_kv`` of a node) against ``nominal``
    (a number, or an expression such as a column of nominal values): ``week`` (Monday),
    ``values`` (10-minute values), ``coverage`` (of the week's 1008), ``within_10``
    (share within ±10%), ``within_lv_all`` (share within +10%/-15%), ``min_v``,
    ``max_v``, ``compliant`` (95% within ±10%), ``lv_all_compliant`` (every value
    within +10%/-15%), ``exact`` (every value built from 10 minutes or finer)."""
    ks = list(keys)
    nominal_expr = nominal if isinstance(nominal, pl.Expr) else pl.lit(float(nominal))
    tens = _ten_minute(frame.with_columns(_nominal=nominal_expr), value, [*ks, "_nominal"]).filter(
        pl.col("_nominal") > 0
    )
    dev = pl.col("v") / pl.col("_nominal") - 1.0
    return (
        tens.with_columns(
            week=pl.col("ts").dt.truncate("1w").dt.date(),
            in10=dev.abs() <= VOLTAGE_BAND,
            inlv=(dev <= VOLTAGE_BAND) & (dev >= -LV_LOW_ALL),
        )
        .group_by(*ks, "week")
        .agg(
            values=pl.col("weight").sum(),
            within_10=(pl.col("weight") * pl.col("in10")).sum() / pl.col("weight").sum(),
            within_lv_all=(pl.col("weight") * pl.col("inlv")).sum() / pl.col("weight").sum(),
            min_v=pl.col("v").min(),
            max_v=pl.col("v").max(),
            exact=pl.col("exact").all(),
        )
        .with_columns(
            coverage=pl.col("values") / (WEEK_S / TEN_MINUTES),
            compliant=pl.col("within_10") >= VOLTAGE_SHARE,
            lv_all_compliant=pl.col("within_lv_all") >= 1.0,
        )
        .select(
            *ks,
            "week",
            "values",
            "coverage",
            "within_10",
            "within_lv_all",
            "min_v",
            "max_v",
            "compliant",
            "lv_all_compliant",
            "exact",
        )
        .sort([*ks, "week"])
    )


@dataclass(frozen=True)
class FrequencyYear:
    """One calendar year's frequency test (time shares of the interval means)."""

    year: int
    hours: float
    coverage: float
    resolution_s: int
    within_1pct: float
    within_4_6pct: float
    min_hz: float
    max_hz: float
    compliant_995: bool
    compliant_all: bool
    proven_outside_1pct_hours: float


def frequency_compliance(frame: pl.DataFrame, nominal_hz: float = 50.0) -> list[FrequencyYear]:
    """EN 50160's frequency test per calendar year of ``frame`` (``ts``,
    ``interval_s``, ``frequency_hz``)."""
    rows = frame.filter(pl.col("frequency_hz").is_not_null())
    if rows.is_empty():
        return []
    dev = pl.col("frequency_hz") / nominal_hz - 1.0
    years = (
        rows.with_columns(
            year=pl.col("ts").dt.year(),
            in1=dev.abs() <= FREQ_BAND,
            in46=(dev <= FREQ_HIGH_ALL) & (dev >= -FREQ_LOW_ALL),
        )
        .group_by("year")
        .agg(
            secs=pl.col("interval_s").sum(),
            in1=(pl.col("interval_s") * pl.col("in1")).sum(),
            in46=(pl.col("interval_s") * pl.col("in46")).sum(),
            lo=pl.col("frequency_hz").min(),
            hi=pl.col("frequency_hz").max(),
            res=pl.col("interval_s").max(),
        )
        .sort("year")
    )
    out = []
    for r in years.iter_rows(named=True):
        year = int(r["year"])
        year_s = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days * 86400
        secs = float(r["secs"])
        w1, w46 = r["in1"] / secs, r["in46"] / secs
        out.append(
            FrequencyYear(
                year=int(r["year"]),
                hours=secs / 3600.0,
                coverage=secs / year_s,
                resolution_s=int(r["res"]),
                within_1pct=w1,
                within_4_6pct=w46,
                min_hz=float(r["lo"]),
                max_hz=float(r["hi"]),
                compliant_995=w1 >= FREQ_SHARE,
                compliant_all=w46 >= 1.0,
                proven_outside_1pct_hours=(secs - r["in1"]) / 3600.0,
            )
        )
    return out
