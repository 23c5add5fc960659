"""One settings object for the whole platform.

Every knob is an environment variable ``METRIFY_*`` (or a line in an optional TOML file
named by ``METRIFY_CONFIG``), so the same code runs on a laptop and in a fleet: only the
settings differ.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from metrify.settings.anomaly import AnomalyConfig
from metrify.settings.api import ApiConfig
from metrify.settings.commodities import CommodityConfig
from metrify.settings.masking import mask_tree, mask_url
from metrify.settings.mqtt import MqttConfig
from metrify.settings.telemetry import TracingConfig
from metrify.settings.vee import VeeConfig
from metrify.settings.warehouse import WarehouseConfig


class UnknownMeterPolicy(StrEnum):
    """What to do with readings for an id the reference tables do not know."""

    REGISTER = "register"  # keep the readings, add the meter with status 'unregistered'
    QUARANTINE = "quarantine"  # send the readings to quarantine


class Settings(BaseSettings):
    """Effective configuration. Defaults give the embedded, single-machine shape."""

    # extra="forbid": a misspelt key in the TOML file (or a nested METRIFY_X__Y) is an
    # error naming it, not a setting silently left at its default
    model_config = SettingsConfigDict(
        env_prefix="METRIFY_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Field(default=Path(".metrify"), description="state folder")
    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "PostgreSQL URL the API, loads and workers connect with (a member of the "
            "least-privileged metrify_app role); unset starts the embedded server"
        ),
    )
    database_owner_url: SecretStr | None = Field(
        default=None,
        description=(
            "PostgreSQL URL of the schema's owner, used only to run migrations; unset: "
            "database_url migrates too (the embedded server's owner is its superuser)"
        ),
    )
    database_read_url: SecretStr | None = Field(
        default=None,
        description=(
            "PostgreSQL URL of a streaming read replica (same roles as database_url): the "
            "API's uncached reads go there while it keeps up; unset: every read on the primary"
        ),
    )
    replica_max_lag_s: float = Field(
        default=10.0,
        ge=0,
        description="reads go to the primary while the read replica is further behind than this",
    )
    replica_check_s: float = Field(
        default=1.0, gt=0, description="how often the API measures the read replica's lag"
    )
    lake_url: str | None = Field(
        default=None, description="lake folder or s3:// URL; default <home>/lake"
    )
    log_level: str = Field(default="INFO")
    batch_size: int = Field(default=500_000, ge=1, description="records per pipeline batch")
    quality_refresh_s: float = Field(
        default=5.0,
        ge=0,
        description="daily quality scores of a running stream are refreshed at most this often",
    )
    reference_cache_s: float = Field(
        default=30.0,
        ge=0,
        description="a running pipeline re-reads meters' reference data at most this often",
    )
    max_rejects: int = Field(
        default=10_000,
        ge=1,
        description=(
            "bad rows kept in quarantine per file, request or stream micro-batch; the rest "
            "are counted (rejected, by reason) and named in a warning, not stored"
        ),
    )
    unknown_meters: UnknownMeterPolicy = UnknownMeterPolicy.REGISTER
    fleet_timezone: str = Field(
        default="UTC",
        min_length=1,
        description=(
            "IANA zone of the buckets of group totals (node, region, segment, fleet) when a"
            " query names none; a meter's own buckets follow its own zone"
        ),
    )
    holidays: str = Field(
        default="GB-ENG",
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})?$",
        description=(
            "public-holiday calendar the forecasts and patterns read, as the `holidays`"
            " package names it: a country code with an optional subdivision (GB-ENG, DE-BY,"
            " US-CA). England and Wales by default: their bank holidays (Easter Monday, late"
            " August) are not UK-wide, so plain GB misses them, and they were the worst days"
            " of GB demand"
        ),
    )
    lake_enabled: bool = True
    vee: VeeConfig = Field(default_factory=VeeConfig, description="VEE thresholds")
    commodities: CommodityConfig = Field(
        default_factory=CommodityConfig, description="gas calorific values per region"
    )
    anomaly: AnomalyConfig = Field(
        default_factory=AnomalyConfig, description="anomaly detectors and alert sinks"
    )
    api: ApiConfig = Field(default_factory=ApiConfig, description="REST API and its security")
    mqtt: MqttConfig = Field(
        default_factory=MqttConfig, description="MQTT broker login and TLS (metrify mqtt)"
    )
    warehouse: WarehouseConfig = Field(
        default_factory=WarehouseConfig, description="dbt targets: DuckDB, PostgreSQL, Snowflake"
    )
    tracing: TracingConfig = Field(
        default_factory=TracingConfig, description="OpenTelemetry traces over OTLP (off by default)"
    )

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(
                f"log level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {value}"
            )
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("METRIFY_CONFIG")
        if toml_path:
            # the TOML source reads a missing file as empty: a typo in the path would run
            # on defaults without a word
            if not Path(toml_path).is_file():
                raise ValueError(f"METRIFY_CONFIG={toml_path}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    @property
    def warehouse_path(self) -> Path:
        """The embedded DuckDB warehouse file (the dbt ``duckdb`` target builds it)."""
        return (self.warehouse.path or self.home / "warehouse.duckdb").resolve()

    @property
    def lake(self) -> str:
        """The lake location: a local folder path or an fsspec URL such as ``s3://b/p``."""
        return self.lake_url or str((self.home / "lake").resolve())

    def masked(self) -> dict[str, Any]:
        """Effective settings with secrets masked, for display.

        Every value, nested ones too, goes through :func:`~metrify.settings.masking.mask_tree`:
        URL passwords, object-store keys, secret query parameters and webhook paths.
        """
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = mask_url(value.get_secret_value())
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, BaseModel):
                value = value.model_dump(mode="json")  # SecretStr -> "**********"
            out[name] = value
        out["lake"] = self.lake
        masked: dict[str, Any] = mask_tree(out)
        return masked


__all__ = ["Settings", "UnknownMeterPolicy", "get_settings", "mask_url"]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests clear the cache to change them)."""
    return Settings()
