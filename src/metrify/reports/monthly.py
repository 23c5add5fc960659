"""The monthly report's figures: one local calendar month of the fleet (or of a region),
gathered from the stores into one :class:`MonthlyReport` the writers draw and print.

What an analyst asks of a month: how much energy each segment (tariff) used and when
its coincident peak was; what a typical weekday and weekend look like per household;
how complete the data was and how much of it is estimated; which anomalies were found
and what became of them; and how close the grid nodes came to their capacity. Every
figure here comes from a stored aggregate or read query, none from the raw readings, so
the report says what the API and the CLI say for the same month.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from metrify.stores import grid_insight
from metrify.stores import month_report as reads
from metrify.stores.pools import Connection

__all__ = [
    "BadReportQuery",
    "Month",
    "MonthlyReport",
    "NoData",
    "build_monthly",
    "parse_month",
]

#: how many of the month's worst anomalies the report lists one by one
TOP_ANOMALIES: Final = 10
#: the share of capacity a node's loading counts as high above
HIGH_LOADING: Final = 0.8
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class BadReportQuery(ValueError):
    """A month, zone or region the report cannot be made for (the caller's fault)."""


class NoData(BadReportQuery):
    """Nothing stored for the month: no readings, grid measurements or anomalies."""


@dataclass(frozen=True)
class Month:
    """A local calendar month: its first day, the first day after it, its zone, and
    the UTC instants those midnights are."""

    first: dt.date
    after: dt.date
    tz: str
    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}"

    @property
    def hours(self) -> float:
        """The month's real length in hours (a clock change makes it one more or less)."""
        return (self.end - self.start).total_seconds() / 3600


