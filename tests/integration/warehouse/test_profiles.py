"""The dbt profile made from settings: each target's fields, and no secret in it or in
``metrify config``'s display (the profile names secrets with env_var())."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from metrify.batch import dbt
from metrify.cli import app
from metrify.settings import Settings, get_settings

SECRET = "s3cr3t-Pa55word"


def test_snowflake_profile_reads_its_secrets_from_env_vars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METRIFY_WAREHOUSE__SNOWFLAKE__ACCOUNT", "xy12345.eu-west-1")
    monkeypatch.setenv("METRIFY_WAREHOUSE__SNOWFLAKE__USER", "loader")
    monkeypatch.setenv("METRIFY_WAREHOUSE__SNOWFLAKE__PASSWORD", SECRET)
    monkeypatch.setenv("METRIFY_WAREHOUSE__SNOWFLAKE__ROLE", "TRANSFORMER")
    monkeypatch.setenv("METRIFY_WAREHOUSE__SNOWFLAKE__SCHEMA", "MARTS_DEV")
    settings = Settings()
    content, env = dbt.profile(settings, "snowflake")
    output = content["metrify"]["outputs"]["snowflake"]
    assert output["account"] == "xy12345.eu-west-1" and output["role"] == "TRANSFORMER"
    assert output["schema"] == "MARTS_DEV"
    assert SECRET not in json.dumps(content)
    assert SECRET in env.values()
    assert "env_var(" in output["password"]


def test_postgres_profile_from_a_url_keeps_the_password_out() -> None:
    settings = Settings(
        warehouse={"postgres_url": f"postgresql://builder:{SECRET}@db.example:6543/metrify"}
    )
    content, env = dbt.profile(settings, "postgres")
    output = content["metrify"]["outputs"]["postgres"]
    assert (output["host"], output["port"], output["user"], output["dbname"]) == (
        "db.example",
        6543,
        "builder",
        "metrify",
    )
    assert SECRET not in json.dumps(content) and list(env.values()) == [SECRET]


def test_config_masks_the_warehouse_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIFY_WAREHOUSE__SNOWFLAKE__PASSWORD", SECRET)
    monkeypatch.setenv(
        "METRIFY_WAREHOUSE__POSTGRES_URL", f"postgresql://builder:{SECRET}@db.example/metrify"
    )
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["config"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.stderr
    assert "warehouse" in result.stdout and SECRET not in result.stdout
