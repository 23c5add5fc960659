"""``metrify ingest events FILE``: a head-end's event log with its own column names and
local times, mapped with the options every kind takes. Names head-ends use become the
contract's event names, an event no name fits goes to quarantine with its reason, and a
second load of the same file changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores.lake import Lake

runner = CliRunner()
UTC = dt.UTC
LOG = """Meter,When,What,Code
M1,2025-03-30 01:30:00,Power Off,3.26.0.85
M1,2025-03-30 03:10:00,power restore,
M1,2025-03-30 03:10:00,Terminal cover open,40
M2,2025-03-30 04:00:00,Alien landing,
"""


def _ingest(path: Path) -> dict[str, object]:
    result = runner.invoke(
        app,
        [
            "ingest", "events", str(path),
            "--map", "meter_id=Meter", "--map", "ts=When", "--map", "event=What",
            "--map", "code=Code", "--tz", "Europe/Amsterdam", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_events_load_with_mapping_options(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(LOG)
    first = _ingest(path)
    stored = conn.execute(
        "SELECT meter_id, ts, event, code FROM meter_events ORDER BY ts, event"
    ).fetchall()
    # 01:30 is CET (UTC+1); 03:10 is after the spring change to CEST (UTC+2)
    assert stored == [
        ("M1", dt.datetime(2025, 3, 30, 0, 30, tzinfo=UTC), "power_failure", "3.26.0.85"),
        ("M1", dt.datetime(2025, 3, 30, 1, 10, tzinfo=UTC), "cover_open", "40"),
        ("M1", dt.datetime(2025, 3, 30, 1, 10, tzinfo=UTC), "power_restore", None),
    ]
    assert first["inserted"] == 3 and first["rejected"] == 1
    reasons = conn.execute("SELECT reason FROM quarantine WHERE kind = 'events'").fetchall()
    assert len(reasons) == 1 and str(reasons[0][0]).startswith("unknown event")
    again = _ingest(path)
    assert again["inserted"] == 0 and again["updated"] == 0 and again["unchanged"] == 3
    assert conn.execute("SELECT count(*) FROM meter_events").fetchone() == (3,)


DLMS_LOG = """meter,time,code
M1,2025-01-10 08:00:00,1
M1,2025-01-10 08:20:00,2
M1,2025-01-11 09:00:00,40
M1,2025-01-11 09:05:00,41
M2,2025-01-12 10:00:00,42
M2,2025-01-12 10:00:00,4
M2,2025-01-12 11:00:00,7
M2,2025-01-12 12:00:00,99
"""


def test_a_dlms_event_log_of_numbers_is_named_by_its_codes(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A head-end's export of a DLMS/COSEM Standard Event Log: numbers only, no event
    column. Each number is stored as its family with the number as its code; 99 is no
    Standard Event Log code and goes to quarantine saying so."""
    path = tmp_path / "dlms.csv"
    path.write_text(DLMS_LOG)
    result = runner.invoke(
        app,
        ["ingest", "events", str(path), "--map", "meter_id=meter", "--map", "ts=time",
         "--map", "code=code", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    stored = conn.execute(
        "SELECT meter_id, ts, event, code, details FROM meter_events ORDER BY ts, event"
    ).fetchall()
    at = lambda d, h, m=0: dt.datetime(2025, 1, d, h, m, tzinfo=UTC)  # noqa: E731
    assert [(r[0], r[1], r[2], r[3]) for r in stored] == [
        ("M1", at(10, 8), "power_failure", "1"),
        ("M1", at(10, 8, 20), "power_restore", "2"),
        ("M1", at(11, 9), "cover_open", "40"),
        ("M1", at(11, 9, 5), "cover_close", "41"),
        ("M2", at(12, 10), "clock_set", "4"),
        ("M2", at(12, 10), "magnetic_field", "42"),
        ("M2", at(12, 11), "other", "7"),
    ]
    assert stored[-1][4] == "DLMS/COSEM event 7: replace battery"
    assert summary["inserted"] == 7 and summary["rejected"] == 1
    reasons = conn.execute("SELECT reason, raw FROM quarantine WHERE kind = 'events'").fetchall()
    assert len(reasons) == 1 and "unknown DLMS/COSEM event code 99" in reasons[0][0]


ODD_LOG = [
    "Meter,When,What,Code",
    "M1,2025-03-30 01:30:00,Power Off,3.26.0.85",
    "",
    "M2,2025-03-30 04:00:00,Alien landing,",
    "M2,yesterday-ish,Power Off,",
    "M3,2025-03-30 05:00:00,99,",
]


def test_every_quarantined_event_keeps_its_line_and_raw_row(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """An unknown name and an unknown DLMS number are judged after decoding, an
    unparseable time during it: all three name the file's real line (the blank line
    counts) and hold the file's row as it was, field by field."""
    path = tmp_path / "odd.csv"
    path.write_text("\n".join(ODD_LOG) + "\n")
    summary = _ingest(path)
    assert summary["inserted"] == 1 and summary["rejected"] == 3
    header = ODD_LOG[0].split(",")
    expected = {}
    for number, text in enumerate(ODD_LOG, start=1):
        if text.startswith(("M2", "M3")):
            expected[number] = dict(zip(header, text.split(","), strict=True))
    stored = conn.execute(
        "SELECT line, raw, reason FROM quarantine WHERE kind = 'events' ORDER BY line"
    ).fetchall()
    assert [row[0] for row in stored] == sorted(expected)
    for line, raw, _ in stored:
        fields = {k: (v if v is not None else "") for k, v in json.loads(str(raw)).items()}
        assert fields == expected[int(str(line))]
    reasons = [str(row[2]) for row in stored]
    assert reasons[0].startswith("unknown event") and reasons[1] == "unparseable ts"
    assert "99" in reasons[2]


def test_a_reload_without_the_code_column_keeps_the_codes(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """``code`` left unmapped on a second load is unknown, not empty: the stored codes
    stay and nothing counts as changed; the lake still matches the store."""
    path = tmp_path / "events.csv"
    path.write_text(LOG)
    _ingest(path)
    before = conn.execute("SELECT meter_id, ts, event, code FROM meter_events ORDER BY 2, 3")
    stored = before.fetchall()
    assert [row[3] for row in stored] == ["3.26.0.85", "40", None]
    result = runner.invoke(
        app,
        [
            "ingest", "events", str(path),
            "--map", "meter_id=Meter", "--map", "ts=When", "--map", "event=What",
            "--tz", "Europe/Amsterdam", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)
    after = conn.execute("SELECT meter_id, ts, event, code FROM meter_events ORDER BY 2, 3")
    assert after.fetchall() == stored
    # details given, code still not: the events change, their codes stay
    lines = LOG.splitlines()
    noted = [f"{lines[0]},Note"] + [f"{line},note {i}" for i, line in enumerate(lines[1:])]
    path.write_text("\n".join(noted) + "\n")
    result = runner.invoke(
        app,
        [
            "ingest", "events", str(path),
            "--map", "meter_id=Meter", "--map", "ts=When", "--map", "event=What",
            "--map", "details=Note", "--tz", "Europe/Amsterdam", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    third = json.loads(result.stdout)
    assert (third["inserted"], third["updated"], third["unchanged"]) == (0, 3, 0)
    rows = conn.execute("SELECT code, details FROM meter_events ORDER BY ts, event").fetchall()
    # the file's rows 0-2 are, in (ts, event) order: Power Off, cover open, power restore
    assert rows == [("3.26.0.85", "note 0"), ("40", "note 2"), (None, "note 1")]
    verify = runner.invoke(app, ["lake", "verify", "--json"])
    assert verify.exit_code == 0 and verify.stdout.strip() == "", verify.output
    lake = Lake(settings.lake).read("events").sort("ts", "event")
    assert lake.select("code", "details").rows() == rows


def test_a_conflicting_repeat_of_an_event_keeps_its_line_and_raw_row(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Two reports of one event (same meter, time and name) with different codes: the
    later wins, the earlier is quarantined as the file's line and row."""
    lines = [
        "Meter,When,What,Code",
        "M1,2025-03-30 01:30:00,Power Off,A",
        "M1,2025-03-30 01:30:00,Power Off,B",
        "M1,2025-03-30 04:00:00,power restore,",
    ]
    path = tmp_path / "twice.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = _ingest(path)
    assert summary["inserted"] == 2
    assert conn.execute("SELECT code FROM meter_events ORDER BY ts").fetchall() == [("B",), (None,)]
    stored = conn.execute("SELECT line, raw, reason FROM quarantine").fetchall()
    assert len(stored) == 1
    line, raw, reason = stored[0]
    assert line == 2 and str(reason).startswith("conflicting duplicate")
    header = lines[0].split(",")
    assert json.loads(str(raw)) == dict(zip(header, lines[1].split(","), strict=True))
