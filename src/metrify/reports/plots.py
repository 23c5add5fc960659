"""The monthly report's plots, drawn with matplotlib on its Agg canvas (no display, no
pyplot state, so reports can be drawn from threads or a server).

Each plot is a :class:`Plot`: a title, a caption that says how to read it, and a figure.
A part of the month without data still gets its plot, saying so on the canvas: a
reader should see that nothing was there, not wonder whether a page went missing.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from metrify.reports.monthly import HIGH_LOADING, MonthlyReport

__all__ = ["Plot", "plots"]

SIZE: Final = (10.0, 5.6)
#: status colours shared by the quality and anomaly plots
COLOURS: Final = {
    "valid": "#2e7d32",
    "estimated": "#f9a825",
    "suspect": "#ef6c00",
    "rejected": "#c62828",
    "missing": "#9e9e9e",
    "open": "#c62828",
    "acknowledged": "#ef6c00",
    "resolved": "#2e7d32",
    "false_positive": "#78909c",
}
OUTCOMES: Final = ("open", "acknowledged", "resolved", "false_positive")


@dataclass(frozen=True)
class Plot:
    """One plot of the report: what it is, how to read it, and the figure."""

    key: str
    title: str
    caption: str
    figure: Figure

    def render(self, fmt: Literal["png", "svg"], dpi: int = 130) -> bytes:
        """The figure as PNG (for the PDF) or SVG (inline in the HTML)."""
        out = io.BytesIO()
        FigureCanvasAgg(self.figure)
        self.figure.savefig(out, format=fmt, dpi=dpi, metadata=_metadata(fmt))
        return out.getvalue()


def _metadata(fmt: str) -> dict[str, str | None]:
    # no creation date or software stamp: the same month draws the same bytes
    return {"Date": None} if fmt == "svg" else {"Software": None}


def _figure(rows: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=SIZE, layout="constrained")
    axes: list[Axes] = list(fig.subplots(rows, 1, squeeze=False)[:, 0])
    return fig, axes


def _empty(message: str) -> Figure:
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=16, color="#555555")
    # a visible frame: the page shows a plot that holds nothing, not a missing one
    ax.add_patch(Rectangle((0.02, 0.02), 0.96, 0.96, fill=False, edgecolor="#999999", lw=1.5))
    return fig


def consumption(report: MonthlyReport) -> Plot:
    """Daily energy stacked by segment, and each segment's daily peak demand."""
    title = "Consumption and peak demand by segment"
    caption = (
        "Top: energy per local day, stacked by segment (tariff). Bottom: each segment's"
        " highest coincident half-hour demand of the day (kW). Rejected readings count for"
        " nothing; estimates count."
    )
    daily = report.daily
    if daily.is_empty():
        return Plot("consumption", title, caption, _empty("no meter readings this month"))
    fig, (top, bottom) = _figure(2)
    days = sorted(set(daily["day"].to_list()))
    base = [0.0] * len(days)
    for segment in sorted(set(daily["segment"].to_list())):
        part = dict(daily.filter(pl.col("segment") == segment).select("day", "kwh").iter_rows())
        values = [float(part.get(d, 0.0)) for d in days]
        top.bar(days, values, bottom=base, label=segment, width=0.8)
        base = [b + v for b, v in zip(base, values, strict=True)]
        peaks = daily.filter(pl.col("segment") == segment).sort("day")
        bottom.plot(peaks["day"].to_list(), peaks["peak_kw"].to_list(), marker=".", label=segment)
    top.set_ylabel("kWh per day")
    top.legend(title="segment", fontsize=8)
    top.grid(axis="y", alpha=0.3)
    bottom.set_ylabel("daily peak, kW")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    return Plot("consumption", title, caption, fig)


