"""The synchronous read models (what the CLI and the API's worker threads call) and the
audit log, on a real database; the async ones are exercised through the API's tests."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg

from metrify.contracts.records import READING
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from metrify.sources.mapping import build_mapping
from metrify.stores import audit
from metrify.stores.reads import export, meters, quarantine, readings

MAPPING = build_mapping(READING, interval_s=1800)
START = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)


def ingest(settings: Settings, values: list[float], meter: str, source: str) -> None:
    """Half-hourly readings of one meter from START, as a file would bring them."""
    times = [(START + dt.timedelta(minutes=30 * i)).isoformat() for i in range(len(values))]
    frame = pl.DataFrame(
        {"meter_id": [meter] * len(values), "ts": times, "import_kwh": [str(v) for v in values]}
    )
    with open_session(settings) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(frame, source=source, mapping=MAPPING)
        pipeline.close()


def test_versions_newest_first(settings: Settings, conn: psycopg.Connection) -> None:
    ingest(settings, [0.1, 0.2, 0.3], "M1", "file:a.csv")
    ingest(settings, [0.1, 0.2, 9.5], "M1", "file:b.csv")
    ts = START + dt.timedelta(hours=1)
    found = readings.versions(conn, "M1", ts)
    assert [(v["import_kwh"], v["source"], v["reason"]) for v in found] == [
        (9.5, "file:b.csv", "current"),
        (0.3, "file:a.csv", "corrected"),
    ]
    assert list(found[0]) == list(readings.VERSION_COLUMNS)
    assert found[0]["replaced_at"] is None and found[1]["replaced_by"] == "file:b.csv"
    assert readings.versions(conn, "M1", START - dt.timedelta(days=1)) == []


def test_export_chunks_in_meter_and_time_order(
    settings: Settings, conn: psycopg.Connection
) -> None:
    ingest(settings, [0.1, 0.2, 0.3], "M2", "file:a.csv")
    ingest(settings, [1.1, 1.2, 1.3], "M1", "file:a.csv")
    end = START + dt.timedelta(hours=1)  # exclusive: two readings of each meter
    chunks = list(export.chunks(conn, START, end, size=3))
    assert [len(c) for c in chunks] == [3, 1]
    rows = [row for chunk in chunks for row in chunk]
    assert [(r[0], r[3]) for r in rows] == [("M1", 1.1), ("M1", 1.2), ("M2", 0.1), ("M2", 0.2)]
    assert len(rows[0]) == len(export.COLUMNS)
    only = [r for c in export.chunks(conn, START, end, meter_ids=["M2"]) for r in c]
    assert {r[0] for r in only} == {"M2"}
    conn.execute("UPDATE meters SET region = 'north' WHERE meter_id = 'M1'")
    north = [r for c in export.chunks(conn, START, end, regions=("north",)) for r in c]
    assert {r[0] for r in north} == {"M1"}
    assert not conn.info.transaction_status  # the cursor's transaction is over


def test_meters_outside_regions(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO meters (meter_id, region) VALUES ('A', 'north'), ('B', 'south'), ('C', NULL)"
    )
    assert meters.outside_regions(conn, ["A", "B", "C", "NEW"], ["north"]) == ["B", "C"]
    assert meters.outside_regions(conn, ["A", "B", "C"], ["north"], limit=1) == ["B"]


def test_quarantine_listings(conn: psycopg.Connection) -> None:
    rows = [
        ("readings", "file:a.csv", "x", "bad time: 2013-13-01", 2),
        ("readings", "file:a.csv", "y", "bad time: yesterday", 3),
        ("grid", "api:ops:1", "z", "missing node_id", None),
    ]
    for row in rows:
        conn.execute(
            "INSERT INTO quarantine (kind, source, raw, reason, line) VALUES (%s, %s, %s, %s, %s)",
            row,
        )
    everything = quarantine.Filter()
    assert [r["raw"] for r in quarantine.newest(conn, everything, limit=2)] == ["z", "y"]
    assert sorted(quarantine.counts(conn, quarantine.Filter(kind="readings"))) == [
        ("readings", "bad time: 2013-13-01", 1),
        ("readings", "bad time: yesterday", 1),
    ]
    by_part = quarantine.Filter(reason_part="YESTER")
    assert [r["raw"] for r in quarantine.newest(conn, by_part, limit=10)] == ["y"]
    by_prefix = quarantine.Filter(reason_prefix="bad time", source_prefix="file:")
    assert [r["raw"] for r in quarantine.newest(conn, by_prefix, limit=10)] == ["y", "x"]
    assert quarantine.newest(conn, quarantine.Filter(source="file:"), limit=10) == []
    assert quarantine.of_source(conn, "file:a.csv", limit=10) == [
        (2, "bad time: 2013-13-01"),
        (3, "bad time: yesterday"),
    ]


def test_audit_tail_oldest_first_and_secrets_dropped(conn: psycopg.Connection) -> None:
    for n in range(3):
        audit.record(
            conn,
            audit.Event(
                actor="ops",
                actor_kind="cli",
                action=f"users.step{n}",
                details={"n": n, "password": "never", "api_key": "never"},
            ),
        )
    audit.record(conn, audit.Event(actor="other", actor_kind="cli", action="keys.create"))
    tail = audit.newest(conn, audit.Filter(actor="ops", action="users.*"), limit=2)
    assert [r["action"] for r in tail] == ["users.step1", "users.step2"]
    assert tail[0]["details"] == {"n": 1}
    everything = audit.newest(conn, audit.Filter(), limit=10)
    assert [r["action"] for r in everything] == [
        "users.step0",
        "users.step1",
        "users.step2",
        "keys.create",
    ]
