"""Stored forecasts and their scores, as the forecast routes answer them.

Beside the routers (:mod:`metrify.api.routers.forecasts`) so a router stays HTTP only.
The work is synchronous store reads (:mod:`metrify.stores.forecasts`) on a connection
of the sync pool: call these on a worker thread. A range is given as local dates (or ISO
times) in the meter's zone, or ``fleet_timezone`` for groups, as ``/v1/energy`` takes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from metrify.api.problems import Problem
from metrify.api.state import AppState
from metrify.stores import aggregates, forecasts, series
from metrify.stores.pools import Connection
from metrify.stores.series import Described, Subject

#: the longest range one request may read (a year of half-hours is 17,520 points)
MAX_DAYS: Final = 400


@dataclass(frozen=True)
class Asked:
    """What a forecast request names: the subject, a local range and its zone."""

    subject: Subject
    start: str
    end: str
    tz: str | None
    horizon: str


def _resolve(
    conn: Connection, state: AppState, asked: Asked
) -> tuple[Described, dt.datetime, dt.datetime, str]:
    """The subject as stored, and the range as UTC instants with its zone; 404 for an
    unknown subject, 400 for a bad range or zone."""
    try:
        described = series.describe(conn, asked.subject)
    except series.UnknownSubject as exc:
        raise Problem(404, str(exc)) from None
    zone_name = asked.tz or described.zone or state.settings.fleet_timezone
    try:
        zone = aggregates.zone_of(zone_name)
        start = aggregates.local_instant(asked.start, zone)
        end = aggregates.local_instant(asked.end, zone)
    except aggregates.BadQuery as exc:
        raise Problem(400, str(exc)) from None
    if end <= start:
        raise Problem(400, "'to' must be after 'from'")
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise Problem(400, f"at most {MAX_DAYS} days per request")
    return described, start, end, zone_name


def _head(described: Described, asked: Asked, zone: str) -> dict[str, Any]:
    return {
        "subject_type": asked.subject.kind,
        "subject_id": asked.subject.key,
        "horizon": asked.horizon,
        "unit": described.unit,
        "tz": zone,
    }


def band(
    state: AppState, asked: Asked, model: str, issued_at: dt.datetime | None
) -> dict[str, Any]:
    """The stored forecast of the range: the given issue's, or the latest per target."""
    with state.pool.connection() as conn:
        described, start, end, zone = _resolve(conn, state, asked)
        points = forecasts.read(
            conn,
            asked.subject,
            model=model,
            horizon=asked.horizon,
            start=start,
            end=end,
            issued_at=issued_at,
        )
    return {
        **_head(described, asked, zone),
        "model": model,
        "issued_at": issued_at,
        "points": [p.as_dict() for p in points],
    }


def scores(state: AppState, asked: Asked) -> dict[str, Any]:
    """Each stored model's latest forecasts of the range against the measured series."""
    with state.pool.connection() as conn:
        described, start, end, zone = _resolve(conn, state, asked)
        scored = forecasts.score(conn, described, horizon=asked.horizon, start=start, end=end)
    return {
        **_head(described, asked, zone),
        "start": start,
        "end": end,
        "scores": [s.as_dict() for s in scored],
    }
