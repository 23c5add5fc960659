"""Alert sinks: the log, a webhook (HTTP POST with retries) and a Kafka topic.

An alert is sent once per incident, when it first reaches ``min_severity`` while open;
the store remembers ``alerted_at``, so a growing incident, a re-delivered batch or an
acknowledged anomaly never alerts again. A sink that fails is logged and counted; it
never fails the batch, whose data is already durable.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from metrify.contracts.anomalies import to_json
from metrify.settings.anomaly import AlertConfig
from metrify.settings.masking import mask_webhook_url

log = logging.getLogger("metrify.anomaly.alerts")


class Sink(Protocol):
    name: str

    def send(self, alerts: Sequence[dict[str, Any]]) -> None: ...


class LogSink:
    """One WARNING line per alert (JSON), for log-based alerting. The record also
    carries the alert itself (``record.alert``) for filters that summarise alerts."""

    name = "log"

    def send(self, alerts: Sequence[dict[str, Any]]) -> None:
        for alert in alerts:
            log.warning(
                "anomaly %s", json.dumps(alert, default=str, sort_keys=True), extra={"alert": alert}
            )


class WebhookSink:
    """POSTs the alerts as one JSON body; retries 5xx, 429 and connection errors with backoff."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        #: the address as logs and errors show it: chat webhooks carry their token in the
        #: path or query, so only scheme and host are shown
        self.shown = mask_webhook_url(url)
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        import httpx  # only a configured webhook needs it; kept off every command's start-up

        self.client = httpx.Client(timeout=timeout_s)
        self.attempts = 0

    def send(self, alerts: Sequence[dict[str, Any]]) -> None:
        import httpx

        body = {"alerts": list(alerts)}
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            self.attempts += 1
            try:
                response = self.client.post(self.url, json=body)
                if response.status_code < 300:
                    return
                retryable = response.status_code >= 500 or response.status_code == 429
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                # some transport errors quote the address they failed on
                text = str(exc).replace(self.url, self.shown)
                retryable, problem = True, f"{type(exc).__name__}: {text}"
            if not retryable or attempt == self.retries:
                raise RuntimeError(f"webhook {self.shown}: {problem} after {attempt + 1} attempts")
            log.info("webhook %s: %s, retrying in %.1f s", self.shown, problem, delay)
            self.sleep(delay)
            delay *= 2


class KafkaSink:
    """Produces each alert as JSON keyed by subject id (so one subject's alerts stay ordered)."""

    name = "kafka"

    def __init__(self, topic: str, config: dict[str, Any]) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.producer = Producer(config)

    def send(self, alerts: Sequence[dict[str, Any]]) -> None:
        for alert in alerts:
            self.producer.produce(
                self.topic,
                key=str(alert["subject_id"]).encode(),
                value=json.dumps(alert, default=str).encode(),
            )
        left = self.producer.flush(10)
        if left:
            raise RuntimeError(f"kafka topic {self.topic}: {left} alerts not delivered")


def sinks_from(cfg: AlertConfig) -> list[Sink]:
    """The sinks the configuration names."""
    sinks: list[Sink] = []
    if cfg.log:
        sinks.append(LogSink())
    if cfg.webhook_url:
        sinks.append(
            WebhookSink(
                cfg.webhook_url,
                retries=cfg.webhook_retries,
                backoff_s=cfg.webhook_backoff_s,
                timeout_s=cfg.webhook_timeout_s,
            )
        )
    if cfg.kafka_topic:
        from metrify.settings.kafka import KafkaSettings

        kafka = KafkaSettings()
        if kafka.configured:
            sinks.append(KafkaSink(cfg.kafka_topic, kafka.producer_config()))
        else:
            log.error(
                "alert topic %s set but METRIFY_KAFKA_BOOTSTRAP_SERVERS is not", cfg.kafka_topic
            )
    return sinks


class Alerter:
    """Sends alerts to every sink; returns how many sinks took them."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self.failures = 0

    def send(self, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        alerts = [to_json(r) for r in rows]
        delivered = 0
        for sink in self.sinks:
            try:
                sink.send(alerts)
                delivered += 1
            except Exception as exc:  # a broken sink must not fail a durable batch
                self.failures += 1
                log.error("alert sink %s failed: %s", sink.name, exc)
        return delivered
