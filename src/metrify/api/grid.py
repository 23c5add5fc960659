"""Grid insight answers, shared by ``/v1/grid/nodes/{id}/...`` and ``metrify grid``.

Each function reads what one analysis needs from :mod:`metrify.stores.grid_insight`,
hands the frames to :mod:`metrify.analytics.grid.report` and returns its JSON-ready
answer, so the HTTP routes and the commands cannot drift apart. Blocking (the reads are
COPY streams): the routes call these on a worker thread.

The range is local dates (or ISO times) in a zone: ``tz`` when given, else the zone most
of the node's meters are in, else the fleet's. The caller's mistakes raise
:class:`BadGridQuery`; an unregistered node raises :class:`UnknownNode`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from metrify.analytics.grid import PeakWindow, check_windows, peak_share, report, tariff_effect
from metrify.stores import grid_insight as reads
from metrify.stores.aggregates import BadQuery, local_instant, zone_of
from metrify.stores.pools import Connection

__all__ = [
    "BadGridQuery",
    "UnknownNode",
    "compliance",
    "flex",
    "loading",
    "losses",
    "peak_drivers",
]

#: the longest range one question may cover
MAX_DAYS: Final = 400


class BadGridQuery(ValueError):
    """A range, zone, window or share the analysis cannot take (the caller's fault)."""


class UnknownNode(LookupError):
    """No grid node with that id is registered."""


@dataclass(frozen=True)
class Asked:
    node: dict[str, Any]
    start: dt.datetime
    end: dt.datetime
    tz: str
    meters: pl.DataFrame


def _asked(
    conn: Connection, node_id: str, first: str, last: str, tz: str | None, fleet_tz: str
) -> Asked:
    node = reads.node(conn, node_id)
    if node is None:
        raise UnknownNode(f"no grid node {node_id}")
    meters = reads.node_meters(conn, node_id)
    zones = meters["timezone"].drop_nulls()
    name = tz or (str(zones.mode().sort().first()) if not zones.is_empty() else fleet_tz)
    try:
        zone = zone_of(name)
        start, end = local_instant(first, zone), local_instant(last, zone)
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    except BadQuery as exc:
        raise BadGridQuery(str(exc)) from None
    except OverflowError:
        raise BadGridQuery("the range lies outside the years a time can hold") from None
    if end <= start:
        raise BadGridQuery("the end of the range (to) must be after its start (from)")
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise BadGridQuery(f"at most {MAX_DAYS} days per question")
    return Asked(node, start, end, name, meters)


def _head(asked: Asked) -> dict[str, Any]:
    return {"from": asked.start, "to": asked.end, "tz": asked.tz}


def loading(
    conn: Connection,
    node_id: str,
    first: str,
    last: str,
    *,
    tz: str | None,
    fleet_tz: str,
    percentile: float = 0.99,
    points: int = 21,
) -> dict[str, Any]:
    """Utilisation against capacity of the node's measured load."""
    if not 0 < percentile <= 1:
        raise BadGridQuery(f"percentile {percentile}: expected a share in (0, 1]")
    if not 2 <= points <= 1001:
        raise BadGridQuery("points: between 2 and 1001")
    asked = _asked(conn, node_id, first, last, tz, fleet_tz)
    series = reads.node_series(conn, node_id, asked.start, asked.end)
    # the meters are read only for a node without measured load in the range
    measured = not series.filter(pl.col("load_mw").is_not_null()).is_empty()
    answer = report.loading_answer(
        asked.node,
        series,
        percentile=percentile,
        points=points,
        readings=None if measured else _readings(conn, asked),
    )
    return {**_head(asked), **answer}


def _readings(conn: Connection, asked: Asked, *, voltage_only: bool = False) -> pl.DataFrame:
    ids = asked.meters["meter_id"].to_list()
    return reads.readings(conn, ids, asked.start, asked.end, voltage_only=voltage_only)


def peak_drivers(
    conn: Connection,
    node_id: str,
    first: str,
    last: str,
    *,
    tz: str | None,
    fleet_tz: str,
    top: int = 1,
    limit: int = 20,
) -> dict[str, Any]:
    """The meters that make the node's peak (coincidence factors, shares)."""
    if not 1 <= top <= 1000 or not 1 <= limit <= 10_000:
        raise BadGridQuery("top: 1 to 1000 peak intervals; limit: 1 to 10000 meters")
    asked = _asked(conn, node_id, first, last, tz, fleet_tz)
    series = reads.node_series(conn, node_id, asked.start, asked.end)
    answer = report.peak_drivers_answer(
        asked.node, series, _readings(conn, asked), top=top, limit=limit
    )
    return {**_head(asked), **answer}


def losses(
    conn: Connection, node_id: str, first: str, last: str, *, tz: str | None, fleet_tz: str
) -> dict[str, Any]:
    """The node's energy against its meters' per local day, with completeness."""
    asked = _asked(conn, node_id, first, last, tz, fleet_tz)
    series = reads.node_series(conn, node_id, asked.start, asked.end)
    answer = report.losses_answer(
        asked.node, series, _readings(conn, asked), asked.meters, tz=asked.tz
    )
    return {**_head(asked), **answer}


def compliance(
    conn: Connection,
    node_id: str,
    first: str,
    last: str,
    *,
    tz: str | None,
    fleet_tz: str,
    lv_nominal_v: float = 230.0,
    nominal_hz: float = 50.0,
) -> dict[str, Any]:
    """EN 50160 voltage (node and meters) and frequency counts."""
    if lv_nominal_v <= 0 or nominal_hz <= 0:
        raise BadGridQuery("nominal voltage and frequency must be positive")
    asked = _asked(conn, node_id, first, last, tz, fleet_tz)
    series = reads.node_series(conn, node_id, asked.start, asked.end)
    answer = report.compliance_answer(
        asked.node,
        series,
        _readings(conn, asked, voltage_only=True),
        asked.meters,
        lv_nominal_v=lv_nominal_v,
        nominal_hz=nominal_hz,
    )
    return {**_head(asked), **answer}


def flex(
    conn: Connection,
    node_id: str,
    first: str,
    last: str,
    *,
    tz: str | None,
    fleet_tz: str,
    share: float | None = None,
    window: str = "16-20",
    into: str = "20-24",
    tou: str = "ToU",
    std: str = "Std",
) -> dict[str, Any]:
    """The node meters' peak after moving a share of their peak-window energy into
    ``into``: ``share`` when given, else the relative peak-share reduction observed
    between the fleet's ``tou`` and ``std`` tariff meters over the same range."""
    try:
        win, dest = PeakWindow.parse(window), PeakWindow.parse(into)
        check_windows(win, dest)  # before any reading is read
    except ValueError as exc:
        raise BadGridQuery(str(exc)) from None
    if share is not None and not 0 <= share <= 1:
        raise BadGridQuery(f"shift {share}: expected a share between 0 and 1")
    asked = _asked(conn, node_id, first, last, tz, fleet_tz)
    effect = None
    if share is None:
        tariffs = reads.tariff_meters(conn, [tou, std])
        rows = reads.readings(conn, tariffs["meter_id"].to_list(), asked.start, asked.end)
        shares = peak_share(rows, asked.tz, win).join(
            tariffs.select("meter_id", "tariff"), on="meter_id"
        )
        try:
            effect = tariff_effect(shares, tou=tou, std=std)
        except ValueError as exc:
            raise BadGridQuery(f"{exc}: give --shift, or load meters with those tariffs") from None
        share = min(max(effect.relative, 0.0), 1.0)
    answer = report.flex_answer(
        asked.node,
        _readings(conn, asked),
        share=share,
        tz=asked.tz,
        window=win,
        into=dest,
        effect=effect,
    )
    return {**_head(asked), **answer}
