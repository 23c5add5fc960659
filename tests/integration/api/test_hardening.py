"""Hardening: pinned algorithms, rate limits, body limits, problem+json, headers, CORS,
the generated signing secret, and the operations endpoints."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from metrify.api.auth.tokens import SECRET_FILE
from support.api import PASSWORD, running_api
from support.tokens import access_claims, hs256, me, unsigned, user_id_of

PROBLEM = "application/problem+json"


def test_rs256_pins_the_algorithm(database_url: str, tmp_path: Path) -> None:
    """HS/RS confusion: an HS256 token keyed with the public key must fail on RS256."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with running_api(
        database_url,
        tmp_path,
        jwt_algorithm="RS256",
        jwt_secret=None,
        jwt_private_key=private_pem,
        jwt_public_key=public_pem,
    ) as api:
        token = api.add_user("rsa", "viewer")
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        assert me(api, token).status_code == 200
        uid = user_id_of(api, "rsa")
        confused = hs256(access_claims(uid), public_pem.encode())
        assert me(api, confused).status_code == 401
        assert me(api, unsigned({"alg": "none"}, access_claims(uid)) + ".").status_code == 401


def test_rate_limit_per_principal(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path, rate_limit_per_s=0.5, rate_limit_burst=3) as api:
        api.add_user("a", "viewer")
        api.add_user("b", "viewer")
        codes = [me(api, api.tokens["a"]).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = me(api, api.tokens["a"])
        assert limited.headers["content-type"] == PROBLEM
        assert int(limited.headers["retry-after"]) >= 1
        assert me(api, api.tokens["b"]).status_code == 200  # per principal


def test_failed_logins_are_throttled(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path, login_failures_per_minute=3) as api:
        api.add_user("carol", "viewer")
        form = {"grant_type": "password", "username": "carol", "password": "guess guess guess"}
        codes = [api.client.post("/v1/auth/token", data=form).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        right = {**form, "password": PASSWORD}
        assert api.client.post("/v1/auth/token", data=right).status_code == 429


def test_a_nul_character_in_a_sign_in_is_refused_not_a_server_error(
    database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL text cannot hold NUL: a user name with one must get a 400, in a form or
    in JSON, and the real user can still sign in."""
    with running_api(database_url, tmp_path) as api:
        api.add_user("dave", "viewer")
        form = {"grant_type": "password", "username": "da\x00ve", "password": PASSWORD}
        for response in (
            api.client.post("/v1/auth/token", data=form),
            api.client.post("/v1/auth/token", json=form),
        ):
            assert response.status_code == 400, response.text
            assert response.headers["content-type"] == PROBLEM
            assert "NUL" in response.json()["detail"]
        right = {**form, "username": "dave"}
        assert api.client.post("/v1/auth/token", data=right).status_code == 200


def test_body_limits(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path, max_body_bytes=4096, max_json_bytes=1024) as api:
        api.add_user("op", "operator")
        h = {**api.headers("op"), "Content-Type": "text/csv"}
        body = b"meter_id,ts,interval_s,import_kwh\n" + b"M1,2025-01-01T00:00Z,900,1\n" * 300
        response = api.client.post("/v1/readings", content=body, headers=h)
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            for _ in range(10):
                yield body[:1000]

        streamed = api.client.post("/v1/readings", content=chunks(), headers=h)
        assert streamed.status_code == 413
        small = api.client.post("/v1/readings", content=body[:2000], headers=h)
        assert small.status_code == 200
        big_json = {"meter_id": "M9", "tariff": "x" * 3000}
        big = api.client.post("/v1/meters", json=big_json, headers=api.headers("op"))
        assert big.status_code == 413
        nothing = api.client.get("/v1/meters", headers=api.headers("op"))
        assert nothing.status_code == 200
        with api.conn() as conn:  # only the accepted small body was stored: one key
            assert conn.execute("SELECT count(*) FROM readings").fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM meters WHERE meter_id = 'M9'").fetchone() == (
                0,
            )


def test_errors_are_problem_json_without_echo(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path) as api:
        api.add_user("root", "admin")
        h = api.headers("root")
        for response, status in (
            (api.client.get("/v1/no/such/thing"), 404),
            (api.client.put("/v1/meters", headers=h), 405),
            (api.client.get("/v1/meters/M1/readings", params={"from": "x"}, headers=h), 422),
            (
                api.client.post(
                    "/v1/readings", content=b"x", headers={**h, "Content-Type": "application/xml"}
                ),
                415,
            ),
        ):
            assert response.status_code == status
            assert response.headers["content-type"] == PROBLEM
            body = response.json()
            assert body["status"] == status and body["title"] and body["detail"]
            assert "Traceback" not in response.text
        weak = api.client.post(
            "/v1/admin/users",
            json={"username": "u1", "password": "sekrit-pw", "role": "viewer"},
            headers=h,
        )
        assert weak.status_code == 422
        assert "sekrit-pw" not in weak.text
        assert weak.json()["errors"][0]["loc"] == ["body", "password"]


def test_security_headers_and_closed_cors(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path) as api:
        for response in (api.client.get("/health"), api.client.get("/v1/nope")):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert response.headers["cache-control"] == "no-store"
            assert len(response.headers["x-request-id"]) >= 16
        preflight = api.client.options(
            "/v1/meters",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        echoed = api.client.get("/health", headers={"X-Request-ID": "abc-123"})
        assert echoed.headers["x-request-id"] == "abc-123"


def test_cors_when_configured(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path, cors_origins=["https://grid.example"]) as api:
        ok = api.client.options(
            "/v1/meters",
            headers={"Origin": "https://grid.example", "Access-Control-Request-Method": "GET"},
        )
        assert ok.headers["access-control-allow-origin"] == "https://grid.example"
        other = api.client.options(
            "/v1/meters",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_generated_secret_is_kept(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path, jwt_secret=None) as api:
        token = api.add_user("gen", "viewer")
        path = api.settings.home / SECRET_FILE
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        secret = path.read_text().strip()
        assert len(secret) >= 48
        assert jwt.decode(token, secret, algorithms=["HS256"], audience="metrify-api")
    # a restart (new app, same home) accepts the token issued before: same secret
    from fastapi.testclient import TestClient

    from metrify.api import create_app

    with TestClient(create_app(api.settings)) as client:
        assert (
            client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )


def test_short_configured_secret_is_refused(database_url: str, tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="at least 32 bytes"),
        running_api(database_url, tmp_path, jwt_secret="short"),
    ):
        pass


def test_operations_endpoints(database_url: str, tmp_path: Path) -> None:
    with running_api(database_url, tmp_path) as api:
        assert api.client.get("/health").json() == {"status": "ok"}
        ready = api.client.get("/ready").json()
        assert ready["status"] == "ready" and ready["database"] is True
        assert ready["schema_revision"] == ready["head_revision"] is not None
        api.client.get("/v1/no-such-route")
        metrics = api.client.get("/metrics")
        assert metrics.status_code == 200
        assert 'metrify_api_requests_total{method="GET",route="/health",status="200"}' in (
            metrics.text
        )
        assert api.client.get("/openapi.json").json()["info"]["title"] == "Metrify API"
        with api.conn() as conn:
            conn.execute("UPDATE alembic_version SET version_num = 'old'")
            try:
                not_ready = api.client.get("/ready")
            finally:
                conn.execute(
                    "UPDATE alembic_version SET version_num = %s", (ready["head_revision"],)
                )
        assert not_ready.status_code == 503
        assert not_ready.json()["status"] == "not ready"


def test_auth_cache_is_cleared_by_notify(database_url: str, tmp_path: Path) -> None:
    """With ``auth_cache_s`` a key check is re-used, yet a revocation made elsewhere (the
    CLI, another worker) reaches this worker through NOTIFY and acts at once."""
    import time

    from metrify.api import users

    with running_api(database_url, tmp_path, auth_cache_s=300) as api:
        key = api.add_key("cached", "ingest")
        h = {"X-API-Key": key["key"]}
        assert api.client.get("/v1/auth/me", headers=h).status_code == 200
        # a change that bypasses users.py (no NOTIFY) is not seen: the cache is real
        with api.conn() as conn:
            conn.execute("UPDATE api_keys SET role = 'viewer' WHERE key_id = %s", (key["key_id"],))
        assert api.client.get("/v1/auth/me", headers=h).json()["role"] == "ingest"
        with api.conn() as conn:  # another process revokes, as `metrify keys revoke` does
            users.revoke_key(conn, str(key["key_id"]))
        codes = []
        for _ in range(50):
            codes.append(api.client.get("/v1/auth/me", headers=h).status_code)
            if codes[-1] == 401:
                break
            time.sleep(0.02)
        assert codes[-1] == 401, codes
        assert len(codes) <= 10  # within a few notification round trips
