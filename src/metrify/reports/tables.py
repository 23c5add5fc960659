"""The monthly report's tables as text: one formatting of every figure, shared by the
HTML and the PDF writer, so both say the same numbers the same way."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from metrify.reports.monthly import MonthlyReport
from metrify.reports.plots import OUTCOMES

__all__ = ["Table", "fmt_kw", "fmt_kwh", "fmt_mw", "fmt_share", "fmt_time", "tables"]


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; ``numeric`` marks the columns to right-align."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    note: str = ""


def fmt_kwh(value: float | None) -> str:
    """Energy: one decimal with thousands separators (``12,345.6``)."""
    return "" if value is None else f"{value:,.1f}"


def fmt_kw(value: float | None) -> str:
    """Demand: two decimals (``3.25``)."""
    return "" if value is None else f"{value:,.2f}"


def fmt_share(value: float | None) -> str:
    """A share as a percentage with one decimal (``97.4%``)."""
    return "" if value is None else f"{100 * value:.1f}%"


def fmt_time(value: dt.datetime | None) -> str:
    """A local time to the minute (``2013-06-12 18:30``)."""
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


def fmt_mw(value: float | None) -> str:
    """Load in MW to four significant figures: a household feeder's 0.00475 as well as a
    substation's 41.25."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.4g}"


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def summary(report: MonthlyReport) -> Table:
    t = report.totals
    by_status = t["anomalies_by_status"]
    outcome = ", ".join(f"{by_status.get(s, 0)} {s.replace('_', ' ')}" for s in OUTCOMES)
    rows = [
        ["meters with readings", f"{t['meters']:,}"],
        ["energy, kWh", fmt_kwh(t["kwh"])],
        ["coincident peak, kW", fmt_kw(t["peak_kw"])],
        ["peak at (local)", fmt_time(t["peak_at"])],
        ["data completeness", fmt_share(t["completeness"])],
        ["estimated share", fmt_share(t["estimated_share"])],
        ["anomalies", f"{t['anomalies']:,} ({outcome})"],
    ]
    return Table("Summary", ["", ""], rows, [False, True])


def segments(report: MonthlyReport) -> Table:
    rows = [
        [
            r["segment"],
            f"{r['meters']:,}",
            fmt_kwh(r["kwh"]),
            fmt_share(r["share"]),
            fmt_kw(r["peak_kw"]),
            fmt_time(r["peak_at"]),
            "" if r["load_factor"] is None else f"{r['load_factor']:.2f}",
        ]
        for r in report.segments.iter_rows(named=True)
    ]
    return Table(
        "Energy and peak by segment",
        ["segment", "meters", "energy kWh", "share", "peak kW", "peak at", "load factor"],
        rows,
        [False, True, True, True, True, False, True],
        note="Segments are tariffs; the peak is the segment's highest coincident half-hour.",
    )


def quality(report: MonthlyReport) -> Table:
    t = report.totals
    names = ("expected", "present", "valid", "estimated", "suspect", "rejected", "missing")
    counts = [f"{t[n]:,}" for n in names]
    shares = ["100.0%" if t["expected"] else ""] + [fmt_share(t[f"{n}_share"]) for n in names[1:]]
    return Table(
        "Data quality",
        ["", *names],
        [["readings", *counts], ["share of expected", *shares]],
        [False, *([True] * len(names))],
        note="Readings owed by the meters' intervals over the local days of the month.",
    )


def anomaly_outcomes(report: MonthlyReport) -> Table:
    by = report.anomalies.group_by("kind", "status").agg(pl.col("count").sum())
    rows = []
    for kind in sorted(set(by["kind"].to_list())):
        part = dict(by.filter(pl.col("kind") == kind).select("status", "count").iter_rows())
        values = [int(part.get(s, 0)) for s in OUTCOMES]
        rows.append([kind, *(f"{v:,}" for v in values), f"{sum(part.values()):,}"])
    return Table(
        "Anomalies by kind and outcome",
        ["kind", *(s.replace("_", " ") for s in OUTCOMES), "total"],
        rows,
        [False, *([True] * (len(OUTCOMES) + 1))],
    )


def worst(report: MonthlyReport) -> Table:
    zone = ZoneInfo(report.month.tz)

    def local(value: dt.datetime | None) -> str:
        return "" if value is None else fmt_time(value.astimezone(zone))

    rows = [
        [
            str(a["id"]),
            a["kind"],
            f"{a['subject_type']} {a['subject_id']}",
            local(a["ts_start"]),
            local(a["ts_end"]),
            a["severity"],
            "" if a["score"] is None else f"{a['score']:.2f}",
            a["status"].replace("_", " "),
        ]
        for a in report.worst
    ]
    return Table(
        "Most severe anomalies",
        ["id", "kind", "subject", "from", "to", "severity", "score", "outcome"],
        rows,
        [True, False, False, False, False, False, True, False],
    )


def grid(report: MonthlyReport) -> Table:
    rows = [
        [
            r["node_id"],
            r["kind"] or "",
            fmt_mw(r["capacity_mw"]),
            fmt_mw(r["peak_mw"]),
            fmt_time(r["peak_at"]),
            fmt_share(r["utilisation"]),
            _hours(r["hours_above_80"]),
            _hours(r["hours_above_100"]),
        ]
        for r in report.grid.iter_rows(named=True)
    ]
    return Table(
        "Grid loading",
        [
            "node",
            "kind",
            "capacity MW",
            "peak MW",
            "peak at",
            "peak/capacity",
            "h > 80%",
            "h > 100%",
        ],
        rows,
        [False, False, True, True, False, True, True, True],
    )


def tables(report: MonthlyReport) -> list[Table]:
    """Every table of the report, in the order shown (empty ones included: they say
    there was nothing)."""
    return [
        summary(report),
        segments(report),
        quality(report),
        anomaly_outcomes(report),
        worst(report),
        grid(report),
    ]
