"""The progress output of a load without a terminal, and the alert tally."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from metrify.anomaly.alerts import LogSink
from metrify.anomaly.alerts import log as alert_log
from metrify.cli.progress import ALERT_LINES, AlertTally, LoadProgress, heartbeat


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_plain_lines_at_the_start_at_most_every_interval_and_when_all_is_read() -> None:
    console, out = _console()
    clock = Clock()
    with LoadProgress("ingest readings", 1000, 3, console=console, every_s=10, clock=clock) as p:
        clock.now = 5
        p.advance(100)  # not yet due
        clock.now = 10
        p.advance(100)  # due
        clock.now = 12
        p.file_done(Path("a.csv"))  # not due again yet
        clock.now = 25
        p.advance(300)  # due
        clock.now = 26
        p.file_done(Path("b.csv"))  # not due
        clock.now = 61
        p.file_done(Path("c.csv"))  # the last file: always
    assert out.getvalue().splitlines() == [
        "ingest readings: 3 file(s), 1.0 kB, 0:00:00 elapsed",
        "ingest readings: 200 bytes of 1.0 kB (20%), file 1 of 3, 0:00:10 elapsed",
        "ingest readings: 500 bytes of 1.0 kB (50%), file 2 of 3, 0:00:25 elapsed",
        "ingest readings: all 3 file(s) read, 500 bytes of 1.0 kB (50%); finishing the writes,"
        " 0:01:01 elapsed",
    ]


def test_a_file_read_after_the_interval_names_itself() -> None:
    console, out = _console()
    clock = Clock()
    with LoadProgress("ingest grid", 0, 2, console=console, every_s=10, clock=clock) as p:
        clock.now = 11
        p.file_done(Path("first.csv"))
    assert out.getvalue().splitlines()[-1] == (
        "ingest grid: first.csv read, 1 of 2 files, 0 bytes, 0:00:11 elapsed"
    )


def _alert(i: int, severity: str) -> dict[str, object]:
    return {
        "id": i,
        "kind": "spike",
        "subject_type": "meter",
        "subject_id": f"M{i}",
        "severity": severity,
        "ts_start": "2024-01-01T00:00:00+00:00",
        "ts_end": "2024-01-01T01:00:00+00:00",
    }


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_tally_keeps_alert_lines_off_the_log_and_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = Records()
    monkeypatch.setattr(alert_log, "handlers", [seen])
    monkeypatch.setattr(alert_log, "propagate", False)
    alerts = [_alert(i, "medium") for i in range(5)] + [_alert(9, "high")]
    tally = AlertTally()
    alert_log.addFilter(tally)
    try:
        LogSink().send(alerts)
        alert_log.warning("alert sink webhook failed")  # not an alert: passes
    finally:
        alert_log.removeFilter(tally)
    assert [r.getMessage() for r in seen.records] == ["alert sink webhook failed"]
    assert tally.counts == {"medium": 5, "high": 1}
    console, out = _console()
    tally.report(console)
    lines = out.getvalue().splitlines()
    assert lines[0] == "alerts: 6 (1 high, 5 medium), the first:"
    assert lines[1:-1] == [
        f"  medium spike on meter M{i}, 2024-01-01T00:00:00+00:00 to "
        f"2024-01-01T01:00:00+00:00 (id {i})"
        for i in range(ALERT_LINES)
    ]
    assert lines[-1] == "see them all: metrify anomalies list --severity medium"


def test_no_alerts_no_report() -> None:
    console, out = _console()
    AlertTally().report(console)
    assert out.getvalue() == ""


def test_a_long_computation_says_it_is_alive() -> None:
    # a year's backtest printed nothing for 219 s between its first and last line
    import time

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with heartbeat("backtest of node GB", console=console, every_s=0.05):
        time.sleep(0.32)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3, lines
    assert all(
        line.startswith("backtest of node GB: still running, 0:00:00 elapsed") for line in lines
    )
    # and nothing once the block is done
    time.sleep(0.15)
    assert out.getvalue().splitlines() == lines
