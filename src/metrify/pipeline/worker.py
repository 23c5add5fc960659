"""The stream worker: Kafka topics -> the one pipeline -> PostgreSQL + lake -> commit.

``metrify worker`` runs :func:`run_worker`: one confluent-kafka consumer in the group
``METRIFY_KAFKA_GROUP_ID`` reading the readings, grid, weather and meter-event topics
(or some of them; each topic's kind says which contract decodes its records),
cutting the stream into micro-batches bounded by size (``batch_max_records``) and
time (``batch_max_ms``, see :meth:`Worker._collect`). Each batch goes through the same
:class:`~metrify.pipeline.stages.Pipeline` as a file load, then:

1. undecodable messages go to the dead-letter topic (raw bytes; ``error``, ``topic``,
   ``partition``, ``offset`` and ``kind`` headers) and, through the pipeline's bad-input
   path, to the quarantine table with the same reason: nothing is dropped;
2. each pipeline validates and judges its part and hands it to its background writer
   (a second connection), and the worker goes on collecting the next batch: batch N is
   written while batch N+1 is collected and processed;
3. once batch N is durable in PostgreSQL (one transaction per write) and the lake
   (:meth:`Pipeline.settle`), its offsets are committed, synchronously (checkpoint after
   sink flush).

A crash anywhere before step 3 re-delivers the batch (and the one after it); the
store's idempotent upserts absorb it (an identical record changes nothing and leaves no
history). Quarantine rows of
a re-delivered poison message are written again: quarantine is a log, not a keyed table.

Failures never stop the worker. When PostgreSQL is unreachable (or anything else fails
while a batch is processed) it logs, backs off exponentially (0.5 s doubling to 30 s),
reconnects, rewinds the consumer to the committed offsets of its partitions (``seek``)
and processes the messages again: nothing is skipped, since nothing past the durable
state was committed.

Rebalancing: the callbacks run inside ``consume()``, while a batch may be in flight;
they first land it (wait until it is durable and commit its offsets, the partitions
still ours), so the new owner starts after it. The messages of a half-collected batch
from revoked partitions are abandoned uncommitted and the new owner reads them again
from the committed offset. The
per-meter state VEE and the detectors need (recent history for spike baselines,
flat-line runs, gaps and register continuity; hour-of-week baselines and levels) lives
in PostgreSQL; each pipeline keeps caches of it (:mod:`metrify.quality.history`,
:mod:`metrify.anomaly.state`) that the worker drops on every assignment and revocation,
so it is rebuilt from the durable store for whatever partitions the worker owns next,
and a rebalance loses nothing. Pipelines live as long as the database
session; after a failure they are rebuilt with it.

SIGTERM / SIGINT: the batches in hand are finished and committed, the consumer closed (it
leaves the group at once, so the others take over without waiting for a session
timeout), and :func:`run_worker` returns 0.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import polars as pl
import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from metrify.contracts.records import Contract
from metrify.contracts.summary import Summary
from metrify.ops import exposition, metrics, tracing
from metrify.pipeline.session import Session, open_session
from metrify.pipeline.stages import Pipeline
from metrify.settings import Settings
from metrify.settings.kafka import KINDS, KafkaSettings
from metrify.sources import BadRow
from metrify.sources.kafka import (
    CONTRACT_OF,
    ORIGIN,
    ProduceError,
    Sender,
    fast_rows_frame,
    parse_message,
    rows_frame,
)
from metrify.stores.database import DatabaseError

__all__ = ["KafkaNotConfigured", "Worker", "run_worker"]

log = logging.getLogger(__name__)

#: failures of the store that a reconnect can heal.
DATABASE_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError)
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
#: messages asked of the client per consume() call while a batch is collected; small, so
#: that a batch of JSON arrays overshoots ``batch_max_records`` by little.
_CONSUME_CHUNK = 500
#: how long an idle consume() waits before checking the stop flag again.
_IDLE_WAIT_S = 0.5

NOT_CONFIGURED = (
    "Kafka is not configured: set METRIFY_KAFKA_BOOTSTRAP_SERVERS=host:port[,host:port] "
    "(and METRIFY_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, "
    "_SASL_PASSWORD, _SSL_CA_LOCATION for a managed cluster); without Kafka, "
    "'metrify ingest' and 'metrify simulate' feed the pipeline in-process"
)


class KafkaNotConfigured(ValueError):
    """No bootstrap servers: there is no cluster to consume from (one-line message)."""


#: a batch: each partition's messages, in offset order (dicts keep the order they came in)
_Batch = dict[tuple[str, int], list[Message]]


@dataclass
class _Flight:
    """A processed batch whose writes run in the background; committed once landed."""

    batch: _Batch
    started: float
    #: each pipeline with its last batch number once this batch was handed over
    pipelines: list[tuple[Pipeline, int]]
    read: int


@dataclass
class _Part:
    """One partition's messages in a batch."""

    topic: str
    partition: int
    messages: list[Message]

    @property
    def source(self) -> str:
        return f"kafka:{self.topic}:{self.partition}"


