"""Prometheus metrics of the processes that do the work (names ``metrify_*``).

What an operator needs to see whether the workers keep up and what the data looks like:
consumer lag per partition, micro-batch size and latency, records per kind and status,
and the worker's errors and retries; what file loads read, stored and quarantined; and
whether the daily batch jobs ran, how long they took and when each last succeeded. (The
API's request metrics are in :mod:`metrify.api.middleware`.)

They live in prometheus-client's default registry: ``metrify worker --metrics-port N``
(:func:`serve`) exposes a worker's, the API's ``/metrics`` its own. Processes that share
a ``PROMETHEUS_MULTIPROC_DIR`` (the API's workers; a file load or a batch run started
with the same directory) write their values there, and any of them exposes the sum
(:mod:`metrify.ops.exposition`); each gauge names its ``multiprocess_mode``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

from metrify.contracts.summary import Summary
from metrify.ops import exposition

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "metrify_consumer_lag",
    "Messages behind the end of the partition (high watermark - consumer position)",
    ["topic", "partition"],
    # In multiprocess mode (see metrify.ops.exposition) the partition's current owner
    # set it last; a process that lost the partition, or exited, no longer counts.
    multiprocess_mode="livemostrecent",
)
BATCH_RECORDS = Histogram(
    "metrify_batch_records",
    "Records per worker micro-batch",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 250_000, 500_000, 1_000_000),
)
BATCH_MESSAGES = Histogram(
    "metrify_batch_messages",
    "Kafka messages per worker micro-batch",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000),
)
BATCH_SECONDS = Histogram(
    "metrify_batch_latency_seconds",
    "Time to decode, validate, store and commit one micro-batch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RECORDS = Counter(
    "metrify_records",
    "Records processed by kind and status (valid, suspect, estimated, rejected, quarantined)",
    ["kind", "status"],
)
DEAD_LETTERS = Counter(
    "metrify_dead_letters", "Undecodable messages sent to the dead-letter topic", ["topic"]
)
ERRORS = Counter(
    "metrify_worker_errors",
    "Worker failures by kind (database, kafka, commit, lake, other)",
    ["error"],
)
RETRIES = Counter("metrify_worker_retries", "Batches rewound and retried after a failure")

# --- file loads (metrify ingest, metrify simulate) ------------------------------------

LOAD_ROWS = Counter(
    "metrify_load_rows",
    "Rows of file loads by kind and outcome: read (every row the files held), stored "
    "(inserted or changed), unchanged (identical re-sends), quarantined",
    ["kind", "outcome"],
)
LOAD_FILES = Counter(
    "metrify_load_files",
    "Files loaded by kind and outcome (ok, or failed: unreadable, wrong schema)",
    ["kind", "outcome"],
)
#: the outcomes of LOAD_ROWS, and the summary fields each adds up
_LOAD_OUTCOMES: dict[str, tuple[str, ...]] = {
    "read": ("read",),
    "stored": ("inserted", "updated"),
    "unchanged": ("unchanged",),
    "quarantined": ("quarantined",),
}

#: per job, the newest interval end this process has set (a gauge cannot be read back)
_newest_interval: dict[str, float] = {}

# --- batch jobs (metrify batch run, the Airflow tasks) ---------------------------------

JOB_RUNS = Counter(
    "metrify_job_runs",
    "Batch job runs by job and status (ok, failed, skipped)",
    ["batch_job", "status"],
)
JOB_SECONDS = Histogram(
    "metrify_job_duration_seconds",
    "Time one batch job took over one data interval",
    ["batch_job"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
JOB_LAST_SUCCESS = Gauge(
    "metrify_job_last_success_timestamp_seconds",
    "Unix time a batch job last finished ok (any interval)",
    ["batch_job"],
    # the newest of every process's (a backfill and a daily run, say), kept after exit
    multiprocess_mode="max",
)
JOB_LAST_INTERVAL = Gauge(
    "metrify_job_last_success_interval_end_timestamp_seconds",
    "End of the newest data interval a batch job finished ok (how far the data is done)",
    ["batch_job"],
    multiprocess_mode="max",
)


def observe_batch(messages: int, records: int, seconds: float) -> None:
    """One micro-batch done: its size and how long it took end to end."""
    BATCH_MESSAGES.observe(messages)
    BATCH_RECORDS.observe(records)
    BATCH_SECONDS.observe(seconds)


def count_records(summaries: Iterable[Summary]) -> None:
    """Records per kind and status, from the pipeline's own summary of the batch."""
    for summary in summaries:
        for status, count in summary.statuses.items():
            RECORDS.labels(summary.kind, status).inc(count)
        if summary.quarantined:
            RECORDS.labels(summary.kind, "quarantined").inc(summary.quarantined)


class LoadCounter:
    """Adds a file load's progress to the load metrics as it goes: call
    :meth:`update` with the pipeline's running summary (after a file, or a batch), and
    only what was added since the last call is counted, so a scrape during a long load
    sees it advance and nothing is counted twice."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._seen: dict[str, int] = dict.fromkeys(_LOAD_OUTCOMES, 0)
        self._rows = {outcome: LOAD_ROWS.labels(kind, outcome) for outcome in _LOAD_OUTCOMES}

    def update(self, summary: Summary) -> None:
        for outcome, fields in _LOAD_OUTCOMES.items():
            now = sum(int(getattr(summary, name)) for name in fields)
            added = now - self._seen[outcome]
            if added > 0:
                self._rows[outcome].inc(added)
                self._seen[outcome] = now

    def file_done(self, ok: bool) -> None:
        LOAD_FILES.labels(self.kind, "ok" if ok else "failed").inc()


def observe_job(job: str, status: str, seconds: float, interval_end: float, now: float) -> None:
    """One batch job run over one interval, as the runner recorded it in ``batch_runs``
    (``done``, an interval an earlier run had finished, is no run and is not counted)."""
    if status == "done":
        return
    JOB_RUNS.labels(job, status).inc()
    JOB_SECONDS.labels(job).observe(seconds)
    if status == "ok":
        JOB_LAST_SUCCESS.labels(job).set(now)
        # a re-run of an older day does not move it back
        if interval_end > _newest_interval.get(job, float("-inf")):
            _newest_interval[job] = interval_end
            JOB_LAST_INTERVAL.labels(job).set(interval_end)


def update_lag(consumer: Consumer) -> None:
    """Lag of every assigned partition, from the client's cached high watermarks (the
    client refreshes them on every fetch, so this costs no broker round trip)."""
    try:
        assigned = consumer.assignment()
        if not assigned:
            return
        for tp in consumer.position(assigned):
            marks = consumer.get_watermark_offsets(tp, cached=True)
            if marks is None or tp.offset is None or tp.offset < 0:
                continue
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, marks[1] - tp.offset))
    except Exception as exc:  # metrics must never stop the worker
        log.debug("lag update failed: %s", exc)


def forget_partitions(partitions: Iterable[TopicPartition]) -> None:
    """Drop the lag series of partitions this worker no longer owns (another reports them)."""
    for tp in partitions:
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(tp.topic, str(tp.partition))


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``port`` from a background thread: this process's metrics,
    or, when it shares a ``PROMETHEUS_MULTIPROC_DIR``, the sum of every process's there
    (workers of one host, and the file loads and batch runs started with the same
    directory)."""
    path = exposition.shared_dir()
    if path is None:
        start_http_server(port, addr=addr)
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    start_http_server(port, addr=addr, registry=registry)
