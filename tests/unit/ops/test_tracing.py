"""Tracing helpers: free when off, and when on, spans nest across threads and travel in
message headers."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from metrify.ops import tracing
from metrify.settings.telemetry import TracingConfig


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.reset()


def _by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def test_off_by_default_nothing_of_opentelemetry_is_loaded() -> None:
    """A fresh process that imports the traced modules and runs the off path never
    imports the SDK, the exporter, or even the OpenTelemetry API's tracer."""
    code = """
import sys
from metrify.ops import tracing
from metrify.settings import Settings
import metrify.pipeline.stages, metrify.stores.postgres, metrify.sources.kafka
assert tracing.configure(Settings().tracing) is False
assert not tracing.enabled()
with tracing.span("x") as s:
    assert s is None
def f(x): return x + 1
assert tracing.carry(f) is f
headers = []
tracing.inject(headers)
assert headers == []
assert tracing.extract([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]) is None
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")
                or m.startswith("opentelemetry.exporter") or m == "opentelemetry.trace")
print(loaded)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("METRIFY_TRACING")}


def test_the_traces_url_takes_v1_traces_unless_a_path_is_given() -> None:
    assert TracingConfig().traces_url is None
    assert not TracingConfig().enabled
    assert TracingConfig(endpoint="http://jaeger:4318").traces_url == "http://jaeger:4318/v1/traces"
    assert TracingConfig(endpoint="http://a:4318/").traces_url == "http://a:4318/v1/traces"
    assert TracingConfig(endpoint="https://x/otlp/v1/traces").traces_url == (
        "https://x/otlp/v1/traces"
    )
    with pytest.raises(ValueError):
        TracingConfig(endpoint="http://a", sample_ratio=1.5)


def test_spans_nest_and_cross_to_an_executor_thread(spans: InMemorySpanExporter) -> None:
    @tracing.traced("inner", {"k": "v"})
    def inner() -> str:
        return threading.current_thread().name

    with tracing.span("outer"), ThreadPoolExecutor(1, thread_name_prefix="other") as pool:
        ran_on = pool.submit(tracing.carry(inner)).result()
        lost = pool.submit(inner).result()  # not carried: a trace of its own
    assert ran_on.startswith("other") and lost.startswith("other")
    finished = spans.get_finished_spans()
    outer = next(s for s in finished if s.name == "outer")
    carried, alone = (s for s in finished if s.name == "inner")
    assert carried.parent is not None and carried.parent.span_id == outer.context.span_id
    assert carried.context.trace_id == outer.context.trace_id
    assert alone.parent is None and alone.context.trace_id != outer.context.trace_id
    assert carried.attributes is not None and carried.attributes["k"] == "v"


def test_an_exception_marks_the_span_and_propagates(spans: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError), tracing.span("failing"):
        raise KeyError("x")
    [span] = spans.get_finished_spans()
    assert not span.status.is_ok
    assert [e.name for e in span.events] == ["exception"]


def test_context_travels_in_message_headers(spans: InMemorySpanExporter) -> None:
    headers: list[tuple[str, str | bytes | None]] = [("other", b"1")]
    with tracing.span("producer") as producer:
        tracing.inject(headers)
    names = [k for k, _ in headers]
    assert names[0] == "other" and "traceparent" in names
    found = tracing.extract(headers)
    assert found is not None
    with tracing.span("consumer", context=found):
        pass
    spans_ = _by_name(spans)
    consumer = spans_["consumer"]
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.get_span_context().span_id
    assert consumer.context.trace_id == producer.get_span_context().trace_id
    # no header, a malformed one: no context
    assert tracing.extract([("other", b"1")]) is None
    assert tracing.extract([("traceparent", b"garbage")]) is None
    assert tracing.extract(None) is None
