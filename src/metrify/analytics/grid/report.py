"""Each grid analysis as one JSON-ready answer, so the CLI and the API say the same.

The doors read the frames from the store and hand them here; what comes back is plain
dicts and lists (datetimes stay datetimes: the doors' JSON encoders write them as ISO
8601). A figure that cannot be computed is None, never a made-up zero.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from metrify.analytics.grid.coincidence import peak_drivers
from metrify.analytics.grid.compliance import frequency_compliance, voltage_compliance
from metrify.analytics.grid.demand import total_kw
from metrify.analytics.grid.flex import PeakWindow, TariffEffect, shift_peak
from metrify.analytics.grid.loading import duration_curve, loading
from metrify.analytics.grid.losses import losses

__all__ = [
    "VOLTAGE_METHOD",
    "compliance_answer",
    "flex_answer",
    "loading_answer",
    "losses_answer",
    "peak_drivers_answer",
]

#: how the EN 50160 figures were computed from the resolution stored
VOLTAGE_METHOD = (
    "EN 50160: voltage per ISO week (UTC), 95% of 10-minute r.m.s. means within ±10% of "
    "nominal (LV: all within +10%/-15%); 10-minute values are quadratic means of finer "
    "rows, and coarser rows stand for their 10-minute windows (exact=false: a coarse mean "
    "inside the band can hide 10-minute excursions). Frequency per calendar year (UTC): "
    "99.5% of 10-second means within ±1%, 100% within +4%/-6%; stored rows are interval "
    "means of 60 s or more, so a mean outside a band proves a violation and a mean inside "
    "proves nothing about the 10-second values within it (a pass is an upper bound)."
)


def loading_answer(
    node: dict[str, Any],
    series: pl.DataFrame,
    *,
    percentile: float = 0.99,
    points: int = 21,
    readings: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Utilisation, headroom and the load-duration curve of the node's measured load
    (``basis: "node"``), or, when the node has no measured load in the range and
    ``readings`` of its meters are given, of their summed demand (``basis: "meters"``,
    as peak-drivers does). A feeder without SCADA is most LV feeders: its capacity
    against its meters' coincident load is the question, not an answer of nulls."""
    basis = "node"
    if series.filter(pl.col("load_mw").is_not_null()).is_empty() and readings is not None:
        total = total_kw(readings)
        if not total.is_empty():
            basis = "meters"
            series = total.select("ts", "interval_s", load_mw=pl.col("kw") / 1000.0)
    got = loading(series, node.get("capacity_mw"), percentile=percentile)
    curve = duration_curve(series, got.capacity_mw, points=points)
    return {
        "node_id": node["node_id"],
        "basis": basis,
        **dataclasses.asdict(got),
        "duration_curve": curve.to_dicts(),
    }


def peak_drivers_answer(
    node: dict[str, Any],
    series: pl.DataFrame,
    readings: pl.DataFrame,
    *,
    top: int = 1,
    limit: int | None = 20,
) -> dict[str, Any]:
    """The meters that make the node's peak, largest share first (``limit`` of them)."""
    got = peak_drivers(readings, series, top=top)
    meters = got.meters if limit is None else got.meters.head(limit)
    out = dataclasses.asdict(dataclasses.replace(got, meters=pl.DataFrame()))
    out.update(
        node_id=node["node_id"],
        meters_count=got.meters.height,
        meters=meters.to_dicts(),
    )
    return out


def losses_answer(
    node: dict[str, Any],
    series: pl.DataFrame,
    readings: pl.DataFrame,
    meters: pl.DataFrame,
    *,
    tz: str,
) -> dict[str, Any]:
    """Per local day and over the range: node energy against its meters', with the
    completeness that says whether a difference is a loss or missing data."""
    got = losses(series, readings, meters, tz=tz)
    out = dataclasses.asdict(dataclasses.replace(got, days=pl.DataFrame()))
    out.update(node_id=node["node_id"], tz=tz, days=got.days.to_dicts())
    return out


def compliance_answer(
    node: dict[str, Any],
    series: pl.DataFrame,
    readings: pl.DataFrame,
    meters: pl.DataFrame | None = None,
    *,
    lv_nominal_v: float = 230.0,
    nominal_hz: float = 50.0,
) -> dict[str, Any]:
    """EN 50160 voltage per week of the node (against its ``nominal_kv``) and of its
    meters (against each meter's ``nominal_voltage_v`` in ``meters``, else
    ``lv_nominal_v``), and frequency per year of the node's series."""
    nominal_kv = node.get("nominal_kv")
    node_weeks = (
        voltage_compliance(series, "voltage_kv", float(nominal_kv)).to_dicts() if nominal_kv else []
    )
    meter_weeks = voltage_compliance(readings, "voltage_v", lv_nominal_v, keys=("meter_id",))
    summary = (
        meter_weeks.group_by("meter_id")
        .agg(
            weeks=pl.len(),
            weeks_compliant=pl.col("compliant").sum(),
            worst_within_10=pl.col("within_10").min(),
            min_v=pl.col("min_v").min(),
            max_v=pl.col("max_v").max(),
            exact=pl.col("exact").all(),
        )
        .sort(["weeks_compliant", "worst_within_10", "meter_id"])
    )
    return {
        "node_id": node["node_id"],
        "nominal_kv": nominal_kv,
        "lv_nominal_v": lv_nominal_v,
        "nominal_hz": nominal_hz,
        "method": VOLTAGE_METHOD,
        "node_voltage_weeks": node_weeks,
        "meter_voltage": {
            "meters": summary.height,
            "meter_weeks": meter_weeks.height,
            "meter_weeks_compliant": int(meter_weeks["compliant"].sum()),
            "per_meter": summary.to_dicts(),
        },
        "frequency_years": [
            dataclasses.asdict(y) for y in frequency_compliance(series, nominal_hz)
        ],
    }


def flex_answer(
    node: dict[str, Any],
    readings: pl.DataFrame,
    *,
    share: float,
    tz: str,
    window: PeakWindow,
    into: PeakWindow,
    effect: TariffEffect | None = None,
) -> dict[str, Any]:
    """The meters' summed peak before and after moving ``share`` of their peak-window
    energy into ``into``; ``effect`` is where the share came from, when observed."""
    got = shift_peak(readings, share, tz=tz, window=window, into=into)
    out = dataclasses.asdict(dataclasses.replace(got, after=pl.DataFrame()))
    out.pop("after")
    out.update(
        node_id=node["node_id"],
        tz=tz,
        window=f"{window.start:g}-{window.end:g}",
        into=f"{into.start:g}-{into.end:g}",
        basis="meters",
        share_source="observed ToU vs Std peak share" if effect else "given",
        tariff_effect=dataclasses.asdict(effect) if effect else None,
    )
    return out
