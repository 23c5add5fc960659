"""Kafka client settings: every librdkafka setting through ``METRIFY_KAFKA_*``.

The common ones have names (bootstrap servers, security protocol, SASL, TLS, group id,
topics, micro-batch bounds). Anything else passes straight through, so a managed cluster
needs no code change: ``METRIFY_KAFKA_SESSION_TIMEOUT_MS=10000`` becomes librdkafka's
``session.timeout.ms``. Secrets never appear in a display: :meth:`KafkaSettings.masked`.
"""

from __future__ import annotations

import os
from typing import Any, Final

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from metrify.settings.masking import mask_tree

ENV_PREFIX: Final = "METRIFY_KAFKA_"
#: the record kinds with a topic each; meter events ride beside readings
KINDS: Final = ("readings", "grid", "weather", "events")
_MASK: Final = "***"
#: the one string-valued librdkafka setting whose name has an underscore.
_UNDERSCORED: Final = {"log.level": "log_level"}


class KafkaSettings(BaseSettings):
    """How to reach Kafka and how the worker cuts its micro-batches."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    bootstrap_servers: str | None = Field(
        default=None, description="host:port,...; unset means no Kafka (embedded default)"
    )
    security_protocol: str | None = Field(
        default=None, description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-512, ...")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = Field(default=None, description="CA bundle for TLS")
    group_id: str = Field(default="metrify", description="consumer group of the workers")
    topic_readings: str = "metrify.readings"
    topic_grid: str = "metrify.grid"
    topic_weather: str = "metrify.weather"
    topic_events: str = Field(
        default="metrify.events", description="meter events (power failure, tamper, ...)"
    )
    topic_deadletter: str = "metrify.deadletter"
    batch_max_records: int = Field(
        default=100_000, ge=1, description="a micro-batch holds about this many records at most"
    )
    batch_max_ms: int = Field(
        default=250,
        ge=1,
        description="and is cut at most this long after its first message (idle) or after "
        "the previous cut (a flowing stream)",
    )
    max_message_bytes: int = Field(
        default=1_048_576, ge=1, description="larger messages go to the dead-letter topic"
    )
    #: every other ``METRIFY_KAFKA_X_Y`` variable, as librdkafka's ``x.y``.
    options: dict[str, str] = Field(default_factory=dict, repr=False)

    @model_validator(mode="after")
    def _pass_through(self) -> KafkaSettings:
        if not self.options:
            self.options = extra_options(os.environ, set(type(self).model_fields))
        return self

    @property
    def configured(self) -> bool:
        """True when a cluster is named; otherwise sources call the pipeline in-process."""
        return bool(self.bootstrap_servers)

    def topic(self, kind: str) -> str:
        """The topic of one record kind (readings, grid, weather, events)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        topic: str = getattr(self, f"topic_{kind}")
        return topic

    def kind_of(self, topic: str) -> str | None:
        """The record kind a topic carries, or None for a topic that is not ours."""
        return next((k for k in KINDS if self.topic(k) == topic), None)

    def client_config(self) -> dict[str, Any]:
        """Settings every client (producer, consumer) shares."""
        conf: dict[str, Any] = {}
        named = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            ),
            "ssl.ca.location": self.ssl_ca_location,
        }
        conf.update({k: v for k, v in named.items() if v is not None})
        conf.update(self.options)
        return conf

    def consumer_config(self) -> dict[str, Any]:
        """A consumer that commits only when told to (after the batch is durable)."""
        conf: dict[str, Any] = {
            "group.id": self.group_id,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            # librdkafka waits up to 500 ms for a fetch to fill; a stream worker wants the
            # first records of a quiet partition sooner (overridable).
            "fetch.wait.max.ms": 100,
        }
        conf.update(self.client_config())
        # Not overridable: auto-commit would checkpoint before the sink flushed.
        conf["enable.auto.commit"] = False
        conf["enable.auto.offset.store"] = False
        return conf

    def producer_config(self) -> dict[str, Any]:
        """An idempotent producer (no duplicates from its own retries), acks from all."""
        conf: dict[str, Any] = {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
        }
        conf.update(self.client_config())
        return conf

    def masked(self) -> dict[str, Any]:
        """Effective settings for display, secrets replaced by ``***``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            if name == "options":
                continue
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = _MASK
            out[name] = value
        out["options"] = dict(sorted(self.options.items()))
        # pass-through values by name (sasl.jaas.config, ssl.key.password, ...) and any
        # URL's credentials (an OAuth token endpoint with a secret in its query)
        masked: dict[str, Any] = mask_tree(out)
        return masked


def extra_options(environ: Any, known: set[str]) -> dict[str, str]:
    """``METRIFY_KAFKA_X_Y=v`` for every X_Y that is not a named field, as ``{'x.y': v}``.

    librdkafka names use dots where environment variables can only use underscores;
    the only string-valued librdkafka setting with an underscore of its own, ``log_level``,
    is mapped by name.
    """
    options: dict[str, str] = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest and rest not in known:
            dotted = rest.replace("_", ".")
            options[_UNDERSCORED.get(dotted, dotted)] = value
    return options
