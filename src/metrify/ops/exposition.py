"""The ``/metrics`` text of a server: one process's metrics, or the sum of all its workers'.

Under ``metrify serve --workers N`` (N > 1) every worker is its own process with its own
counters, and a scrape lands on whichever worker accepts it: counts would jump from
scrape to scrape. prometheus-client's multiprocess mode fixes that: each process keeps
its values in memory-mapped files in one directory (``PROMETHEUS_MULTIPROC_DIR``), and a
scrape merges every process's files (counters and histograms summed, each gauge by its
``multiprocess_mode``), so any worker answers for all of them.

The mode is chosen when prometheus-client is first imported, from the environment; so
``serve`` calls :func:`prepare` before the workers start, and the workers inherit it.
Counters of a worker that exited stay in the directory and in the sums (a count never
goes back); its ``live*`` gauges are dropped (:func:`mark_dead`, :func:`forget_dead`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

__all__ = ["CONTENT_TYPE", "ENV", "forget_dead", "latest", "mark_dead", "shared_dir", "sharing"]

#: the variable prometheus-client reads (upper case; the lower-case one is deprecated)
ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: file names of live gauges: gauge_live<mode>_<pid>.db
_LIVE_GAUGE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def shared_dir() -> Path | None:
    """The directory the processes share their metrics in, or None (one process)."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


@contextlib.contextmanager
def sharing(workers: int) -> Iterator[Path | None]:
    """For the life of a server of ``workers`` processes: the metrics directory, set in
    the environment so the workers started inside inherit it.

    One worker needs none (None, unless the operator set ``PROMETHEUS_MULTIPROC_DIR``).
    Several get a fresh private directory (mode 0700), removed when the server stops.
    A directory the operator chose (a tmpfs, say) is used instead; it is emptied of
    metric files first, because files a previous server left would count again, and
    kept afterwards.
    """
    given = shared_dir()
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        for stale in given.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield given
        return
    if workers <= 1:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="metrify-metrics-"))
    os.environ[ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def latest() -> bytes:
    """The scrape text: every worker's metrics merged when they share a directory, else
    this process's own."""
    path = shared_dir()
    if path is None:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def mark_dead(pid: int | None = None) -> None:
    """A worker is exiting: its live gauges leave the sums (its counters stay)."""
    path = shared_dir()
    if path is not None:
        multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
            os.getpid() if pid is None else pid, str(path)
        )


def forget_dead() -> None:
    """Drop the live gauges of processes that no longer run: a worker killed outright
    (SIGKILL, out of memory) never ran :func:`mark_dead`, and the server starts another."""
    path = shared_dir()
    if path is None:
        return
    for file in path.glob("gauge_live*.db"):
        match = _LIVE_GAUGE.fullmatch(file.name)
        if match and not _running(int(match.group(1))):
            mark_dead(int(match.group(1)))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    return True
