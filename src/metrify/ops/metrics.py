"""Prometheus metrics of the stream workers (names ``metrify_*``).

What an operator needs to see whether the workers keep up and what the data looks like:
consumer lag per partition, micro-batch size and latency, records per kind and status,
and the worker's errors and retries. The metrics live in prometheus-client's default
registry, so ``metrify worker --metrics-port N`` (:func:`serve`) exposes them and a
dashboard or alert rule can use them unchanged. Each worker is its own scrape target;
the gauge still names a ``multiprocess_mode`` in case processes share a
``PROMETHEUS_MULTIPROC_DIR`` (:mod:`metrify.ops.exposition`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from metrify.contracts.summary import Summary

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
    """Serve ``/metrics`` on ``port`` from a background thread."""
    start_http_server(port, addr=addr)
