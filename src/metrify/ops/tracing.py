"""OpenTelemetry traces: spans around the pipeline's stages, database calls, lake writes,
batch jobs and Kafka hand-overs, exported over OTLP/HTTP to Jaeger, a collector or
DataDog. (API requests get their server span from FastAPI's own tracing, given this
module's provider: :func:`metrify.api.create_app`.)

Off by default, and then free: until :func:`configure` is given an endpoint (or a test
calls :func:`install`), :func:`span` hands back one shared do-nothing context manager
and :func:`traced` calls the function straight through, after a single test of a
module flag. Not even OpenTelemetry's no-op tracer is asked for a span, and the SDK is
never imported, so a process that does not trace pays nothing measurable (see the
observability guide for the figure).

On, spans go through the SDK's batch processor (a background thread that exports every
few seconds and at exit), sampled by trace id at ``sample_ratio`` for new traces and
by the caller's decision for a continued one (W3C ``traceparent``: in HTTP headers, read
by FastAPI; in Kafka message headers, :func:`inject` and :func:`extract`).

Work handed to another thread (the pipeline's background writer, the lake thread)
carries the submitting thread's context with :func:`carry`, so a batch's database write
is a child of the span that judged the batch, whichever thread runs it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from metrify.settings.telemetry import TracingConfig

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Link, Span, SpanContext, Tracer

__all__ = [
    "Context",
    "Kind",
    "Link",
    "carry",
    "configure",
    "current_context",
    "db",
    "enabled",
    "extract",
    "failed",
    "inject",
    "install",
    "link_to",
    "provider",
    "reset",
    "shutdown",
    "span",
    "span_of",
    "traced",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: the instrumentation scope every Metrify span carries
SCOPE = "metrify"
#: a span's attributes for PostgreSQL calls (OpenTelemetry's database conventions)
DB_SYSTEM = {"db.system.name": "postgresql"}

#: a span's kind, as OpenTelemetry's SpanKind names it (lower case)
Kind = Literal["internal", "server", "client", "producer", "consumer"]

_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()
_lock = threading.Lock()
_on = False
#: set while on; OpenTelemetry itself is imported only then (the off path imports
#: nothing of it)
_tracer: Tracer | None = None
_provider: TracerProvider | None = None


def _kind(kind: Kind) -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind[kind.upper()]


def enabled() -> bool:
    """Whether spans are being recorded in this process."""
    return _on


def configure(config: TracingConfig) -> bool:
    """Start tracing as ``config`` says (once per process; later calls change nothing).

    No endpoint: nothing happens, not even an import of the SDK. Returns whether
    tracing is on."""
    if not config.enabled or _on:
        return _on
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from metrify import __version__

    attributes: dict[str, str] = {
        "service.name": config.service_name,
        "service.version": __version__,
    }
    if config.environment:
        attributes["deployment.environment.name"] = config.environment
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
    )
    exporter = OTLPSpanExporter(
        endpoint=config.traces_url,
        headers={k: v.get_secret_value() for k, v in config.headers.items()},
        timeout=config.timeout_s,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    log.info("tracing on: spans to %s as %s", config.traces_url, config.service_name)
    return True


def install(provider: TracerProvider) -> None:
    """Record spans through ``provider`` from now on (:func:`configure` builds one; a test
    hands one with an in-memory exporter). It also becomes OpenTelemetry's global
    provider when none was set, so libraries instrumented elsewhere join the traces."""
    from opentelemetry import trace

    global _on, _tracer, _provider
    with _lock:
        _provider = provider
        _tracer = provider.get_tracer(SCOPE)
        _on = True
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)


def reset() -> None:
    """Back to off (tests): spans are no longer recorded; the provider is not shut down."""
    global _on, _tracer, _provider
    with _lock:
        _on, _tracer, _provider = False, None, None


def provider() -> TracerProvider | None:
    """The provider spans go through, or None when off (for a library that traces
    itself given one: FastAPI)."""
    return _provider


def shutdown() -> None:
    """Export what is still queued and stop (the SDK also does this at exit)."""
    provider = _provider
    if provider is not None:
        provider.shutdown()


def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    kind: Kind = "internal",
    links: Sequence[Link] | None = None,
    context: Context | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """A span around a block, current inside it (``with span("detect"): ...``); the
    block's exception is recorded on it and raised on. Off: a shared no-op."""
    tracer = _tracer
    if not _on or tracer is None:
        return _NULL
    return tracer.start_as_current_span(
        name, context=context, kind=_kind(kind), attributes=dict(attributes or {}), links=links
    )


def failed(span_: Span, description: str) -> None:
    """Mark a span as an error (an HTTP 5xx answer: no exception reached it)."""
    from opentelemetry.trace import Status, StatusCode

    span_.set_status(Status(StatusCode.ERROR, description))


def traced(
    name: str, attributes: Mapping[str, Any] | None = None, *, kind: Kind = "internal"
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: a span named ``name`` around every call of the function (when on)."""
    fixed = dict(attributes or {})

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not _on:
                return func(*args, **kwargs)
            with span(name, fixed, kind=kind):
                return func(*args, **kwargs)

        return wrapper

    return decorate


def db(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: a client span ``postgres <operation>`` around a store's call."""
    return traced(
        f"postgres {operation}",
        {**DB_SYSTEM, "db.operation.name": operation},
        kind="client",
    )


def carry(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` bound to the caller's trace context, to run on another thread (an
    executor's). Off: ``func`` itself."""
    if not _on:
        return func
    from opentelemetry import context as otel_context

    captured = otel_context.get_current()

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        token = otel_context.attach(captured)
        try:
            return func(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return run


def current_context() -> Context:
    """The current trace context (to parent spans started elsewhere on it)."""
    from opentelemetry import context as otel_context

    return otel_context.get_current()


def inject(headers: list[tuple[str, str | bytes | None]]) -> None:
    """Add the current span's ``traceparent`` (and ``tracestate``) to a Kafka message's
    headers. Off, or outside any span: adds nothing."""
    if not _on:
        return
    from opentelemetry.propagate import get_global_textmap

    carrier: dict[str, str] = {}
    get_global_textmap().inject(carrier)
    headers.extend((k, v.encode()) for k, v in carrier.items())


def extract(
    headers: Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
) -> Context | None:
    """The trace context a Kafka message's headers carry, or None (no ``traceparent``,
    or tracing off)."""
    if not _on or not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {
        k.lower(): v.decode("latin-1") if isinstance(v, bytes) else v
        for k, v in pairs
        if v is not None and k.lower() in ("traceparent", "tracestate")
    }
    if "traceparent" not in carrier:
        return None
    from opentelemetry.propagate import get_global_textmap

    found = get_global_textmap().extract(carrier)
    if not span_of(found).is_valid:
        return None
    return found


def link_to(ctx: Context) -> Link:
    """A link to the span a context holds (a batch span naming every message it took)."""
    from opentelemetry.trace import Link

    return Link(span_of(ctx))


def span_of(ctx: Context) -> SpanContext:
    """The span context a trace context holds."""
    from opentelemetry import trace

    return trace.get_current_span(ctx).get_span_context()
