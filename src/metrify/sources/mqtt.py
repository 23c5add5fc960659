"""MQTT as a source: head-ends' and data concentrators' messages, and OBIS codes.

A message is one reading or a JSON array of readings, like a Kafka message
(:func:`metrify.sources.kafka.parse_message` parses both), in the contract's field names
or named by OBIS code (IEC 62056-61: ``1-0:1.8.0``, ``1.8.0``, ``1-0:1.8.0*255`` are the
same value). The meter id may come from the topic instead of the payload: the level a
``+`` of the subscription stands for (``meters/+/readings`` takes it from the second
level). Decoding then goes through the pipeline's ``decode()`` like every other source.

The client (:class:`Subscriber`) subscribes with QoS 1 in a persistent session
(``clean_session=False``, a fixed client id) and acknowledges nothing itself: the
caller acknowledges a message only once its batch is durable, so a crash before that
gets it again from the broker and the idempotent store absorbs the repeat.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from metrify.sources.batches import BadRow
from metrify.sources.kafka import parse_message

__all__ = [
    "OBIS_FIELDS",
    "Message",
    "Subscriber",
    "broker_address",
    "obis_field",
    "rows_of",
]

#: OBIS value groups C.D.E (electricity, A = 1) and the contract field each one fills.
#: Energy registers (x.8.0) and interval energy (x.29.0) in kWh, power (x.7.0) in kW,
#: voltage (32/52/72.7.0) in V, current (31/51/71.7.0) in A, reactive power in kvar.
OBIS_FIELDS: Final[dict[str, str]] = {
    "1.8.0": "register_kwh",  # active energy import (A+), total register
    "2.8.0": "export_register_kwh",  # active energy export (A-), total register
    "1.29.0": "import_kwh",  # A+ energy over the last integration period
    "2.29.0": "export_kwh",  # A- energy over the last integration period
    "1.7.0": "active_power_kw",  # instantaneous active power import
    "3.7.0": "reactive_power_kvar",  # instantaneous reactive power import
    "13.7.0": "power_factor",
    "14.7.0": "frequency_hz",
    "32.7.0": "voltage_v",  # L1
    "31.7.0": "current_a",  # L1
}
#: active power export (2.7.0) is the same field with the sign of export
_EXPORT_POWER: Final = "2.7.0"
log = logging.getLogger(__name__)
_OBIS: Final = re.compile(
    r"^(?:(?P<a>\d+)-(?P<b>\d+):)?(?P<c>\d+)\.(?P<d>\d+)\.(?P<e>\d+)(?:[*.&](?P<f>\d+))?$"
)


def obis_field(key: str) -> str | None:
    """The contract field an OBIS-coded key names; None when ``key`` is not an OBIS code
    Metrify maps (a code of another medium, A != 1, is not electricity's)."""
    match = _OBIS.match(key.strip())
    if match is None or match["a"] not in (None, "1"):
        return None
    code = f"{int(match['c'])}.{int(match['d'])}.{int(match['e'])}"
    if code == _EXPORT_POWER:
        return "-active_power_kw"
    return OBIS_FIELDS.get(code)


def rows_of(
    topic: str, payload: bytes, topic_filter: str, *, max_bytes: int
) -> tuple[list[dict[str, Any]], list[BadRow]]:
    """The readings of one message (OBIS keys renamed, the meter id from the topic where
    the payload has none) and its undecodable parts, never raising."""
    parsed = parse_message(payload, max_bytes=max_bytes)
    meter = _topic_meter(topic, topic_filter)
    rows = []
    for row in parsed.rows:
        out: dict[str, Any] = {}
        for key, value in row.items():
            name = obis_field(key) if ":" in key or key[:1].isdigit() else None
            if name is None:
                out[key] = value
            elif name.startswith("-"):
                out.setdefault(name[1:], -float(value) if _number(value) else value)
            else:
                out[name] = value
        if meter is not None and not out.get("meter_id"):
            out["meter_id"] = meter
        rows.append(out)
    bad = [BadRow(b.raw, b.reason, None) for b in parsed.bad]
    return rows, bad


def _number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _topic_meter(topic: str, topic_filter: str) -> str | None:
    """The topic level the filter's first ``+`` matches (the meter id), if any."""
    levels, pattern = topic.split("/"), topic_filter.split("/")
    for i, part in enumerate(pattern):
        if part == "+" and i < len(levels):
            return levels[i] or None
        if part == "#":
            break
    return None


def broker_address(url: str) -> tuple[str, int]:
    """(host, port) of ``mqtt://host[:port]`` (port 1883 by default)."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"{url!r}: expected mqtt://HOST[:PORT]")
    return parts.hostname, parts.port or 1883


@dataclass(frozen=True)
class Message:
    """One received message, to be acknowledged (``mid``) once its batch is durable."""

    mid: int
    topic: str
    payload: bytes


@dataclass
class Subscriber:
    """A paho-mqtt client in a persistent QoS 1 session that hands messages over a queue
    and acknowledges only what :meth:`ack` is given.

    ``client_id`` names the session at the broker: the same id after a restart receives
    what was sent meanwhile and what was delivered but never acknowledged.
    """

    host: str
    port: int
    topics: list[str]
    client_id: str
    messages: queue.Queue[Message] = field(default_factory=queue.Queue)
    connected: threading.Event = field(default_factory=threading.Event)
    #: set once the broker has confirmed every subscription (SUBACK)
    subscribed: threading.Event = field(default_factory=threading.Event)
    _client: Any = None
    _pending: set[int] = field(default_factory=set)

    def start(self) -> None:
        """Connect (in the background; reconnects on its own) and subscribe."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()

    def ack(self, messages: Iterable[Message]) -> None:
        """Acknowledge messages whose records are durable (PUBACK to the broker)."""
        for message in messages:
            self._client.ack(message.mid, 1)

    def stop(self) -> None:
        """Disconnect; messages not acknowledged stay with the broker for this session."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        self._pending = set()
        for topic in self.topics:
            _, mid = client.subscribe(topic, qos=1)
            self._pending.add(int(mid))
        self.connected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self._pending.discard(int(mid))
        if not self._pending:
            log.info("subscribed to %s", ", ".join(self.topics))
            self.subscribed.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.messages.put(Message(int(message.mid), str(message.topic), bytes(message.payload)))
