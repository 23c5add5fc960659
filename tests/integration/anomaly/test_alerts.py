"""Alerts: one per incident, webhook retries against a real local HTTP receiver, an
acknowledged anomaly never re-alerts, the Kafka sink on librdkafka's mock cluster, and
the CLI's list / ack / status changes with clear errors for bad input."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer
from typer.testing import CliRunner

from metrify.anomaly.alerts import Alerter, KafkaSink, WebhookSink
from metrify.cli import app
from metrify.contracts.records import METER, READING
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from metrify.settings.anomaly import AlertConfig, AnomalyConfig
from metrify.settings.kafka import KafkaSettings
from support.series import PER_DAY, STEP, T0, series


class Receiver:
    """A real HTTP server on a free port that fails the first ``failures`` POSTs with 503."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                if outer.attempts <= outer.failures:
                    self.send_response(503)
                else:
                    outer.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def no_pv_meter(settings: Settings) -> None:
    with open_session(settings) as session:
        p = session.pipeline(METER)
        import polars as pl

        p.submit(pl.DataFrame({"meter_id": ["NOPV"], "has_pv": [False]}), source="t")
        p.close()


def ingest(settings: Settings, frame: Any) -> None:
    with open_session(settings) as session:
        p = session.pipeline(READING)
        p.submit(frame, source="t")
        p.close()


def with_webhook(settings: Settings, url: str) -> Settings:
    alerts = AlertConfig(min_severity="medium", log=False, webhook_url=url, webhook_backoff_s=0.05)
    return settings.model_copy(update={"anomaly": AnomalyConfig(alerts=alerts)})


def test_webhook_retries_then_one_alert_per_incident_and_ack_silences(
    settings: Settings, conn: psycopg.Connection, receiver: Receiver
) -> None:
    hooked = with_webhook(settings, receiver.url)
    no_pv_meter(settings)
    start = 10 * PER_DAY + 24
    export = {i: 0.3 for i in range(start, start + 4)}  # 2 h: a high-severity incident
    ingest(hooked, series("NOPV", 11, export=export))
    # two 503s, then delivered: three attempts, one body with the one alert
    assert receiver.attempts == 3
    assert len(receiver.bodies) == 1
    (alert,) = receiver.bodies[0]["alerts"]
    assert alert["kind"] == "unexpected_export" and alert["subject_id"] == "NOPV"
    assert alert["severity"] == "high" and alert["status"] == "open"
    anomaly_id = alert["id"]

    # the same batch again: the incident exists, nothing new to say
    ingest(hooked, series("NOPV", 11, export=export))
    assert receiver.attempts == 3

    result = CliRunner().invoke(
        app, ["anomalies", "ack", str(anomaly_id), "--operator", "alice", "--note", "on it"]
    )
    assert result.exit_code == 0, result.output
    assert "acknowledged by alice" in result.output

    # export the next afternoon, far from the first: a new incident, and its own alert
    later = 11 * PER_DAY + 26
    ingest(
        hooked,
        series("NOPV", 1, export={i: 0.3 for i in range(later, later + 4)}, first=11 * PER_DAY),
    )
    rows = conn.execute(
        "SELECT id, status, changed_by, note, ts_start FROM anomalies ORDER BY id"
    ).fetchall()
    assert rows[0] == (
        anomaly_id,
        "acknowledged",
        "alice",
        "on it",
        T0 + dt.timedelta(seconds=STEP * start),
    )
    assert len(rows) == 2 and rows[1][1] == "open"
    assert receiver.attempts == 4 and [b["alerts"][0]["id"] for b in receiver.bodies] == [
        anomaly_id,
        rows[1][0],
    ]


def test_a_stream_pipeline_alerts_from_its_background_writer(
    settings: Settings, conn: psycopg.Connection, receiver: Receiver
) -> None:
    """A worker's pipeline (writes in the background, one batch in flight) sends an
    incident's alert once its batch is durable: once, counted, marked alerted."""
    hooked = with_webhook(settings, receiver.url)
    no_pv_meter(settings)
    start = 10 * PER_DAY + 24
    frame = series("NOPV", 11, export={i: 0.3 for i in range(start, start + 4)})
    with open_session(hooked) as session:
        p = session.pipeline(READING, overlap=True)
        half = frame.height // 2
        for part in (frame.head(half), frame.slice(half)):  # two batches, one in flight
            p.submit(part, source="kafka:t:0")
            p.flush()
        p.settle()
        assert p.detector is not None and p.detector.stats.alerts == 1
        p.close()
    assert len(receiver.bodies) == 1
    (alert,) = receiver.bodies[0]["alerts"]
    assert alert["kind"] == "unexpected_export" and alert["subject_id"] == "NOPV"
    row = conn.execute("SELECT id, alerted_at IS NOT NULL FROM anomalies").fetchall()
    assert row == [(alert["id"], True)]