def parse_month(text: str, tz: str) -> Month:
    """``YYYY-MM`` in zone ``tz`` as a :class:`Month`; BadReportQuery otherwise."""
    found = _MONTH.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1900:
        raise BadReportQuery(f"--month {text!r}: expected a month like 2013-06")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadReportQuery(
            f"unknown time zone {tz!r} (an IANA name like Europe/London)"
        ) from None
    year, month = int(found.group(1)), int(found.group(2))
    first = dt.date(year, month, 1)
    after = dt.date(year + month // 12, month % 12 + 1, 1)

    def instant(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)

    return Month(first, after, tz, instant(first), instant(after))


@dataclass
class MonthlyReport:
    """Everything a monthly report shows. Frames are small (a month of half-hours per
    segment at most); times in them are local to ``month.tz`` unless named ``*_utc``.

    * ``segments``: segment, meters, kwh, share, peak_kw, peak_at, mean_kw, load_factor
    * ``daily``: day, segment, kwh, peak_kw (the day's highest half-hour)
    * ``profile``: segment, daytype (weekday, weekend), slot (minutes after midnight),
      kw_per_meter (the mean over the month's days of that kind)
    * ``quality``: one row per local day with the counts of :func:`reads.quality_days`
    * ``anomalies``: kind, severity, status, count; ``worst``: the top rows
    * ``grid``: node_id, kind, capacity_mw, peak_mw, peak_at, mean_mw, utilisation,
      hours_above_80, hours_above_100; ``grid_daily``: node_id, day, peak_mw, utilisation
    """

    month: Month
    region: str | None
    segments: pl.DataFrame
    daily: pl.DataFrame
    profile: pl.DataFrame
    quality: pl.DataFrame
    anomalies: pl.DataFrame
    worst: list[dict[str, Any]]
    grid: pl.DataFrame
    grid_daily: pl.DataFrame
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        scope = f"region {self.region}" if self.region else "the whole fleet"
        return f"Metrify monthly report {self.month.label}, {scope}"


def build_monthly(
    conn: Connection,
    month: str,
    *,
    tz: str | None = None,
    fleet_tz: str = "UTC",
    region: str | None = None,
) -> MonthlyReport:
    """The report of local ``month`` (``YYYY-MM``), for the meters of ``region`` or the
    whole fleet. The month is in zone ``tz``, by default the zone most of the meters
    have (a utility's calendar month), else ``fleet_tz``. Raises
    :class:`BadReportQuery` for a bad month or zone or an unknown region,
    :class:`NoData` when nothing is stored for the month."""
    parse_month(month, tz or fleet_tz)  # the month's form, before any query
    if region is not None and not reads.known_region(conn, region):
        raise BadReportQuery(f"no meters in region {region!r}")
    tz = tz or reads.usual_zone(conn, region) or fleet_tz
    when = parse_month(month, tz)
    buckets = reads.segment_buckets(conn, when.start, when.end, region)
    counts = reads.anomaly_counts(conn, when.start, when.end, region)
    nodes = reads.report_nodes(conn, when.start, when.end, region)
    if buckets.is_empty() and counts.is_empty() and not nodes:
        scope = f" in region {region}" if region else ""
        raise NoData(
            f"no data for {when.label}{scope}: no readings, grid measurements or"
            " anomalies are stored in that month"
        )
    local = buckets.with_columns(local=pl.col("bucket").dt.convert_time_zone(tz))
    last = when.after - dt.timedelta(days=1)
    segments = _segments(local, reads.segment_meters(conn, when.first, last, region), when)
    quality = reads.quality_days(conn, when.first, last, region)
    grid, grid_daily = _grid(conn, nodes, when)
    report = MonthlyReport(
        month=when,
        region=region,
        segments=segments,
        daily=_daily(local),
        profile=_profile(local),
        quality=quality,
        anomalies=counts,
        worst=reads.anomaly_top(conn, when.start, when.end, region, TOP_ANOMALIES),
        grid=grid,
        grid_daily=grid_daily,
    )
    report.totals = _totals(report, local)
    return report


def _segments(local: pl.DataFrame, meters: dict[str, int], when: Month) -> pl.DataFrame:
    """Per segment: energy, its share, the coincident peak and when, mean demand and
    load factor (mean over peak)."""
    schema: dict[str, Any] = {
        "segment": pl.String,
        "meters": pl.Int64,
        "kwh": pl.Float64,
        "share": pl.Float64,
        "peak_kw": pl.Float64,
        "peak_at": pl.Datetime("us", when.tz),
        "mean_kw": pl.Float64,
        "load_factor": pl.Float64,
    }
    if local.is_empty():
        return pl.DataFrame(schema=schema)
    total = float(local["kwh"].sum())
    out = (
        local.sort("kw", "local", descending=[True, False])
        .group_by("segment", maintain_order=True)
        .agg(
            kwh=pl.col("kwh").sum(),
            peak_kw=pl.col("kw").first(),
            peak_at=pl.col("local").first(),
        )
        .with_columns(
            meters=pl.col("segment").replace_strict(meters, default=0, return_dtype=pl.Int64),
            share=pl.col("kwh") / total if total else pl.lit(0.0),
            mean_kw=pl.col("kwh") / when.hours,
        )
        .with_columns(
            load_factor=pl.when(pl.col("peak_kw") > 0)
            .then(pl.col("mean_kw") / pl.col("peak_kw"))
            .otherwise(None)
        )
        .sort("segment")
    )
    return out.select(list(schema)).cast(schema)  # type: ignore[arg-type]


def _daily(local: pl.DataFrame) -> pl.DataFrame:
    """Per local day and segment: energy and the highest half-hour's demand."""
    if local.is_empty():
        return pl.DataFrame(
            schema={"day": pl.Date, "segment": pl.String, "kwh": pl.Float64, "peak_kw": pl.Float64}
        )
    return (
        local.group_by(day=pl.col("local").dt.date(), segment=pl.col("segment"))
        .agg(kwh=pl.col("kwh").sum(), peak_kw=pl.col("kw").max())
        .sort("day", "segment")
    )


def _profile(local: pl.DataFrame) -> pl.DataFrame:
    """Per segment, weekday or weekend, and local half-hour of the day: the mean demand
    per meter (kW), so segments of different sizes compare."""
    schema: dict[str, Any] = {
        "segment": pl.String,
        "daytype": pl.String,
        "slot": pl.Int64,
        "kw_per_meter": pl.Float64,
    }
    if local.is_empty():
        return pl.DataFrame(schema=schema)
    return (
        local.with_columns(
            daytype=pl.when(pl.col("local").dt.weekday() >= 6)
            .then(pl.lit("weekend"))
            .otherwise(pl.lit("weekday")),
            slot=(pl.col("local").dt.hour().cast(pl.Int64) * 60 + pl.col("local").dt.minute()),
            per_meter=pl.col("kw") / pl.col("meters"),
        )
        .group_by("segment", "daytype", "slot")
        .agg(kw_per_meter=pl.col("per_meter").mean())
        .sort("segment", "daytype", "slot")
        .select(list(schema))
    )


def _grid(
    conn: Connection, nodes: list[dict[str, Any]], when: Month
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per node: peak and mean load, utilisation of capacity and time above 80% and
    100% of it; and each day's peak per node."""
    rows: list[dict[str, Any]] = []
    days: list[pl.DataFrame] = []
    for node in nodes:
        series = grid_insight.node_series(conn, node["node_id"], when.start, when.end)
        series = series.filter(pl.col("load_mw").is_not_null())
        if series.is_empty():
            continue
        cap = node["capacity_mw"]
        hours = pl.col("interval_s") / 3600
        top = series.sort("load_mw", "ts", descending=[True, False]).row(0, named=True)
        row: dict[str, Any] = {
            "node_id": node["node_id"],
            "kind": node["kind"],
            "capacity_mw": cap,
            "peak_mw": top["load_mw"],
            "peak_at": top["ts"].astimezone(ZoneInfo(when.tz)),
            "mean_mw": float(series["load_mw"].mean()),  # type: ignore[arg-type]
            "utilisation": top["load_mw"] / cap if cap else None,
            "hours_above_80": None,
            "hours_above_100": None,
        }
        if cap:
            for share, key in ((HIGH_LOADING, "hours_above_80"), (1.0, "hours_above_100")):
                above = series.filter(pl.col("load_mw") > share * cap).select(hours.sum())
                row[key] = float(above.item() or 0.0)
        rows.append(row)
        days.append(
            series.group_by(day=pl.col("ts").dt.convert_time_zone(when.tz).dt.date())
            .agg(peak_mw=pl.col("load_mw").max())
            .with_columns(
                node_id=pl.lit(node["node_id"]),
                utilisation=pl.col("peak_mw") / cap if cap else pl.lit(None, pl.Float64),
            )
            .select("node_id", "day", "peak_mw", "utilisation")
            .sort("day")
        )
    schema: dict[str, Any] = {
        "node_id": pl.String,
        "kind": pl.String,
        "capacity_mw": pl.Float64,
        "peak_mw": pl.Float64,
        "peak_at": pl.Datetime("us", when.tz),
        "mean_mw": pl.Float64,
        "utilisation": pl.Float64,
        "hours_above_80": pl.Float64,
        "hours_above_100": pl.Float64,
    }
    grid = pl.DataFrame(rows, schema=schema, orient="row")
    daily_schema: dict[str, Any] = {
        "node_id": pl.String,
        "day": pl.Date,
        "peak_mw": pl.Float64,
        "utilisation": pl.Float64,
    }
    daily = pl.concat(days) if days else pl.DataFrame(schema=daily_schema)
    return grid, daily


def _totals(report: MonthlyReport, local: pl.DataFrame) -> dict[str, Any]:
    """The headline figures: meters, energy, the coincident peak of all segments
    together, data completeness and the shares of each status, anomalies by outcome."""
    out: dict[str, Any] = {
        "meters": int(report.segments["meters"].sum()) if not report.segments.is_empty() else 0,
        "kwh": float(report.segments["kwh"].sum()) if not report.segments.is_empty() else 0.0,
        "peak_kw": None,
        "peak_at": None,
    }
    if not local.is_empty():
        fleet = local.group_by("local").agg(kw=pl.col("kw").sum())
        top = fleet.sort("kw", "local", descending=[True, False]).row(0, named=True)
        out["peak_kw"], out["peak_at"] = top["kw"], top["local"]
    q = report.quality
    expected = int(q["expected"].sum()) if not q.is_empty() else 0
    for name in ("present", "valid", "estimated", "suspect", "rejected", "missing"):
        count = int(q[name].sum()) if not q.is_empty() else 0
        out[name] = count
        out[f"{name}_share"] = count / expected if expected else None
    out["expected"] = expected
    out["completeness"] = out["present_share"]
    by_status = report.anomalies.group_by("status").agg(pl.col("count").sum())
    out["anomalies"] = int(report.anomalies["count"].sum()) if not by_status.is_empty() else 0
    out["anomalies_by_status"] = dict(by_status.sort("status").iter_rows())
    return out
