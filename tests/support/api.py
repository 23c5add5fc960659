"""A running API for the tests over HTTP, and the users and reference data they start from.

One app per test module over the session's real PostgreSQL, driven through Starlette's
TestClient (the real ASGI stack: middleware, routing, pools, the pipeline). Users are
created in the store and sign in through the OAuth2 endpoint like any client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from metrify.api import create_app, users
from metrify.api.rbac import Role
from metrify.settings import Settings
from metrify.settings.api import ApiConfig
from support.database import app_url, clear_tables

SECRET = "test-secret-" + "s" * 40
PASSWORD = "correct horse battery staple"
ROLES = [r.value for r in Role]


@dataclass
class Api:
    client: TestClient
    settings: Settings
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def add_user(self, name: str, role: str, regions: list[str] | None = None) -> str:
        """Create a user, sign in over HTTP, remember and return the access token."""
        with self.conn() as conn:
            users.create_user(conn, name, PASSWORD, Role(role), regions)
        response = self.client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": name, "password": PASSWORD},
        )
        assert response.status_code == 200, response.text
        token = str(response.json()["access_token"])
        self.tokens[name] = token
        return token

    @contextlib.contextmanager
    def peer(self, host: str) -> Iterator[None]:
        """Requests in this block come from ``host`` (the TCP peer the app sees), as
        when clients behind different addresses or a proxy call the server."""
        transport: Any = self.client._transport
        before = transport.client
        transport.client = (host, 50000)
        try:
            yield
        finally:
            transport.client = before

    def sign_in(
        self, name: str, password: str = PASSWORD, headers: dict[str, str] | None = None
    ) -> Any:
        """``POST /v1/auth/token`` with the password grant: the response."""
        return self.client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": name, "password": password},
            headers=headers,
        )

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def add_key(
        self, name: str, role: str, regions: list[str] | None = None, expires_days: int | None = 30
    ) -> dict[str, Any]:
        with self.conn() as conn:
            return users.create_key(
                conn,
                name,
                Role(role),
                created_by="test",
                regions=regions,
                expires_days=expires_days,
            )


@contextlib.contextmanager
def running_api(
    database_url: str,
    home: Path,
    *,
    clean: bool = True,
    settings: dict[str, Any] | None = None,
    dashboard: bool = False,
    **api: Any,
) -> Iterator[Api]:
    """A clean database and a started app; ``api`` overrides ApiConfig fields and
    ``settings`` other Settings fields. ``clean=False`` keeps the tables: a second app
    over the same database stands for another worker process. ``dashboard``: the app
    ``metrify serve`` runs, the API with the web dashboard's pages."""
    if clean:
        clear_tables(database_url)
    cfg = {"jwt_secret": SECRET, "rate_limit_per_s": 10_000.0, "rate_limit_burst": 10_000, **api}
    built = Settings(
        database_url=app_url(database_url),  # the app's least-privileged role
        database_owner_url=database_url,
        home=home / "home",
        lake_url=str(home / "lake"),
        api=ApiConfig(**cfg),
        **(settings or {}),
    )
    if dashboard:
        from metrify.web import create_app as create_web

        app = create_web(built)
    else:
        app = create_app(built)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, built, database_url)


def seed_reference(api: Api, admin: str) -> None:
    """Two regions with a meter each, a grid node and a weather station."""
    h = api.headers(admin)
    for body in ({"node_id": "N1", "kind": "feeder", "capacity_mw": 5.0},):
        assert api.client.post("/v1/grid/nodes", json=body, headers=h).status_code == 201
    assert (
        api.client.post(
            "/v1/weather/stations", json={"station_id": "S1", "name": "London"}, headers=h
        ).status_code
        == 201
    )
    for meter, region in (("M-N1", "north"), ("M-S1", "south")):
        response = api.client.post(
            "/v1/meters",
            json={"meter_id": meter, "region": region, "node_id": "N1", "interval_s": 900},
            headers=h,
        )
        assert response.status_code == 201, response.text