@dataclass
class _Decoded:
    """One kind's messages, ready for its pipeline."""

    #: (raw records, their source: one, or one per record, bad rows) per submit
    submits: list[tuple[pl.DataFrame, str | pl.Series, list[BadRow]]]
    #: (partition, message, why) of each message that cannot be decoded at all
    poison: list[tuple[_Part, Message, str]]


def backoff(failures: int) -> float:
    """Seconds to wait after the n-th failure in a row: 0.5, 1, 2, ... capped at 30."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, failures - 1)))


class Worker:
    """One consumer in the group, feeding the pipelines of the kinds it reads."""

    def __init__(
        self,
        settings: Settings,
        kafka: KafkaSettings,
        kinds: Sequence[str] = KINDS,
        stop_event: threading.Event | None = None,
    ) -> None:
        if not kafka.configured:
            raise KafkaNotConfigured(NOT_CONFIGURED)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; expected one of {', '.join(KINDS)}")
        self.settings = settings
        self.kafka = kafka
        self.kinds = tuple(dict.fromkeys(kinds or KINDS))
        self.topics = [kafka.topic(k) for k in self.kinds]
        self.stop = stop_event or threading.Event()
        self.batches = 0
        self.records = 0
        self._assigned: set[tuple[str, int]] = set()
        self._pending: _Batch = {}
        self._sessions = contextlib.ExitStack()
        self._session: Session | None = None
        #: one pipeline per kind for the life of a session, so VEE's per-meter history
        #: cache (see metrify.quality.history) carries over from batch to batch.
        self._pipelines: dict[str, Pipeline] = {}
        self._missing_topics: set[str] = set()
        #: the batch whose writes run while the next one is collected and processed
        self._flight: _Flight | None = None
        #: when the last batch was cut (see _collect)
        self._cut_at = time.monotonic()
        #: messages processed but not yet committed (rewound to after a failure)
        self._unlanded: list[_Batch] = []
        #: each pipeline's summary when its last batch landed (per-batch metrics)
        self._settled: dict[str, Summary] = {}
        #: a failure while landing inside a rebalance callback, raised in the loop
        self._callback_error: Exception | None = None
        try:
            self.consumer = Consumer(kafka.consumer_config())
            self.dead_letters = Sender(kafka)
        except KafkaException as exc:
            raise ValueError(f"invalid Kafka configuration: {exc.args[0].str()}") from None

    # --- the loop --------------------------------------------------------------------

    def run(self) -> int:
        """Consume until stopped; returns the exit code (0 after a clean stop)."""
        self.consumer.subscribe(
            self.topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("worker consuming %s as group %s", ", ".join(self.topics), self.kafka.group_id)
        code = 0
        failures = 0
        try:
            while not self.stop.is_set():
                batch = self._collect()
                metrics.update_lag(self.consumer)
                try:
                    if self._callback_error is not None:
                        error, self._callback_error = self._callback_error, None
                        raise error
                    if not batch:
                        self._land()  # nothing new: make the batch in flight durable now
                        continue
                    flight = self._start(batch)
                    # The previous batch was written while this one was processed: now
                    # durable, its offsets are committed.
                    self._land()
                    self._flight = flight
                except Exception as exc:
                    failures += 1
                    batches = [batch, *self._unlanded]
                    self._flight, self._unlanded = None, []
                    self._failed(exc, failures)
                    if not self._recover(batches, failures):
                        break
                    continue
                failures = 0
            if failures == 0:
                try:
                    self._land()
                except Exception as exc:  # re-delivered after the restart, nothing lost
                    log.warning("last batch not stored (%s); it will be re-delivered", exc)
                else:
                    self._refresh_quality()
        except _Fatal as exc:
            log.error("stopping: %s", exc)
            code = 1
        finally:
            self._close_session()
            with contextlib.suppress(Exception):
                self.dead_letters.producer.flush(10)
            with contextlib.suppress(Exception):
                self.consumer.close()  # leaves the group: partitions move on at once
            # its partitions' lag is another worker's to report now (shared metrics)
            exposition.mark_dead()
            log.info("worker stopped after %d batches, %d records", self.batches, self.records)
        return code

    def _collect(self) -> _Batch:
        """Messages until the batch is full, its time is up, or a stop is asked for.
        Rebalance callbacks run in here and prune the batch.

        Its time: when the worker was idle, ``batch_max_ms`` after the batch's first
        message. While a stream flows (a batch in flight), ``batch_max_ms`` after the
        previous batch was cut: what arrived meanwhile has been waiting since then, so
        when processing the previous batch took longer than that, the worker takes what
        has arrived without waiting more. Batches then grow with the rate (natural
        batching) and no message waits longer than one cycle before its batch starts;
        waiting a fresh ``batch_max_ms`` would add it to every message's latency. With a
        batch in flight and nothing arriving, it returns empty, so the loop lands that
        batch instead of leaving it uncommitted while idle."""
        pending: _Batch = {}
        self._pending = pending
        records = 0
        window = self.kafka.batch_max_ms / 1000
        deadline = self._cut_at + window if self._flight is not None else None
        limit = self.kafka.batch_max_records
        while not self.stop.is_set() and records < limit:
            wait = _IDLE_WAIT_S if deadline is None else deadline - time.monotonic()
            chunk = self.consumer.consume(min(_CONSUME_CHUNK, limit - records), max(0.0, wait))
            if wait <= 0 and not chunk:
                break  # time is up and what had arrived is taken
            for message in chunk:
                error = message.error()
                if error is not None:
                    self._consumer_error(error, message)
                    continue
                where = (message.topic() or "", message.partition() or 0)
                held = pending.get(where)
                if held is None:
                    pending[where] = held = []
                held.append(message)
                # Parsing waits for the batch (see _decode): a message is one record,
                # or an array whose '{' count its records (nested values aside).
                value = message.value() or b""
                records += 1 if value[:1] == b"{" else max(1, value.count(b"{"))
            if pending and deadline is None:
                deadline = time.monotonic() + window  # idle: the batch's first message
        self._cut_at = time.monotonic()
        return dict(pending)

    def _decode(self, contract: Contract, parts: list[_Part]) -> _Decoded:
        """One kind's partitions as raw string columns. When every message is well-formed
        (the common case) Polars reads them all in one call, its cost being mostly per
        call, and each record is labelled with its partition's source. Otherwise each
        partition is read on its own: by the fast path where it can, message by message
        on the exact path where it cannot (which finds the poison)."""
        limit = self.kafka.max_message_bytes
        values = [m.value() for part in parts for m in part.messages]
        if all(v and len(v) <= limit for v in values):
            frame = fast_rows_frame(contract, values, origin=True)
            if frame is not None:
                sizes = pl.Series([len(part.messages) for part in parts], dtype=pl.Int64)
                labels = pl.Series([part.source for part in parts])
                place = sizes.cum_sum().search_sorted(frame.get_column(ORIGIN), side="right")
                return _Decoded([(frame.drop(ORIGIN), labels.gather(place), [])], [])
        out = _Decoded([], [])
        for part in parts:
            values = [m.value() for m in part.messages]
            fast = all(v and len(v) <= limit for v in values)
            frame = fast_rows_frame(contract, values) if fast else None
            if frame is not None:
                out.submits.append((frame, part.source, []))
                continue
            parsed = [
                parse_message(m.value(), max_bytes=limit, line=_line(m)) for m in part.messages
            ]
            out.poison += [
                (part, m, p.poison)
                for m, p in zip(part.messages, parsed, strict=True)
                if p.poison is not None
            ]
            rows = rows_frame(contract, [row for p in parsed for row in p.rows])
            out.submits.append((rows, part.source, [b for p in parsed for b in p.bad]))
        return out

    def _start(self, batch: _Batch) -> _Flight:
        """Dead letters, then the pipelines: each batch is validated and judged here and
        handed to its pipeline's background writer; no commit here (see :meth:`_land`)."""
        if not tracing.enabled():
            return self._process(batch)
        parent, links = _trace_of(batch)
        with tracing.span(
            "worker batch",
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": self.kafka.group_id,
                "messaging.batch.message_count": sum(len(m) for m in batch.values()),
            },
            kind="consumer",
            links=links,
            context=parent,
        ):
            return self._process(batch)

    def _process(self, batch: _Batch) -> _Flight:
        started = time.perf_counter()
        session = self._session or self._open_session()
        kinds: dict[str, list[_Part]] = {}
        for (topic, partition), messages in batch.items():
            kind = self.kafka.kind_of(topic)
            if kind is None:  # pragma: no cover - we only subscribe to our topics
                continue
            kinds.setdefault(kind, []).append(_Part(topic, partition, messages))
        decoded = {kind: self._decode(CONTRACT_OF[kind], parts) for kind, parts in kinds.items()}
        self._dead_letters([(kind, *p) for kind, d in decoded.items() for p in d.poison])
        used: dict[str, Pipeline] = {}
        read = 0
        for kind, ready in decoded.items():
            contract = CONTRACT_OF[kind]
            if kind not in self._pipelines:
                self._pipelines[kind] = session.pipeline(contract, overlap=True)
                self._settled[kind] = _snapshot(self._pipelines[kind].summary)
            used[kind] = pipeline = self._pipelines[kind]
            read -= pipeline.summary.read
            for frame, source, bad in ready.submits:
                pipeline.submit(frame, source=source, bad=bad)
            read += pipeline.summary.read
        # flush() validates and judges the batch, waits for the pipeline's previous write
        # and starts this one's; the pipeline keeps its VEE history and detector state.
        # Readings first: they are most of the batch and the latency that counts.
        for kind in sorted(used, key=KINDS.index):
            used[kind].flush()
        self._unlanded = [*self._unlanded, batch]
        return _Flight(batch, started, [(p, p.handed) for p in used.values()], read)

    def _dead_letters(self, poisoned: list[tuple[str, _Part, Message, str]]) -> None:
        """Send each undecodable message (kind, partition, message, why) to the
        dead-letter topic; its quarantine row goes through the pipeline's bad-input path."""
        for kind, part, message, reason in poisoned:
            self.dead_letters.dead_letter(
                message.value() or b"",
                reason,
                key=message.key(),
                topic=part.topic,
                partition=str(part.partition),
                offset=str(message.offset()),
                kind=kind,
            )
        if poisoned:
            self.dead_letters.flush(30)
            for _, part, _, _ in poisoned:
                metrics.DEAD_LETTERS.labels(part.topic).inc()

    def _land(self) -> None:
        """Wait until the batch in flight is durable (database and lake), then commit
        its offsets: checkpoint after sink flush."""
        flight, self._flight = self._flight, None
        if flight is None:
            return
        summaries = []
        for pipeline, handed in flight.pipelines:
            kind = pipeline.contract.kind
            now = pipeline.settle(upto=handed)  # not the next batch, written meanwhile
            summaries.append(_since(self._settled[kind], now))
            self._settled[kind] = _snapshot(now)
        for summary in summaries:
            for error in summary.errors:
                # The database holds the batch (the source of truth); the lake can be
                # re-exported from it, and re-delivery would not rewrite it anyway.
                metrics.ERRORS.labels("lake").inc()
                log.error("%s: %s", summary.kind, error)
        self._commit(flight.batch)
        self._unlanded = [b for b in self._unlanded if b is not flight.batch]
        self.batches += 1
        self.records += flight.read
        seconds = time.perf_counter() - flight.started
        messages = sum(len(part) for part in flight.batch.values())
        metrics.observe_batch(messages, flight.read, seconds)
        metrics.count_records(summaries)
        log.debug(
            "batch %d: %d messages, %d records, stored and committed in %.3f s",
            self.batches,
            messages,
            flight.read,
            seconds,
        )

    def _commit(self, batch: _Batch) -> None:
        """Commit the next offset of every partition in the batch that is still ours."""
        offsets = [
            TopicPartition(t, p, (messages[-1].offset() or 0) + 1)
            for (t, p), messages in batch.items()
            if (t, p) in self._assigned and messages
        ]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The batch is stored; its messages come again and change nothing.
            metrics.ERRORS.labels("commit").inc()
            log.warning("offset commit failed (the batch will be re-delivered): %s", exc)

    # --- failures --------------------------------------------------------------------

    def _failed(self, exc: BaseException, failures: int) -> None:
        metrics.RETRIES.inc()
        self._close_session()
        if isinstance(exc, DATABASE_ERRORS):
            metrics.ERRORS.labels("database").inc()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("database unavailable (%s); retrying in %.1f s", first, backoff(failures))
        elif isinstance(exc, KafkaException | ProduceError):
            metrics.ERRORS.labels("kafka").inc()
            log.warning("Kafka error (%s); retrying in %.1f s", exc, backoff(failures))
        else:
            metrics.ERRORS.labels("other").inc()
            log.exception("batch failed; retrying in %.1f s", backoff(failures))

    def _recover(self, batches: list[_Batch], failures: int) -> bool:
        """Back off, reconnect (backing off further while that fails), then rewind the
        consumer so the failed batch is read again. False when asked to stop meanwhile."""
        while not self.stop.wait(backoff(failures)):
            try:
                self._open_session()
            except Exception as exc:  # keep trying: never crash, never skip
                failures += 1
                metrics.ERRORS.labels("database").inc()
                log.warning("reconnect failed (%s); retrying in %.1f s", exc, backoff(failures))
                continue
            self._rewind(batches)
            return True
        log.warning("stopping with an uncommitted batch; it will be re-delivered")
        return False

    def _rewind(self, batches: list[_Batch]) -> None:
        """Seek every assigned partition back to its committed offset (or, never
        committed, to the failed batches' first message) so nothing is skipped."""
        first: dict[tuple[str, int], int] = {}
        for batch in batches:
            for where, messages in batch.items():
                if messages:
                    offset = messages[0].offset() or 0
                    first[where] = min(first.get(where, offset), offset)
        try:
            assigned = self.consumer.assignment()
            for tp in self.consumer.committed(assigned, timeout=30):
                target = tp.offset if tp.offset >= 0 else first.get((tp.topic, tp.partition))
                if target is not None:
                    self.consumer.seek(TopicPartition(tp.topic, tp.partition, target))
            log.info("rewound %d partitions to their committed offsets", len(assigned))
        except KafkaException as exc:
            # Re-joining the group resumes every partition from its committed offset.
            log.warning("seek failed (%s); re-subscribing to rewind", exc)
            self.consumer.unsubscribe()
            self._assigned.clear()
            self.consumer.subscribe(
                self.topics,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )

    def _consumer_error(self, error: KafkaError, message: Message) -> None:
        if error.fatal():
            raise _Fatal(error.str())
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            topic = message.topic() or ""
            if topic not in self._missing_topics:
                self._missing_topics.add(topic)
                log.warning("topic %s does not exist (yet): %s", topic, error.str())
            return
        metrics.ERRORS.labels("kafka").inc()
        log.warning("consumer error: %s", error.str())

    # --- the store -------------------------------------------------------------------

    def _open_session(self) -> Session:
        self._close_session()
        self._session = self._sessions.enter_context(open_session(self.settings))
        return self._session

    def _refresh_quality(self) -> None:
        """On a clean stop, bring the daily quality scores up to date (best effort: the
        stale marks are durable and the next pipeline to run refreshes them anyway)."""
        pipeline = self._pipelines.get("readings")
        if pipeline is None:
            return
        try:
            pipeline.store.refresh_quality_daily()
        except Exception as exc:
            log.warning("daily quality scores not refreshed on exit: %s", exc)

    def _close_session(self) -> None:
        self._session = None
        for pipeline in self._pipelines.values():
            pipeline.abandon()
        self._pipelines = {}  # their history caches belong to the old connection's view
        self._settled = {}
        try:
            self._sessions.close()
        except Exception as exc:  # closing a broken connection may complain
            log.debug("closing the session: %s", exc)
        self._sessions = contextlib.ExitStack()

    # --- rebalancing -----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._land_in_callback()
        self._assigned.update((tp.topic, tp.partition) for tp in partitions)
        self._forget_history()
        log.info("assigned %s", _names(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The batch in flight lands and commits while these partitions are still ours.
        self._land_in_callback()
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned -= gone
        # Not committed, so the new owner starts at them: abandon, do not store.
        for where in gone:
            self._pending.pop(where, None)
        self._forget_history()
        metrics.forget_partitions(partitions)
        log.info("revoked %s", _names(partitions))

    def _land_in_callback(self) -> None:
        """Land the batch in flight before the assignment changes (the caches are about
        to be dropped, and its offsets are best committed by the owner that wrote it);
        a failure is raised in the loop, where the recovery lives."""
        try:
            self._land()
        except Exception as exc:
            self._callback_error = exc

    def _forget_history(self) -> None:
        """Meters may have been written by another worker meanwhile: read their VEE
        history and detector state afresh from PostgreSQL."""
        for pipeline in self._pipelines.values():
            if pipeline.history is not None:
                pipeline.history.forget()
            if pipeline.detector is not None:
                pipeline.detector.forget()


class _Fatal(Exception):
    """The client reports an error it cannot recover from (e.g. fenced by the group)."""


def _snapshot(summary: Summary) -> Summary:
    return Summary(
        kind=summary.kind,
        read=summary.read,
        quarantined=summary.quarantined,
        statuses=summary.statuses.copy(),
        errors=list(summary.errors),
    )


def _since(before: Summary, now: Summary) -> Summary:
    """What one batch added to a pipeline's running summary (for the metrics)."""
    return Summary(
        kind=now.kind,
        read=now.read - before.read,
        quarantined=now.quarantined - before.quarantined,
        statuses=now.statuses - before.statuses,
        errors=now.errors[len(before.errors) :],
    )


#: a batch span links at most this many traces besides its parent's
MAX_LINKS = 128


def _trace_of(batch: _Batch) -> tuple[tracing.Context | None, list[tracing.Link]]:
    """The trace a batch span continues (the first message's that carries one) and links
    to the others' (a batch gathers messages of many producers; each producer's span
    stays findable from the batch that consumed it)."""
    parent: tracing.Context | None = None
    links: list[tracing.Link] = []
    seen: set[int] = set()
    for messages in batch.values():
        for message in messages:
            found = tracing.extract(message.headers())
            if found is None:
                continue
            if parent is None:
                parent = found
                seen.add(tracing.span_of(found).span_id)
                continue
            span_id = tracing.span_of(found).span_id
            if span_id not in seen and len(links) < MAX_LINKS:
                seen.add(span_id)
                links.append(tracing.link_to(found))
    return parent, links


def _line(message: Message) -> int | None:
    """A message's offset as the line number of its quarantine rows (when it fits one)."""
    offset = message.offset()
    return offset if offset is not None and offset < 2**31 else None


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def run_worker(
    settings: Settings,
    kafka_settings: KafkaSettings,
    kinds: Sequence[str] = KINDS,
    stop_event: threading.Event | None = None,
) -> int:
    """Run a worker until ``stop_event`` is set or SIGTERM / SIGINT arrives; exit code.

    Signal handlers are installed only when called from the main thread (a worker in a
    thread is stopped through ``stop_event``).
    """
    worker = Worker(settings, kafka_settings, kinds, stop_event)
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: finishing the current batch", signum)
            worker.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, stop)
    try:
        return worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m metrify.pipeline.worker [--kind K ...] [--metrics-port N]``."""
    from metrify.ops.logging import configure
    from metrify.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m metrify.pipeline.worker")
    parser.add_argument("--kind", action="append", choices=KINDS, default=[])
    parser.add_argument("--metrics-port", type=int, default=None)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure(settings.log_level)
    tracing.configure(settings.tracing)
    try:
        kafka = KafkaSettings()
        if args.metrics_port is not None:
            metrics.serve(args.metrics_port)
        return run_worker(settings, kafka, args.kind or KINDS)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
