"""The stream worker's small parts, without a cluster or a database: the command line,
the back-off, how failures and consumer errors are counted and told, and the helpers
that name partitions and quarantine lines.

A worker is built against a closed port: librdkafka connects lazily, so nothing is
reached until a poll, and these tests never poll.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from metrify.ops import metrics
from metrify.pipeline import worker as worker_module
from metrify.pipeline.worker import Worker, backoff, main
from metrify.settings import Settings, get_settings
from metrify.settings.kafka import KafkaSettings


def errors(kind: str) -> float:
    return metrics.ERRORS.labels(kind)._value.get()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    settings = Settings(home=tmp_path / "home", lake_url=str(tmp_path / "lake"))
    built = Worker(settings, KafkaSettings(bootstrap_servers="127.0.0.1:9"), ["readings"])
    yield built
    built.consumer.close()


def test_backoff_doubles_from_half_a_second_up_to_thirty() -> None:
    assert [backoff(n) for n in (0, 1, 2, 3, 4)] == [0.5, 0.5, 1.0, 2.0, 4.0]
    assert backoff(7) == 30.0  # 0.5 * 2**6 = 32, capped
    assert backoff(6) == 16.0


def test_main_without_kafka_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("METRIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("METRIFY_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main([]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("error: Kafka is not configured")
    assert "METRIFY_KAFKA_BOOTSTRAP_SERVERS" in err and len(err.strip().splitlines()) == 1


def test_main_refuses_an_unknown_kind_and_names_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--kind", "gas"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m metrify.pipeline.worker")
    assert "invalid choice: 'gas'" in err and "--metrics-port" in err


def test_a_worker_refuses_an_unknown_kind(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(ValueError, match="unknown kind 'gas'; expected one of readings"):
        Worker(settings, KafkaSettings(bootstrap_servers="127.0.0.1:9"), ["readings", "gas"])


def test_a_database_failure_is_counted_and_told_by_its_first_line(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    before = errors("database")
    with caplog.at_level(logging.WARNING, logger=worker_module.__name__):
        worker._failed(psycopg.OperationalError("server closed\n  detail"), 3)
        worker._failed(psycopg.OperationalError(""), 1)
    assert errors("database") == before + 2
    assert caplog.messages == [
        "database unavailable (server closed); retrying in 2.0 s",
        "database unavailable (OperationalError); retrying in 0.5 s",
    ]


def test_kafka_and_other_failures_have_their_own_counters(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    kafka, other = errors("kafka"), errors("other")
    with caplog.at_level(logging.WARNING, logger=worker_module.__name__):
        worker._failed(KafkaException(KafkaError(KafkaError._TRANSPORT, "down")), 2)
        worker._failed(RuntimeError("boom"), 1)
    assert (errors("kafka"), errors("other")) == (kafka + 1, other + 1)
    assert (
        caplog.messages[0].startswith("Kafka error (") and "retrying in 1.0 s" in caplog.messages[0]
    )
    assert caplog.messages[1] == "batch failed; retrying in 0.5 s"
    assert caplog.records[1].exc_info is not None  # the traceback of an unexpected error


class _Message:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


def test_a_missing_topic_is_told_once_and_not_counted(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    before = errors("kafka")
    missing = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "no such topic")
    with caplog.at_level(logging.WARNING, logger=worker_module.__name__):
        worker._consumer_error(missing, _Message("t1"))  # type: ignore[arg-type]
        worker._consumer_error(missing, _Message("t1"))  # type: ignore[arg-type]
        worker._consumer_error(missing, _Message("t2"))  # type: ignore[arg-type]
        worker._consumer_error(KafkaError(KafkaError._TRANSPORT, "reset"), _Message("t1"))  # type: ignore[arg-type]
    assert errors("kafka") == before + 1
    assert caplog.messages == [
        "topic t1 does not exist (yet): no such topic",
        "topic t2 does not exist (yet): no such topic",
        "consumer error: reset",
    ]


def test_a_fatal_consumer_error_stops_the_worker(worker: Worker) -> None:
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    with pytest.raises(worker_module._Fatal, match="fenced"):
        worker._consumer_error(fatal, _Message("t1"))  # type: ignore[arg-type]


def test_partitions_and_quarantine_lines_are_named() -> None:
    assert worker_module._names([]) == "nothing"
    parts = [TopicPartition("readings", 0), TopicPartition("grid", 3)]
    assert worker_module._names(parts) == "readings[0], grid[3]"

    class Offset:
        def __init__(self, offset: int | None) -> None:
            self._offset = offset

        def offset(self) -> int | None:
            return self._offset

    assert worker_module._line(Offset(0)) == 0  # type: ignore[arg-type]
    assert worker_module._line(Offset(2**31 - 1)) == 2**31 - 1  # type: ignore[arg-type]
    assert worker_module._line(Offset(2**31)) is None  # type: ignore[arg-type]
    assert worker_module._line(Offset(None)) is None  # type: ignore[arg-type]
