"""The settings: secrets masked, a TOML file under the environment, bad values refused."""

from __future__ import annotations

import pytest

from metrify.settings import Settings, mask_url


def test_settings_mask_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_DATABASE_URL", "postgresql://app:s3cret@db.example:5432/metrify")
    monkeypatch.setenv("METRIFY_LOG_LEVEL", "debug")
    settings = Settings()
    shown = settings.masked()
    assert shown["database_url"] == "postgresql://app:***@db.example:5432/metrify"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(shown)
    assert shown["log_level"] == "DEBUG"
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_settings_from_toml(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "metrify.toml"
    path.write_text('batch_size = 1234\nlake_url = "s3://bucket/lake"\n')
    monkeypatch.setenv("METRIFY_CONFIG", str(path))
    monkeypatch.delenv("METRIFY_LAKE_URL", raising=False)
    settings = Settings()
    assert settings.batch_size == 1234 and settings.lake == "s3://bucket/lake"
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "99")
    assert Settings().batch_size == 99  # environment beats the file


def test_bad_setting_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_LOG_LEVEL", "LOUD")
    with pytest.raises(ValueError, match="log level"):
        Settings()
