"""Traces end to end: an API request's span is the parent of the pipeline's stages and
their database calls; a Kafka producer's span is the parent of the worker's batch; and
``metrify ingest`` with an endpoint set exports its spans over OTLP/HTTP to a receiver.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import polars as pl
import psycopg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from metrify.batch.context import Interval, JobContext, Outcome
from metrify.batch.registry import JobSpec, spec
from metrify.batch.runner import run_jobs
from metrify.ops import tracing
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from metrify.settings.kafka import KafkaSettings
from metrify.sources.kafka import Sender
from support.api import running_api

START = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
#: a caller's trace: trace id 0x0af7..., its span 0xb7ad..., sampled
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER_SPAN:016x}-01"


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


def _readings(meter: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "meter_id": meter,
            "ts": (START + i * dt.timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
            "interval_s": 900,
            "import_kwh": 0.1 + (i % 7) * 0.01,
        }
        for i in range(n)
    ]


def _chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of a span's ancestors, nearest first (within the recorded spans)."""
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        up = by_id[parent.span_id]
        names.append(up.name)
        parent = up.parent
    return names


def test_an_api_request_is_the_parent_of_the_stages_and_the_database(
    spans: InMemorySpanExporter, database_url: str, tmp_path: Path
) -> None:
    with running_api(database_url, tmp_path) as api:
        key = api.add_key("head-end", "ingest")["key"]
        answer = api.client.post(
            "/v1/readings",
            content=orjson.dumps(_readings("TRACE-M1", 8)),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "traceparent": TRACEPARENT,
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["summary"]["inserted"] == 8
        assert api.client.get("/health").status_code == 200
        api.add_user("ana", "analyst")
        page = api.client.get(
            "/v1/meters/TRACE-M1/readings",
            params={
                "from": "2025-03-03T00:00:00Z",
                "to": "2025-03-04T00:00:00Z",
                "resolution": "raw",
            },
            headers=api.headers("ana"),
        )
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) == 8

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    # one server span per request (FastAPI's own, given Metrify's provider)
    [request] = [s for s in finished if s.name == "POST /v1/readings"]
    # the caller's trace continues: the request span is the caller's span's child
    assert request.context.trace_id == TRACE_ID
    assert request.parent is not None and request.parent.span_id == CALLER_SPAN
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/v1/readings"
    assert request.attributes["http.response.status_code"] == 200
    assert request.kind.name == "SERVER"
    below = {s.name: _chain(s, by_id) for s in finished if s.context.trace_id == TRACE_ID}
    for stage in ("decode", "pipeline batch", "validate", "estimate", "detect", "write"):
        assert stage in below, f"no {stage} span in the request's trace: {sorted(below)}"
        assert "POST /v1/readings" in below[stage], (stage, below[stage])
    for stage in ("validate", "estimate", "detect", "write"):
        assert "pipeline batch" in below[stage], (stage, below[stage])
    # the database write sits under the pipeline's write step
    assert below["postgres write_series"][0] == "write"
    [db] = [s for s in finished if s.name == "postgres write_series"]
    assert db.attributes is not None and db.attributes["db.system.name"] == "postgresql"
    # a read: its SQL statements are client spans under the request, with their text
    [read] = [s for s in finished if s.name == "GET /v1/meters/{meter_id}/readings"]
    statements = [
        s
        for s in finished
        if s.context.trace_id == read.context.trace_id and s.name == "postgres SELECT"
    ]
    assert statements, "no SQL span under the read"
    for statement in statements:
        assert "GET /v1/meters/{meter_id}/readings" in _chain(statement, by_id)
        assert statement.kind.name == "CLIENT"
    texts = [str((s.attributes or {}).get("db.query.text", "")) for s in statements]
    assert any("FROM readings" in t for t in texts), texts
    # the statement's parameters (the meter's id) are never in a span
    assert not any("TRACE-M1" in t for t in texts)
    # a probe answered without an incoming trace: a root span of its own
    [health] = [s for s in finished if s.name == "GET /health"]
    assert health.parent is None and health.context.trace_id != TRACE_ID


