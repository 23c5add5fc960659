"""Settings of traces (``METRIFY_TRACING__*``): where OpenTelemetry spans go, if anywhere.

Tracing is off unless an endpoint is set. The endpoint is an OTLP/HTTP receiver (the
protobuf encoding): a Jaeger collector (``http://jaeger:4318``), an OpenTelemetry
Collector, or a DataDog agent with OTLP ingest enabled (``http://datadog-agent:4318``).
Only the base URL is needed; ``/v1/traces`` is added when the URL has no path. Headers
(an ingest key for a hosted backend) are secrets: ``metrify config`` masks them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TracingConfig(BaseModel):
    """OpenTelemetry tracing: off (no endpoint) by default."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/HTTP receiver, e.g. http://localhost:4318 (Jaeger, an OpenTelemetry "
            "Collector, a DataDog agent); unset: tracing off, at no cost"
        ),
    )
    service_name: str = Field(
        default="metrify", min_length=1, description="service.name of every span"
    )
    environment: str | None = Field(
        default=None, description="deployment.environment.name (DataDog's env), e.g. prod"
    )
    sample_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description=(
            "share of new traces kept (a trace continued from a caller follows the "
            "caller's decision)"
        ),
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra HTTP headers on every export (API keys)"
    )
    timeout_s: float = Field(default=10.0, gt=0, description="one export's time limit")

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded and exported at all."""
        return bool(self.endpoint)

    @property
    def traces_url(self) -> str | None:
        """The full OTLP/HTTP traces URL: ``/v1/traces`` added to a bare base URL."""
        if not self.endpoint:
            return None
        base = self.endpoint.rstrip("/")
        rest = base.split("://", 1)[-1]
        return base if "/" in rest else f"{base}/v1/traces"
