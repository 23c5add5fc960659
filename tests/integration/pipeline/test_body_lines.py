"""A CSV body's parts, submitted with their line numbers, quarantine each bad row at its
real line even with blank lines before it (what the ingest route hands the pipeline)."""

from __future__ import annotations

import psycopg

from metrify.api import bodies
from metrify.contracts.records import READING
from metrify.pipeline.session import open_session
from metrify.settings import Settings

LINES = [
    "meter_id,ts,interval_s,import_kwh",
    "",
    "M1,2024-01-01T00:00:00Z,3600,0.5",
    "",
    "",
    "M1,2024-01-01T01:00:00Z,3600",  # ragged
    "",
    "M1,2024-01-01T02:00:00Z,3600,lots",
    "M1,2024-01-01T03:00:00Z,3600,0.5",
    "M1,not a time,3600,0.5",
]


def test_body_rejects_are_quarantined_at_their_real_lines(
    settings: Settings, conn: psycopg.Connection
) -> None:
    parts = bodies.parse("csv", ("\n".join(LINES) + "\n").encode())
    with open_session(settings) as session:
        pipeline = session.pipeline(READING)
        for part in parts:
            pipeline.submit(
                part.frame,
                source="api:test",
                first_line=part.first_line,
                lines=part.lines,
                bad=part.bad,
            )
        summary = pipeline.close()
    assert summary.accepted == 2
    found = dict(conn.execute("SELECT line, reason FROM quarantine").fetchall())
    line_of = {text: i for i, text in enumerate(LINES, 1)}
    assert found == {
        line_of["M1,2024-01-01T01:00:00Z,3600"]: "ragged row: 3 fields, expected 4",
        line_of["M1,2024-01-01T02:00:00Z,3600,lots"]: "non-numeric import_kwh",
        line_of["M1,not a time,3600,0.5"]: "unparseable ts",
    }