def test_continuing_acknowledged_incident_extends_without_alert(
    settings: Settings, conn: psycopg.Connection, receiver: Receiver
) -> None:
    hooked = with_webhook(settings, receiver.url)
    no_pv_meter(settings)
    last = 11 * PER_DAY - 4  # export over the last 2 h of the first batch ...
    ingest(hooked, series("NOPV", 11, export={i: 0.3 for i in range(last, 11 * PER_DAY)}))
    assert len(receiver.bodies) == 1
    anomaly_id = receiver.bodies[0]["alerts"][0]["id"]
    with psycopg.connect(conn.info.dsn, autocommit=True) as c:
        c.execute(
            "UPDATE anomalies SET status = 'acknowledged', changed_by = 'bob' WHERE id = %s",
            (anomaly_id,),
        )
    # ... and on for 3 h into the next one: the same incident, longer, still silent
    ingest(
        hooked,
        series(
            "NOPV",
            1,
            export={i: 0.3 for i in range(11 * PER_DAY, 11 * PER_DAY + 6)},
            first=11 * PER_DAY,
        ),
    )
    rows = conn.execute("SELECT id, status, ts_start, ts_end, intervals FROM anomalies").fetchall()
    assert rows == [
        (
            anomaly_id,
            "acknowledged",
            T0 + dt.timedelta(seconds=STEP * last),
            T0 + dt.timedelta(seconds=STEP * (11 * PER_DAY + 6)),
            10,
        )
    ]
    assert len(receiver.bodies) == 1 and receiver.attempts == 3


def test_webhook_gives_up_after_retries_without_failing() -> None:
    r = Receiver(failures=100)
    try:
        sink = WebhookSink(r.url, retries=2, backoff_s=0.01)
        alerter = Alerter([sink])
        assert alerter.send([{"id": 1, "subject_id": "M"}]) == 0
        assert r.attempts == 3 and alerter.failures == 1
    finally:
        r.close()


@pytest.mark.kafka
def test_kafka_sink_on_mock_cluster(kafka: KafkaSettings) -> None:
    topic = f"{kafka.group_id}.alerts"
    KafkaSink(topic, kafka.producer_config()).send(
        [{"id": 7, "subject_id": "M9", "kind": "sustained_drop"}]
    )
    consumer = Consumer(
        {
            **kafka.consumer_config(),
            "group.id": f"{kafka.group_id}-check",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        message = None
        for _ in range(50):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                break
        assert message is not None and not message.error()
        assert message.key() == b"M9"
        assert json.loads(message.value()) == {
            "id": 7,
            "subject_id": "M9",
            "kind": "sustained_drop",
        }
    finally:
        consumer.close()


def test_cli_list_and_status_changes(settings: Settings, conn: psycopg.Connection) -> None:
    no_pv_meter(settings)
    start = 10 * PER_DAY + 24
    quiet = settings.model_copy(update={"anomaly": AnomalyConfig(alerts=AlertConfig(log=False))})
    ingest(quiet, series("NOPV", 11, export={i: 0.3 for i in range(start, start + 2)}))
    runner = CliRunner()
    listed = runner.invoke(app, ["anomalies", "list", "--meter", "NOPV", "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = [json.loads(line) for line in listed.output.splitlines()]
    assert row["kind"] == "unexpected_export" and row["severity"] == "high"  # a whole hour
    assert row["ts_start"] == (T0 + dt.timedelta(seconds=STEP * start)).isoformat()
    table = runner.invoke(app, ["anomalies", "list", "--kind", "unexpected_export"])
    assert table.exit_code == 0 and "NOPV" in table.output
    none = runner.invoke(app, ["anomalies", "list", "--since", "2030-01-01", "--json"])
    assert none.exit_code == 0 and none.output == ""
    fp = runner.invoke(app, ["anomalies", "false-positive", str(row["id"]), "--operator", "eve"])
    assert fp.exit_code == 0, fp.output
    assert conn.execute("SELECT status, changed_by FROM anomalies").fetchone() == (
        "false_positive",
        "eve",
    )
    resolved = runner.invoke(app, ["anomalies", "resolve", str(row["id"])])
    assert resolved.exit_code == 0 and "resolved" in resolved.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ack", "abc"], "abc: expected an anomaly id"),
        (["ack", "0"], "expected an anomaly id (a whole number >= 1)"),
        (["ack", "424242"], "no anomaly with id 424242"),
        (["list", "--kind", "theft"], "--kind theft: expected one of"),
        (["list", "--since", "yesterday"], "--since yesterday: expected an ISO time"),
        (["list", "--severity", "urgent"], "--severity urgent: expected one of"),
        (["list", "--status", "closed"], "--status closed: expected one of"),
        (["daily", "--date", "31/12/2013"], "--date 31/12/2013: expected a day"),
    ],
)
def test_cli_bad_input_is_one_clear_line(settings: Settings, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["anomalies", *args])
    assert result.exit_code == 2
    # one message (the terminal may wrap it), never a traceback
    assert result.output.startswith("error: ") and result.output.count("error:") == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
