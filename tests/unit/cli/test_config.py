"""``metrify config``: every setting (Kafka's too), no secret, clear errors for unknown
keys and a missing file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.delenv("METRIFY_CONFIG", raising=False)
    monkeypatch.setenv("METRIFY_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _config(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["config", *args])
    # the error console wraps at the terminal width: join its lines back
    return result.exit_code, result.stdout, result.stderr.replace("\n", "")


def test_config_shows_kafka_and_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_KAFKA_BOOTSTRAP_SERVERS", "b1:9092")
    monkeypatch.setenv("METRIFY_KAFKA_SASL_USERNAME", "ingest")
    monkeypatch.setenv("METRIFY_KAFKA_SASL_PASSWORD", "kafkaPW1")
    monkeypatch.setenv("METRIFY_KAFKA_SASL_JAAS_CONFIG", "x password=jaasPW2;")
    monkeypatch.setenv("METRIFY_KAFKA_SESSION_TIMEOUT_MS", "10000")
    monkeypatch.setenv(
        "METRIFY_ANOMALY__ALERTS__WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/hookTK3"
    )
    monkeypatch.setenv("METRIFY_LAKE_URL", "s3://AKIAKEY4:s3SECRET5@bucket/lake")
    code, out, _ = _config("--json")
    assert code == 0
    shown = json.loads(out)
    kafka = shown["kafka"]
    assert kafka["bootstrap_servers"] == "b1:9092" and kafka["sasl_username"] == "ingest"
    assert kafka["sasl_password"] == "***"
    assert kafka["options"]["session.timeout.ms"] == "10000"
    assert kafka["options"]["sasl.jaas.config"] == "***"
    code, table, _ = _config()
    assert code == 0 and "b1:9092" in table and "kafka" in table
    for secret in ("kafkaPW1", "jaasPW2", "hookTK3", "AKIAKEY4", "s3SECRET5"):
        assert secret not in out and secret not in table, secret


def test_unknown_key_and_missing_file_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRIFY_CONFIG", str(tmp_path / "absent.toml"))
    code, _, error = _config()
    assert code == 2 and "absent.toml" in error and "no such file" in error
    assert "Traceback" not in error
    path = tmp_path / "metrify.toml"
    path.write_text("[vee]\nspike_madz = 3\n")
    monkeypatch.setenv("METRIFY_CONFIG", str(path))
    get_settings.cache_clear()
    code, _, error = _config()
    assert code == 2 and "vee.spike_madz: unknown setting" in error


def test_rejected_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_API__JWT_ALGORITHM", "none-hunter2")
    monkeypatch.setenv("METRIFY_KAFKA_BATCH_MAX_MS", "soon")
    code, _, error = _config()
    assert code == 2 and "api.jwt_algorithm" in error and "hunter2" not in error
    monkeypatch.delenv("METRIFY_API__JWT_ALGORITHM")
    get_settings.cache_clear()
    code, _, error = _config()
    assert code == 2 and "invalid Kafka configuration: batch_max_ms" in error
    assert "soon" not in error
