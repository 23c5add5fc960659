"""Settings of the warehouse (``METRIFY_WAREHOUSE__*``): where dbt builds the marts.

The embedded default is a DuckDB file under the state folder, built over the lake and the
store; ``postgres`` builds the same models inside the store's PostgreSQL; ``snowflake``
builds them in Snowflake, from landing tables staged from the S3 lake. Secrets are
:class:`~pydantic.SecretStr` so ``metrify config`` masks them and no log line holds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Target = Literal["duckdb", "postgres", "snowflake"]


class SnowflakeConfig(BaseModel):
    """A Snowflake account for the ``snowflake`` target (dbt-snowflake's profile fields)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    account: str | None = Field(
        default=None, description="account identifier, e.g. xy12345.eu-west-1"
    )
    user: str | None = None
    password: SecretStr | None = Field(default=None, description="password (or use a key pair)")
    private_key_path: Path | None = Field(default=None, description="PEM key for key-pair sign-in")
    private_key_passphrase: SecretStr | None = None
    authenticator: str | None = Field(default=None, description="e.g. externalbrowser, oauth")
    role: str | None = None
    database: str = "METRIFY"
    warehouse: str = Field(default="METRIFY_WH", description="the virtual warehouse to run on")
    schema_: str = Field(default="ANALYTICS", alias="schema", description="default schema")
    threads: int = Field(default=4, ge=1, le=64)
    stage: str | None = Field(
        default=None,
        description=(
            "external stage over the S3 lake: when set, each build first COPYs the lake's new"
            " Parquet files into the landing tables (unset: something else loads them)"
        ),
    )
    storage_integration: str | None = Field(
        default=None, description="storage integration the stage uses to read the bucket"
    )


class WarehouseConfig(BaseModel):
    """Which engine the dbt project builds on, and the embedded file's place."""

    model_config = ConfigDict(extra="forbid")

    target: Target = Field(default="duckdb", description="duckdb, postgres or snowflake")
    path: Path | None = Field(
        default=None, description="the DuckDB warehouse file; default <home>/warehouse.duckdb"
    )
    postgres_url: SecretStr | None = Field(
        default=None,
        description=(
            "PostgreSQL URL the postgres target builds with (a role that may create the "
            "staging, intermediate and marts schemas); unset: the schema owner's URL"
        ),
    )
    threads: int = Field(default=1, ge=1, le=64, description="dbt threads (duckdb, postgres)")
    memory_limit: str | None = Field(
        default=None,
        pattern=r"^\s*\d+(\.\d+)?\s*(%|[KMGT]i?B)\s*$",
        description=(
            "DuckDB's memory_limit for the embedded build, e.g. 8GB or 50% (beyond it DuckDB"
            " spills to <warehouse>.tmp); unset: DuckDB's own default, 80% of the RAM,"
            " which on a machine shared with other services can end in the kernel's OOM kill"
        ),
    )
    snowflake: SnowflakeConfig = Field(default_factory=SnowflakeConfig)
