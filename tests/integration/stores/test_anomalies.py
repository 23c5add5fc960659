"""The ``anomalies`` table's one listing and one set of status rules, which the CLI and the
HTTP API both use: which changes are allowed, what happens to the note, region scope, and
the order and filters of a listing."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from metrify.contracts.anomalies import Status
from metrify.settings import Settings
from metrify.stores.anomalies import (
    AnomalyQuery,
    NoSuchAnomaly,
    StatusConflict,
    change_status,
    list_anomalies,
)

T = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def add(
    conn: psycopg.Connection,
    subject: str,
    *,
    subject_type: str = "meter",
    severity: str = "high",
    kind: str = "sustained_drop",
    ends: dt.datetime = T + dt.timedelta(days=1),
) -> int:
    row = conn.execute(
        "INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score,"
        " severity, detector, detector_version) VALUES (%s, %s, %s, %s, %s, 5.0, %s, 'test',"
        " '1') RETURNING id",
        (kind, subject_type, subject, T, ends, severity),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_status_rules_and_notes(settings: Settings, conn: psycopg.Connection) -> None:
    anomaly = add(conn, "M1")
    acked = change_status(conn, anomaly, Status.ACKNOWLEDGED, "alice", "crew sent")
    assert (acked["status"], acked["changed_by"], acked["note"]) == (
        "acknowledged",
        "alice",
        "crew sent",
    )
    # only an open anomaly is acknowledged; the same status twice is refused
    with pytest.raises(StatusConflict, match=f"anomaly {anomaly} is acknowledged, not open"):
        change_status(conn, anomaly, Status.ACKNOWLEDGED, "bob")
    # a change without a note keeps the one before; a new note replaces it
    resolved = change_status(conn, anomaly, Status.RESOLVED, "bob")
    assert (resolved["status"], resolved["changed_by"], resolved["note"]) == (
        "resolved",
        "bob",
        "crew sent",
    )
    with pytest.raises(StatusConflict, match="is already resolved"):
        change_status(conn, anomaly, Status.RESOLVED, "bob")
    with pytest.raises(StatusConflict, match="is resolved, not open"):
        change_status(conn, anomaly, Status.ACKNOWLEDGED, "bob")
    dismissed = change_status(conn, anomaly, Status.FALSE_POSITIVE, "eve", "meter swap")
    assert (dismissed["status"], dismissed["note"]) == ("false_positive", "meter swap")
    assert change_status(conn, anomaly, Status.RESOLVED, "eve")["status"] == "resolved"
    assert change_status(conn, anomaly, Status.OPEN, "eve")["status"] == "open"
    with pytest.raises(StatusConflict, match="is already open"):
        change_status(conn, anomaly, Status.OPEN, "eve")
    with pytest.raises(NoSuchAnomaly, match="no anomaly with id 424242"):
        change_status(conn, 424242, Status.RESOLVED, "eve")
    # a refused change changes nothing
    assert conn.execute(
        "SELECT status, changed_by, note FROM anomalies WHERE id = %s", (anomaly,)
    ).fetchone() == ("open", "eve", "meter swap")


def test_region_scope(settings: Settings, conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO meters (meter_id, region) VALUES ('M-N1', 'north'), ('M-S1', 'south')"
    )
    north, south = add(conn, "M-N1"), add(conn, "M-S1")
    node = add(conn, "N1", subject_type="node")
    seen = list_anomalies(conn, AnomalyQuery(regions=["north"]))
    assert [r["id"] for r in seen] == [north]
    assert {r["id"] for r in list_anomalies(conn, AnomalyQuery())} == {north, south, node}
    for hidden in (south, node):
        with pytest.raises(NoSuchAnomaly):
            change_status(conn, hidden, Status.ACKNOWLEDGED, "north-op", regions=["north"])
    assert change_status(conn, north, Status.ACKNOWLEDGED, "op", regions=["north"])["id"] == north


def test_listing_order_and_filters(settings: Settings, conn: psycopg.Connection) -> None:
    early = add(conn, "A", severity="low", ends=T + dt.timedelta(hours=1))
    late = add(conn, "B", severity="critical", kind="vacancy")
    middle = add(conn, "C", severity="medium", ends=T + dt.timedelta(hours=2))
    change_status(conn, middle, Status.RESOLVED, "op")

    def ids(**filters: object) -> list[int]:
        return [r["id"] for r in list_anomalies(conn, AnomalyQuery(**filters))]  # type: ignore[arg-type]

    assert ids() == [middle, late, early]  # newest recorded first
    assert ids(limit=2) == [middle, late]
    assert ids(before_id=late) == [early]  # the page after one ending at ``late``
    assert ids(min_severity="medium") == [middle, late]
    assert ids(status="resolved") == [middle]
    assert ids(kind="vacancy") == [late]
    assert ids(subject_id="A") == [early]
    # ending after: an anomaly ending exactly then is not listed
    assert ids(ending_after=T + dt.timedelta(hours=1)) == [middle, late]
    row = list_anomalies(conn, AnomalyQuery(subject_id="B"))[0]
    assert row["alerted_at"] is None and row["status"] == "open" and row["evidence"] == {}