@pytest.mark.kafka
def test_a_kafka_message_carries_the_trace_from_producer_to_worker(
    spans: InMemorySpanExporter,
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    from integration.kafka.test_worker import ThreadWorker, count, wait_for

    frame = pl.DataFrame(_readings("TRACE-K1", 12)).with_columns(
        pl.col("ts").str.to_datetime(time_zone="UTC")
    )
    sender = Sender(kafka)
    sent = sender.send_frame("readings", frame, max_records=4)  # three messages
    sender.flush(30)
    assert sent == 12
    worker = ThreadWorker(settings, kafka)
    try:
        wait_for(lambda: count(conn, "readings") >= 12, 90, "the readings stored")
    finally:
        assert worker.finish() == 0

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    [publish] = [s for s in finished if s.name == f"{kafka.topic_readings} publish"]
    assert publish.kind.name == "PRODUCER" and publish.parent is None
    batches = [s for s in finished if s.name == "worker batch"]
    assert batches, [s.name for s in finished]
    # every message carried the publish span's context: the batch that took them
    # continues the producer's trace as its child
    first = batches[0]
    assert first.kind.name == "CONSUMER"
    assert first.context.trace_id == publish.context.trace_id
    assert first.parent is not None and first.parent.span_id == publish.context.span_id
    same = [s for s in finished if s.context.trace_id == publish.context.trace_id]
    names = {s.name: _chain(s, by_id) for s in same}
    # the stages ran in the worker's batch, the write on the background writer thread
    assert "worker batch" in names["decode"]
    assert "worker batch" in names["write"]
    assert names["postgres write_series"][:1] == ["write"]


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP traces receiver: keeps every POST /v1/traces body."""

    bodies: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_ingest_exports_its_spans_over_otlp_to_a_receiver(
    settings: Settings, tmp_path: Path
) -> None:
    """A real ``metrify ingest`` process with METRIFY_TRACING__ENDPOINT set sends its
    spans as OTLP protobuf; decoded here with opentelemetry-proto."""
    _Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = tmp_path / "readings.csv"
    rows = _readings("OTLP-M1", 6)
    data.write_text(
        "meter_id,ts,interval_s,import_kwh\n"
        + "".join(f"{r['meter_id']},{r['ts']},{r['interval_s']},{r['import_kwh']}\n" for r in rows)
    )
    env = {
        **os.environ,
        "METRIFY_TRACING__ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "METRIFY_TRACING__SERVICE_NAME": "metrify-test",
        "METRIFY_TRACING__HEADERS": '{"x-ingest-key": "k-123"}',
    }
    try:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("metrify")), "ingest", "readings", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert _Receiver.bodies, "no export reached the receiver"
    found: dict[str, Any] = {}
    services = set()
    for path, media, body in _Receiver.bodies:
        assert path == "/v1/traces" and media == "application/x-protobuf"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            services.add(attrs["service.name"])
            for scope in resource_spans.scope_spans:
                assert scope.scope.name == "metrify"
                for span in scope.spans:
                    found.setdefault(span.name, span)
    assert services == {"metrify-test"}
    for name in ("load files", "load file", "decode", "pipeline batch", "validate", "write"):
        assert name in found, f"{name} not exported: {sorted(found)}"
    assert "postgres write_series" in found and "lake write" in found
    root = found["load files"]
    assert root.parent_span_id == b""
    # one load, one trace
    assert {s.trace_id for s in found.values()} == {root.trace_id}


def _failing_job(ctx: JobContext) -> Outcome:
    raise RuntimeError("the job failed on purpose")


def test_a_batch_job_run_is_a_span_with_its_outcome(
    spans: InMemorySpanExporter, settings: Settings
) -> None:
    day = Interval(dt.date(2024, 2, 1))
    failing = JobSpec("trace-boom", f"{__name__}:_failing_job", "fails")
    with open_session(settings) as session:
        runs = run_jobs(settings, session.conn, session.lake, [day], [spec("aggregates"), failing])
    assert [r.status for r in runs] == ["ok", "failed"]
    finished = {s.name: s for s in spans.get_finished_spans()}
    ok, boom = finished["batch aggregates"], finished["batch trace-boom"]
    assert ok.status.is_ok and ok.attributes is not None
    assert ok.attributes["metrify.job.status"] == "ok"
    assert ok.attributes["metrify.interval.start"] == "2024-02-01T00:00:00+00:00"
    assert not boom.status.is_ok
    assert boom.status.description is not None and "failed on purpose" in boom.status.description
