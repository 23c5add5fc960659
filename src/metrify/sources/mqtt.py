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

A broker that wants TLS (``mqtts://``) and a login (:class:`Tls`, :class:`Login`) gets
them. What a reconnect cannot heal, a certificate the CA does not vouch for or a
refused login, is :class:`BrokerRefused` with one line that says what to fix, instead
of a client retrying in silence forever; a broker that is merely down at start is
waited for, as before.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from metrify.sources.batches import BadRow
from metrify.sources.kafka import parse_message
from metrify.sources.obis import obis_field, tariff_register

log = logging.getLogger(__name__)

__all__ = [
    "BrokerRefused",
    "Login",
    "Message",
    "Subscriber",
    "Tls",
    "broker_address",
    "broker_tls",
    "rows_of",
]


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
        tariffs: dict[str, dict[str, Any]] = {}
        for key, value in row.items():
            coded = ":" in key or key[:1].isdigit()
            name = obis_field(key) if coded else None
            total = tariff_register(key) if coded and name is None else None
            if total is not None:
                tariffs.setdefault(total, {})[key] = value
            elif name is None:
                out[key] = value
            elif name.startswith("-"):
                out.setdefault(name[1:], -float(value) if _number(value) else value)
            else:
                out[name] = value
        for total, parts in tariffs.items():
            if total in out or not all(_number(v) for v in parts.values()):
                out.update(parts)  # kept as sent: the load names them as ignored
            else:  # a DSMR meter's tariff registers: the total is their sum
                out[total] = sum(float(v) for v in parts.values())
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


#: URL schemes of a plain and of a TLS connection
_PLAIN: Final = ("mqtt", "tcp")
_SECURE: Final = ("mqtts", "ssl", "tls")


def _split(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in (*_PLAIN, *_SECURE) or not parts.hostname:
        raise ValueError(f"{url!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    if parts.username or parts.password:
        # a password in the URL would be in the process list and the shell's history
        raise ValueError(
            f"{parts.scheme}://{parts.hostname}: no login in the URL; use --username and"
            " METRIFY_MQTT__PASSWORD or --password-file"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number from 1 to 65535") from None
    return parts.scheme, parts.hostname, port


def broker_address(url: str) -> tuple[str, int]:
    """(host, port) of ``mqtt://host[:port]`` (port 1883 by default) or
    ``mqtts://host[:port]`` (TLS, port 8883 by default)."""
    scheme, host, port = _split(url)
    return host, port or (8883 if scheme in _SECURE else 1883)


def broker_tls(url: str) -> bool:
    """Whether the URL asks for TLS (``mqtts://``)."""
    return _split(url)[0] in _SECURE


class BrokerRefused(ConnectionError):
    """The broker cannot be used as configured (untrusted certificate, refused login):
    retrying will not help; the message says what to fix."""


@dataclass(frozen=True)
class Tls:
    """TLS to the broker: the CA bundle its certificate must chain to (None: the
    system's), and a client certificate and key where the broker asks for one."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def context(self) -> ssl.SSLContext:
        """A verifying client context (certificate and host name checked)."""
        files = (("--tls-ca", self.ca), ("--tls-cert", self.cert), ("--tls-key", self.key))
        for what, path in files:
            if path is not None and not path.is_file():
                raise BrokerRefused(f"{what} {path}: no such file")
        if self.key is not None and self.cert is None:
            raise BrokerRefused("--tls-key needs --tls-cert (the certificate of that key)")
        try:
            context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
            if self.cert is not None:
                context.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        except (ssl.SSLError, ValueError) as exc:
            raise BrokerRefused(f"TLS files not usable: {_ssl_reason(exc)}") from None
        return context


@dataclass(frozen=True)
class Login:
    """A user name and password for the broker (the password never in a repr)."""

    username: str
    password: str | None = field(default=None, repr=False)


def _ssl_reason(exc: BaseException) -> str:
    """An SSL error's reason on one line (the verify message where there is one)."""
    reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    text = str(reason).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
    tls: Tls | None = None
    login: Login | None = None
    messages: queue.Queue[Message] = field(default_factory=queue.Queue)
    connected: threading.Event = field(default_factory=threading.Event)
    #: set once the broker has confirmed every subscription (SUBACK)
    subscribed: threading.Event = field(default_factory=threading.Event)
    #: set once the broker answered the first CONNECT (accepted or not)
    answered: threading.Event = field(default_factory=threading.Event)
    #: why the broker refused the login, if it did
    refused: str | None = None
    _client: Any = None
    _pending: set[int] = field(default_factory=set)

    def start(self, answer_s: float = 10.0) -> None:
        """Connect and subscribe; later disconnections reconnect on their own.

        The first connection is made here, so that what no retry heals is raised as
        :class:`BrokerRefused`: a certificate the CA does not vouch for (the TLS
        handshake fails) or a login the broker refuses (its CONNACK, awaited up to
        ``answer_s``). A broker that cannot be reached yet is retried in the
        background, as a restart of it is."""
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
        if self.tls is not None:
            client.tls_set_context(self.tls.context())
        if self.login is not None:
            client.username_pw_set(self.login.username, self.login.password)
        self._client = client
        where = f"{self.host}:{self.port}"
        try:
            client.connect(self.host, self.port, keepalive=30)
        except ssl.SSLCertVerificationError as exc:
            raise BrokerRefused(
                f"the broker at {where} showed a certificate that is not trusted"
                f" ({_ssl_reason(exc)}); give the CA that signed it with --tls-ca"
            ) from None
        except ssl.SSLError as exc:
            raise BrokerRefused(
                f"TLS with the broker at {where} failed: {_ssl_reason(exc)}"
            ) from None
        except OSError as exc:  # not listening yet: keep trying, as after a restart
            log.warning("broker %s not reachable (%s); retrying", where, exc)
            client.connect_async(self.host, self.port, keepalive=30)
            client.loop_start()
            return
        client.loop_start()
        if self.answered.wait(answer_s) and self.refused is not None:
            self.stop()
            raise BrokerRefused(f"the broker at {where} refused the connection: {self.refused}")

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
            if not self.answered.is_set():
                hint = (
                    "check --username and the password in METRIFY_MQTT__PASSWORD or --password-file"
                    if self.login is not None
                    else "it may want --username and a password"
                )
                self.refused = f"{reason} ({hint})"
                self.answered.set()
            else:  # a later reconnect refused (credentials changed at the broker)
                log.error("broker %s:%s refused the connection: %s", self.host, self.port, reason)
            return
        self.answered.set()
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
        if not self.answered.is_set():
            # closed before any CONNACK: over TLS 1.3 a broker that wants a client
            # certificate says so only after the handshake, by closing the connection
            hint = (
                "it may want a client certificate: --tls-cert and --tls-key"
                if self.tls is not None and self.tls.cert is None
                else "see the broker's log"
            )
            self.refused = f"it closed the connection before answering ({hint})"
            self.answered.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.messages.put(Message(int(message.mid), str(message.topic), bytes(message.payload)))
