"""Settings of the REST API (``METRIFY_API__*``), secure by default.

Kept apart from :mod:`metrify.settings` like the VEE thresholds: the API owns its knobs.
Secrets are :class:`~pydantic.SecretStr`, so ``metrify config`` masks them and they
never reach a log line.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class ApiConfig(BaseModel):
    """JWT keys, token lifetimes, CORS, rate and body limits, caches and the pool."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    jwt_algorithm: Literal["HS256", "RS256"] = Field(
        default="HS256", description="the ONLY algorithm tokens may use (pinned)"
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 secret (>= 32 bytes); unset: generated once under METRIFY_HOME",
    )
    jwt_private_key: SecretStr | None = Field(default=None, description="RS256 PEM private key")
    jwt_public_key: str | None = Field(default=None, description="RS256 PEM public key")
    jwt_issuer: str = "metrify"
    jwt_audience: str = "metrify-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    cors_origins: list[str] = Field(default_factory=list, description="closed by default")
    rate_limit_per_s: float = Field(
        default=100.0,
        gt=0,
        description="sustained requests/s per key or user (per worker; in total with redis_url)",
    )
    rate_limit_burst: int = Field(default=400, ge=1)
    login_failures_per_minute: int = Field(
        default=10,
        ge=1,
        description=(
            "failed sign-ins per client address per minute, whatever the user names "
            "(also the burst); beyond it that address gets 429 (shared by all workers)"
        ),
    )
    account_failures_burst: int = Field(
        default=10,
        ge=1,
        description=(
            "failed sign-ins of one user name, from any addresses, before the account "
            "is throttled for addresses it has not signed in from (see account_failures_per_hour)"
        ),
    )
    account_failures_per_hour: int = Field(
        default=30,
        ge=1,
        description=(
            "the sustained rate of failed sign-ins one user name may take once its burst "
            "is spent; addresses the user signed in from within known_address_days are exempt"
        ),
    )
    known_address_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description=(
            "a successful sign-in makes its address known for the user this long: a throttled "
            "account still signs in from there; 0 = no address is exempt"
        ),
    )
    refresh_failures_per_minute: int = Field(
        default=30,
        ge=1,
        description=(
            "unknown or re-used refresh tokens (refresh and sign-out) per client address per "
            "minute before 429; valid refreshes are never counted"
        ),
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "CIDRs of reverse proxies whose X-Forwarded-For is believed (JSON list); the "
            "client is the rightmost address not in them. Empty: the peer address, always"
        ),
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description=(
            "redis://host:port/db for the request rate limits and the sign-in throttle "
            "counters, shared by every worker and host (needs the 'redis' extra); unset: "
            "rate limits per process, throttle counters in PostgreSQL"
        ),
    )
    redis_prefix: str = Field(
        default="metrify:", description="prefix of every Redis key the API writes"
    )
    max_body_bytes: int = Field(default=64 << 20, ge=1024, description="ingest bodies")
    max_json_bytes: int = Field(default=1 << 20, ge=1024, description="other request bodies")
    max_page: int = Field(default=10_000, ge=1, description="largest page of a list")
    cache_ttl_s: float = Field(
        default=1.0,
        ge=0,
        description=(
            "latest-reading answers are re-used this long; ingests, edits and meter "
            "changes made through the API clear them at once in every worker (NOTIFY)"
        ),
    )
    auth_cache_s: float = Field(
        default=5.0,
        ge=0,
        description=(
            "re-use a verified key/token this long (never past its expiry); 0 = check "
            "the database on every request. User and key changes made through the API "
            "or the CLI act at once in every worker (LISTEN/NOTIFY clears the cache); "
            "without a LISTEN connection nothing is cached"
        ),
    )
    energy_cache_s: float = Field(
        default=300.0,
        ge=0,
        description=(
            "re-use an energy answer (GET /v1/energy) this long at most; any write that "
            "changes the aggregates clears every worker's answers at its commit (the "
            "database NOTIFYs); 0 = no cache, as without a LISTEN connection"
        ),
    )
    hot_paths: bool = Field(
        default=True,
        description=(
            "answer GET /v1/meters/{id}/latest without FastAPI's routing and dependency "
            "layers (same authentication, rate limit, permission and region checks)"
        ),
    )
    pool_size: int = Field(default=8, ge=1, le=200, description="connections per worker")
    ingest_group_rows: int = Field(
        default=50_000,
        ge=0,
        description=(
            "concurrent ingest requests of one kind that wait for the pipeline go through "
            "it as one run (one transaction, each answered with its own summary) up to "
            "this many records; requests that share an id never share a run. "
            "0 = one run per request"
        ),
    )
    ingest_runs: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "ingest pipeline runs at once per worker process and kind; further requests "
            "wait and share the next free run (see ingest_group_rows). One gave the "
            "highest rate here (bench/api.py, 2 cores): two overlap less than they lose "
            "in smaller groups"
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        """Normalised networks; a typo is an error at start-up, not a proxy ignored."""
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or CIDR"
                ) from None
        return out
