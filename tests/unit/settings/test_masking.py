"""Secrets never reach a display or a log: URL passwords, object-store keys, token query
parameters and webhook paths; unknown keys and a missing config file are errors."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from metrify.anomaly.alerts import Alerter, WebhookSink
from metrify.ops.logging import cap_noisy_loggers
from metrify.settings import Settings
from metrify.settings.masking import mask_url, mask_webhook_url

SLACK = "https://hooks.slack.com/services/T0AAAA/B0BBBB/tokENsecret42"
S3 = "s3://AKIAEXAMPLEKEY:wJalr/XUtnFEMI+K7MDENG@bucket/lake"


def test_every_secret_in_settings_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_ANOMALY__ALERTS__WEBHOOK_URL", SLACK)
    monkeypatch.setenv("METRIFY_LAKE_URL", S3)
    monkeypatch.setenv("METRIFY_DATABASE_URL", "postgresql://app:pw1@db/x?sslpassword=pw2")
    monkeypatch.setenv("METRIFY_API__CORS_ORIGINS", '["https://ui.example?access_token=tk3"]')
    shown = Settings().masked()
    text = str(shown)
    for secret in ("tokENsecret42", "T0AAAA", "AKIAEXAMPLEKEY", "wJalr", "XUtn", "pw1", "pw2"):
        assert secret not in text, secret
    assert "tk3" not in text
    assert shown["anomaly"]["alerts"]["webhook_url"] == "https://hooks.slack.com/***"
    assert shown["lake_url"] == "s3://***:***@bucket/lake"
    assert shown["lake"] == "s3://***:***@bucket/lake"
    assert shown["database_url"] == "postgresql://app:***@db/x?sslpassword=***"
    assert shown["api"]["cors_origins"] == ["https://ui.example?access_token=***"]


def test_mask_url_keeps_what_is_not_secret() -> None:
    assert mask_url("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db"
    assert mask_url("s3://bucket/lake?region=eu-west-1") == "s3://bucket/lake?region=eu-west-1"
    assert mask_url("https://x.example/hook?token=abc&team=7") == (
        "https://x.example/hook?token=***&team=7"
    )
    assert mask_url("/var/lib/metrify/lake") == "/var/lib/metrify/lake"
    assert mask_webhook_url("https://h.example:8443/hook/abc?k=1") == (
        "https://h.example:8443/***?k=***"
    )


def test_unknown_key_in_config_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrify.toml"
    path.write_text("batch_sise = 5\n")
    monkeypatch.setenv("METRIFY_CONFIG", str(path))
    with pytest.raises(ValueError, match="batch_sise"):
        Settings()
    path.write_text("[vee]\nspike_madz = 3\n")
    with pytest.raises(ValueError, match="spike_madz"):
        Settings()
    path.write_text("[anomaly.alerts]\nweb_hook_url = 'https://h/x'\n")
    with pytest.raises(ValueError, match="web_hook_url"):
        Settings()


def test_missing_config_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_CONFIG", str(tmp_path / "nowhere.toml"))
    with pytest.raises(ValueError, match=r"nowhere\.toml"):
        Settings()


def test_webhook_retries_do_not_log_its_token(caplog: pytest.LogCaptureFixture) -> None:
    url = "https://hooks.example/services/T0/B0/tokENsecret42?sig=sigSECRET"
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(503)

    sink = WebhookSink(url, retries=2, backoff_s=0.0, sleep=lambda _s: None)
    sink.client = httpx.Client(transport=httpx.MockTransport(answer))
    alerter = Alerter([sink])
    # a server at INFO, as `metrify serve` configures it: httpx logs each request's full
    # URL at INFO, so the process's logging must cap it
    cap_noisy_loggers(logging.INFO)
    with caplog.at_level(logging.INFO):
        assert alerter.send([{"id": 1, "subject_id": "M"}]) == 0
    assert seen == [url] * 3  # the real address is still the one called
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "retrying" in logged and "failed" in logged
    assert "hooks.example" in logged
    assert "tokENsecret42" not in logged and "sigSECRET" not in logged and "T0" not in logged
