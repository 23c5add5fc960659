"""The MQTT head-end worker: broker -> micro-batches -> the one pipeline -> acknowledge.

``metrify mqtt`` runs :func:`run_mqtt`. Head-ends and data concentrators publish
readings over MQTT; the worker subscribes with QoS 1 in a persistent session
(:class:`~metrify.sources.mqtt.Subscriber`), cuts what arrives into micro-batches
bounded by size and time, and hands each to the same
:class:`~metrify.pipeline.stages.Pipeline` as a file load or the Kafka worker. Only once
a batch is durable (database and lake: :meth:`Pipeline.settle`) are its messages
acknowledged, so:

* a worker killed at any point (SIGKILL included) gets the unacknowledged messages
  again when it reconnects with the same client id, and the idempotent store absorbs
  the repeats: effectively once;
* a broker restart drops the connection; the client reconnects by itself (1 s to 30 s
  apart) and the broker, which keeps persistent sessions across restarts when its
  ``persistence`` is on, delivers what is pending.

A broker limits the messages in flight per client (Mosquitto: ``max_inflight_messages``,
20 by default): a batch holds at most that many messages, each of which may carry many
readings (a concentrator's array). A message that is not JSON, or a reading that does
not decode, goes to quarantine with its reason and is acknowledged with its batch.

SIGTERM / SIGINT: the batch in hand is finished and acknowledged, then the client
disconnects and :func:`run_mqtt` returns 0.

TLS (``mqtts://``, a CA and optionally a client certificate) and a login are
:class:`MqttOptions`' ``tls`` and ``login``; a broker that refuses them raises
:class:`~metrify.sources.mqtt.BrokerRefused` before anything is loaded.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from metrify.contracts.records import READING
from metrify.contracts.summary import Summary
from metrify.pipeline.session import open_session
from metrify.pipeline.stages import Pipeline
from metrify.settings import Settings
from metrify.sources import BadRow
from metrify.sources.kafka import rows_frame
from metrify.sources.mqtt import Login, Message, Subscriber, Tls, broker_address, rows_of

__all__ = ["MqttOptions", "run_mqtt"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttOptions:
    """Where to subscribe and how to cut batches."""

    broker: str = "mqtt://127.0.0.1:1883"
    topics: tuple[str, ...] = ("meters/+/readings",)
    client_id: str = "metrify-mqtt"
    batch_max_messages: int = 20
    batch_max_ms: int = 500
    max_message_bytes: int = 1_000_000
    #: TLS to the broker (None: plain TCP)
    tls: Tls | None = None
    #: the broker login (None: anonymous)
    login: Login | None = None


def run_mqtt(
    settings: Settings,
    options: MqttOptions,
    stop: threading.Event | None = None,
    *,
    ready: threading.Event | None = None,
    on_batch: Callable[[Summary], None] | None = None,
) -> Summary:
    """Subscribe and load until ``stop`` is set (or SIGTERM / SIGINT in the main thread);
    the summary of everything loaded. ``ready`` is set once the broker has confirmed the
    subscriptions; ``on_batch`` hears the running summary after each acknowledged batch."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():

        def halt(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, halt)
        signal.signal(signal.SIGINT, halt)
    host, port = broker_address(options.broker)
    subscriber = Subscriber(
        host, port, list(options.topics), options.client_id, options.tls, options.login
    )
    if ready is not None:
        subscriber.subscribed = ready
    subscriber.start()
    try:
        with open_session(settings) as session:
            pipeline = session.pipeline(READING)
            while not stop.is_set():
                batch = _collect(subscriber.messages, options, stop)
                if not batch:
                    continue
                _load(pipeline, batch, options)
                pipeline.settle()  # durable (database and lake) before the broker hears
                subscriber.ack(batch)
                log.debug("mqtt batch: %d messages stored and acknowledged", len(batch))
                if on_batch is not None:
                    on_batch(pipeline.summary)
            return pipeline.close(final=False)
    finally:
        subscriber.stop()


def _collect(
    messages: queue.Queue[Message], options: MqttOptions, stop: threading.Event
) -> list[Message]:
    """Up to ``batch_max_messages`` messages, waiting at most ``batch_max_ms`` after the
    first (and up to a second for the first, to notice ``stop``)."""
    try:
        first = messages.get(timeout=1.0)
    except queue.Empty:
        return []
    batch = [first]
    deadline = time.monotonic() + options.batch_max_ms / 1000
    while len(batch) < options.batch_max_messages and not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            batch.append(messages.get(timeout=left))
        except queue.Empty:
            break
    return batch


def _load(pipeline: Pipeline, batch: list[Message], options: MqttOptions) -> None:
    """Decode a batch's messages into readings and submit them, one source per topic."""
    by_topic: dict[str, tuple[list[dict[str, object]], list[BadRow]]] = {}
    for message in batch:
        rows, bad = rows_of(
            message.topic,
            message.payload,
            _filter_of(message.topic, options.topics),
            max_bytes=options.max_message_bytes,
        )
        got = by_topic.setdefault(message.topic, ([], []))
        got[0].extend(rows)
        got[1].extend(bad)
    for topic, (rows, bad) in by_topic.items():
        pipeline.submit(rows_frame(READING, rows), source=f"mqtt:{topic}", bad=bad)
    pipeline.flush()


def _filter_of(topic: str, filters: tuple[str, ...]) -> str:
    """The subscription filter ``topic`` came in by (the first that matches)."""
    levels = topic.split("/")
    for candidate in filters:
        parts = candidate.split("/")
        if all(p in ("+", "#") or p == lv for p, lv in zip(parts, levels, strict=False)) and (
            len(parts) == len(levels) or parts[-1] == "#"
        ):
            return candidate
    return filters[0]
