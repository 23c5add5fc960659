"""The helpers the deployment tests lean on catch what they are meant to catch."""

from __future__ import annotations

import pytest

from unit.deploy.names import UsageError, parse_command, setting_names, unknown_settings


def test_settings_names_come_from_the_code() -> None:
    names = setting_names()
    # a top-level field, a nested one, a Kafka one, one read straight from os.environ
    assert {
        "METRIFY_DATABASE_URL",
        "METRIFY_API__REDIS_URL",
        "METRIFY_KAFKA_BOOTSTRAP_SERVERS",
        "METRIFY_LOG_FORMAT",
    } <= names
    assert unknown_settings(["METRIFY_API__REDIS", "METRIFY_DATABASE_URL", "PATH"]) == [
        "METRIFY_API__REDIS"
    ]


def test_commands_parse_with_the_real_cli() -> None:
    ctx = parse_command(["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"])
    assert ctx.params["port"] == 8000 and ctx.params["workers"] == 2
    with pytest.raises(UsageError):
        parse_command(["serve", "--threads", "2"])
    with pytest.raises(UsageError):
        parse_command(["servee"])
