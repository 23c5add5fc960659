"""Re-sending the same bad input changes nothing in quarantine but a count.

Loading a file again must change nothing (the idempotency promise): its bad lines were
added again on every load before. Expected figures come from the file itself: two bad
lines, each seen once per load.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores import database
from support.realdata import LONDON_MAP

LINES = [
    "LCLid,tstp,energy(kWh/hh)",
    "M,2013-01-01 00:00:00,abc",  # not a number
    "M,2013-01-01 00:30:00,",  # missing
    "M,2013-01-01 01:00:00,1",
    "M,2013-01-01 01:30:00,2",
]


def load(path: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", "readings", str(path), *LONDON_MAP, "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr


def quarantined(conn: psycopg.Connection) -> list[tuple[str, int | None, int, bool]]:
    return conn.execute(
        "SELECT reason, line, times_seen, last_received_at IS NOT NULL FROM quarantine"
        " ORDER BY line"
    ).fetchall()


def test_a_resent_file_adds_no_quarantine_rows(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "resend.csv"
    path.write_text("\n".join(LINES) + "\n")
    load(path)
    first = quarantined(conn)
    assert [(reason, line) for reason, line, _, _ in first] == [
        ("non-numeric import_kwh", 2),
        ("missing import_kwh", 3),
    ]
    assert all(seen == 1 and not again for _, _, seen, again in first)
    load(path)
    load(path)
    again = quarantined(conn)
    assert [(reason, line, seen, later) for reason, line, seen, later in again] == [
        ("non-numeric import_kwh", 2, 3, True),
        ("missing import_kwh", 3, 3, True),
    ]
    (stored,) = conn.execute("SELECT count(*) FROM readings WHERE meter_id = 'M'").fetchone()
    assert stored == 2


def test_another_file_with_the_same_bad_line_is_its_own_row(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The source is part of what a quarantined row is: the same line in another file is
    another delivery to look at, not a re-send."""
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("\n".join(LINES[:2]) + "\n")
        load(tmp_path / name)
    rows = conn.execute("SELECT source, times_seen FROM quarantine ORDER BY source").fetchall()
    assert rows == [("file:a.csv", 1), ("file:b.csv", 1)]


def test_the_migration_folds_copies_already_stored(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Copies stored before rows were kept once collapse into their oldest row, with their
    number and newest arrival."""
    url = settings.database_owner_url  # migrations are the owner's
    assert url is not None
    database.downgrade(url.get_secret_value(), "0008")
    try:
        for at in ("2026-01-01T00:00Z", "2026-01-02T00:00Z", "2026-01-03T00:00Z"):
            conn.execute(
                "INSERT INTO quarantine (kind, source, raw, reason, line, received_at)"
                " VALUES ('readings', 'file:x.csv', 'M,abc', 'non-numeric', 7, %s)",
                (at,),
            )
        conn.execute(
            "INSERT INTO quarantine (kind, source, raw, reason, line)"
            " VALUES ('readings', 'file:x.csv', 'M,', 'missing', 8)"
        )
    finally:
        database.upgrade(url.get_secret_value())
    rows = conn.execute(
        "SELECT line, times_seen, received_at = '2026-01-01T00:00Z',"
        " last_received_at = '2026-01-03T00:00Z' FROM quarantine ORDER BY line"
    ).fetchall()
    assert rows == [(7, 3, True, True), (8, 1, False, None)]