def profiles(report: MonthlyReport) -> Plot:
    """Mean demand per meter by local half-hour, weekdays and weekends, per segment."""
    title = "Load profiles by segment"
    caption = (
        "Mean demand per meter (kW) in each local half-hour, over the month's weekdays"
        " (left) and weekend days (right): the typical household day of each segment."
    )
    prof = report.profile
    if prof.is_empty():
        return Plot("profiles", title, caption, _empty("no meter readings this month"))
    fig = Figure(figsize=SIZE, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, daytype in zip(axes, ("weekday", "weekend"), strict=True):
        part = prof.filter(pl.col("daytype") == daytype)
        for segment in sorted(set(prof["segment"].to_list())):
            line = part.filter(pl.col("segment") == segment).sort("slot")
            hours = [s / 60 for s in line["slot"].to_list()]
            ax.plot(hours, line["kw_per_meter"].to_list(), label=segment)
        ax.set_title(daytype + "s")
        ax.set_xlabel("local time, hours")
        ax.set_xticks(range(0, 25, 3))
        ax.set_xlim(0, 24)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("kW per meter")
    axes[0].legend(title="segment", fontsize=8)
    return Plot("profiles", title, caption, fig)


def quality(report: MonthlyReport) -> Plot:
    """Each day's readings owed, split by what became of them."""
    title = "Data quality and estimation"
    caption = (
        "Share of the readings owed each local day (46, 48 or 50 half-hours a meter) that"
        " arrived valid, were estimated, were kept as suspect, were rejected, or are still"
        " missing."
    )
    q = report.quality
    if q.is_empty():
        return Plot("quality", title, caption, _empty("no quality scores this month"))
    fig, (ax,) = _figure(1)
    days = q["day"].to_list()
    expected = [max(int(e), 1) for e in q["expected"].to_list()]
    # gap rows that were estimated are counted estimated, not missing; missing is what
    # is owed and absent (never estimated)
    base = [0.0] * len(days)
    for name in ("valid", "estimated", "suspect", "rejected", "missing"):
        shares = [100.0 * int(v) / e for v, e in zip(q[name].to_list(), expected, strict=True)]
        ax.bar(days, shares, bottom=base, label=name, color=COLOURS[name], width=0.8)
        base = [b + s for b, s in zip(base, shares, strict=True)]
    ax.set_ylabel("% of readings owed")
    ax.set_ylim(0, max(105.0, max(base) + 5))
    fig.legend(ncols=5, fontsize=8, loc="outside upper center")
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    return Plot("quality", title, caption, fig)


def anomalies(report: MonthlyReport) -> Plot:
    """Anomalies by kind, stacked by outcome."""
    title = "Anomalies and their outcome"
    caption = (
        "Anomalies whose span overlaps the month, by kind, split by where they stand now:"
        " still open, acknowledged, resolved, or marked a false positive."
    )
    counts = report.anomalies
    if counts.is_empty():
        return Plot("anomalies", title, caption, _empty("no anomalies this month"))
    fig, (ax,) = _figure(1)
    by = counts.group_by("kind", "status").agg(pl.col("count").sum())
    kinds = sorted(set(by["kind"].to_list()))
    left = [0] * len(kinds)
    for status in OUTCOMES:
        part = dict(by.filter(pl.col("status") == status).select("kind", "count").iter_rows())
        values = [int(part.get(k, 0)) for k in kinds]
        ax.barh(kinds, values, left=left, label=status.replace("_", " "), color=COLOURS[status])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("anomalies")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return Plot("anomalies", title, caption, fig)


def grid(report: MonthlyReport) -> Plot:
    """Each node's daily peak as a share of its capacity."""
    title = "Grid loading"
    caption = (
        "Each measured node's highest load of the local day as a share of its capacity;"
        f" the dashed lines are {HIGH_LOADING:.0%} and 100%. Nodes without a capacity"
        " are listed in the table only."
    )
    daily = report.grid_daily.filter(pl.col("utilisation").is_not_null())
    if daily.is_empty():
        return Plot("grid", title, caption, _empty("no grid measurements against a capacity"))
    fig, (ax,) = _figure(1)
    for node in sorted(set(daily["node_id"].to_list())):
        line = daily.filter(pl.col("node_id") == node).sort("day")
        ax.plot(
            line["day"].to_list(),
            [100 * u for u in line["utilisation"].to_list()],
            marker=".",
            label=node,
        )
    for level in (100 * HIGH_LOADING, 100.0):
        ax.axhline(level, linestyle="--", color="#c62828", lw=1)
    ax.set_ylabel("daily peak, % of capacity")
    ax.set_ylim(bottom=0)
    ax.legend(title="node", fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return Plot("grid", title, caption, fig)


#: the plots in the order the report shows them
PLOTS: Final[tuple[Callable[[MonthlyReport], Plot], ...]] = (
    consumption,
    profiles,
    quality,
    anomalies,
    grid,
)


def plots(report: MonthlyReport) -> list[Plot]:
    """Every plot of ``report``, in order."""
    return [draw(report) for draw in PLOTS]
