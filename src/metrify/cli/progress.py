"""What a file load shows while it runs, and the alerts it raised.

Progress goes to stderr, so stdout keeps only the summary (or its JSON). On a terminal
it is a transient bar. Elsewhere (a log file, a pipe, a CI job, a scheduler) a bar would
print nothing until the end, so plain lines come instead: one at the start, one at most
every :data:`PLAIN_EVERY_S` seconds while files are read (bytes and files so far), and
one when the last file is read (the writes then finish before the summary).

Anomaly alerts go to their sinks as configured; the log sink writes one line per alert,
which on a person's console buried the progress (284 lines for one national demand
file). While a load runs, a console in the plain log format gets a tally instead
(:class:`AlertTally`): a count per severity at the end, the first few alerts on one
line each, and the command that lists them all. The alerts are in the store either
way (``metrify anomalies list``). Logs in JSON lines are for machines: every alert
line stays.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import Progress, TaskID

from metrify.cli.common import err, progress_bar
from metrify.ops.logging import json_lines

__all__ = [
    "ALERT_LINES",
    "HEARTBEAT_EVERY_S",
    "PLAIN_EVERY_S",
    "AlertTally",
    "LoadProgress",
    "heartbeat",
    "tallied_alerts",
]

#: seconds between two plain progress lines within one file
PLAIN_EVERY_S = 10.0
#: alerts shown one per line at the end of a load; the rest are counted
ALERT_LINES = 3
#: seconds between two "still running" lines of a long computation
HEARTBEAT_EVERY_S = 30.0


@contextlib.contextmanager
def heartbeat(
    label: str, *, console: Console = err, every_s: float = HEARTBEAT_EVERY_S
) -> Iterator[None]:
    """A line on stderr every ``every_s`` seconds while the block runs.

    For work that reports no steps of its own: a year's rolling-origin backtest of GB
    demand ran 219 s between its first and last line, which in a log or CI job reads as
    a hang. The line says only that it is alive and for how long; the block's own result
    still ends it. A daemon thread, so an interrupted command is not held up."""
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(every_s):
            elapsed = dt.timedelta(seconds=int(time.monotonic() - started))
            console.print(
                f"{escape(label)}: still running, {elapsed} elapsed",
                highlight=False,
                soft_wrap=True,
            )

    thread = threading.Thread(target=beat, name=f"heartbeat {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class LoadProgress:
    """The progress of loading ``files`` files of ``total`` bytes: a bar on a terminal,
    plain lines on ``console`` otherwise. ``clock`` is for tests."""

    def __init__(
        self,
        label: str,
        total: int,
        files: int,
        *,
        console: Console = err,
        every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.files = files
        self.console = console
        self.every_s = every_s
        self.clock = clock
        self.done_bytes = 0
        self.done_files = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._started = self._last = clock()

    def __enter__(self) -> LoadProgress:
        if self.console.is_terminal:
            self._bar = progress_bar(self.total, unit="bytes")
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total or None)
        else:
            self._say(f"{self.files} file(s), {decimal(self.total)}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def advance(self, n: int) -> None:
        """``n`` more bytes read."""
        self.done_bytes += n
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)
        elif self._due():
            self._say(f"{self._bytes()}, file {self.done_files + 1} of {self.files}")

    def file_done(self, path: Path) -> None:
        """One more file read to its end."""
        self.done_files += 1
        if self._bar is not None:
            return
        if self.done_files == self.files:
            self._say(f"all {self.files} file(s) read, {self._bytes()}; finishing the writes")
        elif self._due():
            self._say(f"{path.name} read, {self.done_files} of {self.files} files, {self._bytes()}")

    def _due(self) -> bool:
        return self.clock() - self._last >= self.every_s

    def _bytes(self) -> str:
        if not self.total:
            return decimal(self.done_bytes)
        share = min(100, 100 * self.done_bytes // self.total)
        return f"{decimal(self.done_bytes)} of {decimal(self.total)} ({share}%)"

    def _say(self, what: str) -> None:
        now = self.clock()
        self._last = now
        elapsed = dt.timedelta(seconds=int(now - self._started))
        self.console.print(
            f"{escape(self.label)}: {escape(what)}, {elapsed} elapsed",
            highlight=False,
            soft_wrap=True,
        )


class AlertTally(logging.Filter):
    """Keeps the alert sink's log lines off the console: counts them per severity and
    keeps the first ``keep``; other records of the logger pass."""

    def __init__(self, keep: int = ALERT_LINES) -> None:
        super().__init__()
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self.first: list[dict[str, Any]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        alert = getattr(record, "alert", None)
        if not isinstance(alert, dict):
            return True
        self.counts[str(alert.get("severity", "unknown"))] += 1
        if len(self.first) < self.keep:
            self.first.append(alert)
        return False

    def report(self, console: Console = err) -> None:
        """A count per severity (most severe first), the first alerts, where the rest are."""
        if not self.counts:
            return
        from metrify.contracts.anomalies import SEVERITIES

        order: dict[str, int] = {name: i for i, name in enumerate(reversed(SEVERITIES))}
        severities = sorted(self.counts, key=lambda s: order.get(s, len(order)))
        total = sum(self.counts.values())
        per = ", ".join(f"{self.counts[s]:,} {s}" for s in severities)
        lines = [f"alerts: {total:,} ({per})" + (", the first:" if self.first else "")]
        lines += [f"  {_one_line(alert)}" for alert in self.first]
        lines.append(
            "see them all: metrify anomalies list"
            + (f" --severity {severities[-1]}" if severities[-1] in order else "")
        )
        for line in lines:
            console.print(escape(line), highlight=False, soft_wrap=True)


def _one_line(alert: dict[str, Any]) -> str:
    """An alert as a person reads it: severity, kind, subject and span."""
    subject = f"{alert.get('subject_type', '')} {alert.get('subject_id', '')}".strip()
    return (
        f"{alert.get('severity', '?')} {alert.get('kind', '?')} on {subject}, "
        f"{alert.get('ts_start', '?')} to {alert.get('ts_end', '?')} (id {alert.get('id', '?')})"
    )


@contextlib.contextmanager
def tallied_alerts() -> Iterator[AlertTally | None]:
    """While a load runs, its alert log lines are tallied rather than printed (None:
    logs are JSON lines, where every alert line stays)."""
    if json_lines():
        yield None
        return
    from metrify.anomaly.alerts import log

    tally = AlertTally()
    log.addFilter(tally)
    try:
        yield tally
    finally:
        log.removeFilter(tally)
