"""The MQTT broker login as settings: read from ``METRIFY_MQTT__*``, the password never
shown by ``metrify config`` (masked) nor in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrify.settings import Settings


def test_mqtt_login_from_the_environment_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_MQTT__USERNAME", "headend-7")
    monkeypatch.setenv("METRIFY_MQTT__PASSWORD", "hunter2-secret")
    monkeypatch.setenv("METRIFY_MQTT__TLS_CA", "/etc/metrify/ca.pem")
    settings = Settings()
    assert settings.mqtt.username == "headend-7"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "hunter2-secret"
    assert settings.mqtt.tls_ca == Path("/etc/metrify/ca.pem")
    shown = settings.masked()["mqtt"]
    assert shown["username"] == "headend-7" and shown["tls_ca"] == "/etc/metrify/ca.pem"
    assert "hunter2-secret" not in str(shown) and "hunter2-secret" not in repr(settings)


def test_unknown_mqtt_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_MQTT__PASWORD", "typo")
    with pytest.raises(ValueError, match=r"(?i)pasword"):
        Settings()
