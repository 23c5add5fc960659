"""Authentication: JWT attacks, disabled users, refresh rotation, API keys, audit rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import orjson
import psycopg
import pytest

from support.api import PASSWORD, SECRET, Api, seed_reference
from support.tokens import (
    access_claims,
    b64,
    hs256,
    live_family,
    me,
    unsigned,
    user_id_of,
)


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    api.add_user("ana", "analyst")
    seed_reference(api, "admin")


def test_valid_token_works(api: Api) -> None:
    assert me(api, api.tokens["ana"]).json()["name"] == "ana"
    claims = access_claims(user_id_of(api, "ana"), fam=live_family(api, "ana"))
    forged_ok = hs256(claims, SECRET.encode())
    assert me(api, forged_ok).status_code == 200  # our own construction is right...


@pytest.mark.parametrize(
    "attack",
    [
        "alg_none",
        "wrong_key",
        "expired",
        "nbf_future",
        "tampered",
        "no_exp",
        "wrong_aud",
        "refresh_typ",
        "garbage",
    ],
)
def test_jwt_attacks_are_refused(api: Api, attack: str) -> None:
    """...so each refusal below is due to the one thing changed (a live session's
    ``fam`` included, so none is refused for its session)."""
    ana, admin = user_id_of(api, "ana"), user_id_of(api, "admin")
    now = int(dt.datetime.now(dt.UTC).timestamp())
    key = SECRET.encode()
    if attack == "alg_none":
        token = unsigned({"alg": "none", "typ": "JWT"}, access_claims(admin)) + "."
    elif attack == "wrong_key":
        token = hs256(access_claims(admin), b"another-secret-of-sufficient-length-0123")
    elif attack == "expired":
        token = hs256(access_claims(ana, exp=now - 60, iat=now - 120, nbf=now - 120), key)
    elif attack == "nbf_future":
        token = hs256(access_claims(ana, nbf=now + 600), key)
    elif attack == "tampered":
        header, _, sig = api.tokens["ana"].split(".")
        token = f"{header}.{b64(orjson.dumps(access_claims(admin)))}.{sig}"
    elif attack == "no_exp":
        claims = access_claims(ana)
        del claims["exp"]
        token = hs256(claims, key)
    elif attack == "wrong_aud":
        token = hs256(access_claims(ana, aud="someone-else"), key)
    elif attack == "refresh_typ":
        token = hs256(access_claims(ana, typ="refresh"), key)
    else:
        token = "not-a-token"
    response = me(api, token)
    assert response.status_code == 401, attack
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_refused_for_its_expiry(api: Api) -> None:
    """A token whose only fault is its ``exp``: the user's token version, a live session,
    right key, audience, issuer and type. The same claims with a future ``exp`` are
    accepted, so the 401 can only come from the expiry check."""
    api.add_user("eve_exp", "analyst")
    user = user_id_of(api, "eve_exp")
    now = int(dt.datetime.now(dt.UTC).timestamp())
    issued = {"iat": now - 600, "nbf": now - 600, "fam": live_family(api, "eve_exp")}
    key = SECRET.encode()
    alive = me(api, hs256(access_claims(user, exp=now + 300, **issued), key))
    assert alive.status_code == 200 and alive.json()["name"] == "eve_exp"
    # 60 s past exp: beyond any clock leeway a verifier may allow
    response = me(api, hs256(access_claims(user, exp=now - 60, **issued), key))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "token expired"


def test_disabled_user_is_refused_at_once(api: Api) -> None:
    token = api.add_user("dora", "viewer")
    login = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "dora", "password": PASSWORD},
    ).json()
    assert me(api, token).status_code == 200
    response = api.client.patch(
        "/v1/admin/users/dora", json={"disabled": True}, headers=api.headers("admin")
    )
    assert response.status_code == 200 and response.json()["disabled"] is True
    assert me(api, token).status_code == 401
    refreshed = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
    )
    assert refreshed.status_code == 401
    again = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "dora", "password": PASSWORD},
    )
    assert again.status_code == 401


def test_password_change_voids_old_tokens(api: Api) -> None:
    token = api.add_user("pete", "viewer")
    assert me(api, token).status_code == 200
    response = api.client.patch(
        "/v1/admin/users/pete", json={"password": PASSWORD + "!"}, headers=api.headers("admin")
    )
    assert response.status_code == 200
    refused = me(api, token)
    assert refused.status_code == 401 and refused.json()["detail"] == "token revoked"


def test_refresh_rotation_and_reuse_detection(api: Api) -> None:
    first = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "ana", "password": PASSWORD},
    ).json()
    second = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"]
    assert me(api, new["access_token"]).json()["name"] == "ana"
    # the rotated token comes back: refused, and the whole family dies
    reuse = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert reuse.status_code == 401
    after = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
    )
    assert after.status_code == 401


def test_wrong_password_is_401_and_generic(api: Api) -> None:
    for username in ("ana", "no-such-user"):
        response = api.client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": "wrong password!!"},
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "invalid user name or password"


def test_api_key_lifecycle(api: Api) -> None:
    created = api.client.post(
        "/v1/admin/keys",
        json={"name": "head-end-1", "role": "ingest", "expires_days": 30},
        headers=api.headers("admin"),
    )
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert key.startswith(f"mk_{body['prefix']}_")
    # stored as a digest only: the key text is nowhere in the table
    with api.conn() as conn:
        row = conn.execute(
            "SELECT key_hash, prefix FROM api_keys WHERE key_id = %s", (body["key_id"],)
        ).fetchone()
        dump = conn.execute("SELECT api_keys::text FROM api_keys").fetchall()
    assert row is not None and bytes(row[0]) == hashlib.sha256(key.encode()).digest()
    assert not any(key in r[0] or key.split("_", 2)[2] in r[0] for r in dump)
    listed = api.client.get("/v1/admin/keys", headers=api.headers("admin")).json()
    assert all("key" not in k for k in listed)
    # works as X-API-Key and as a bearer token
    assert api.client.get("/v1/auth/me", headers={"X-API-Key": key}).json()["role"] == "ingest"
    assert me(api, key).status_code == 200
    # a wrong secret with the right prefix is refused
    assert api.client.get("/v1/auth/me", headers={"X-API-Key": key[:-3] + "abc"}).status_code == 401
    # revocation takes effect on the very next request
    revoked = api.client.delete(f"/v1/admin/keys/{body['key_id']}", headers=api.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    response = api.client.get("/v1/auth/me", headers={"X-API-Key": key})
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_expired_key_is_refused(api: Api) -> None:
    """A key stops working at its expiry, also while its check is cached (auth_cache_s is
    on by default): a cached entry never outlives the key."""
    key = api.add_key("old", "ingest")
    with api.conn() as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = now() + interval '1.5 seconds' WHERE key_id = %s",
            (key["key_id"],),
        )
    assert api.client.get("/v1/auth/me", headers={"X-API-Key": key["key"]}).status_code == 200
    time.sleep(1.6)
    response = api.client.get("/v1/auth/me", headers={"X-API-Key": key["key"]})
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_audit_rows_for_each_action_without_secrets(api: Api) -> None:
    admin = api.headers("admin")
    c = api.client
    c.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "ana", "password": "not the password"},
    )
    c.post(
        "/v1/admin/users",
        json={"username": "audrey", "password": PASSWORD, "role": "viewer"},
        headers=admin,
    )
    c.patch("/v1/admin/users/audrey", json={"password": PASSWORD + "2"}, headers=admin)
    key = c.post("/v1/admin/keys", json={"name": "k", "role": "ingest"}, headers=admin).json()
    c.delete(f"/v1/admin/keys/{key['key_id']}", headers=admin)
    c.patch("/v1/meters/M-N1", json={"tariff": "tou"}, headers=admin)
    c.post("/v1/meters", json={"meter_id": "M-A1", "region": "north"}, headers=admin)
    c.delete("/v1/meters/M-A1", headers=admin)
    rows = [
        {
            "meter_id": "M-N1",
            "ts": f"2025-02-01T00:{m:02d}:00Z",
            "interval_s": 900,
            "import_kwh": 0.5,
        }
        for m in (0, 15, 30, 45)
    ]
    assert c.post("/v1/readings", json=rows, headers=admin).status_code == 200
    edit = c.post(
        "/v1/meters/M-N1/edits",
        json={
            "from": "2025-02-01T00:00:00Z",
            "to": "2025-02-01T00:30:00Z",
            "value": 0.2,
            "reason": "register read",
        },
        headers=admin,
    )
    assert edit.status_code == 200, edit.text
    c.get("/v1/readings/export", params={"from": "2025-02-01", "to": "2025-02-02"}, headers=admin)
    log = c.get("/v1/audit", params={"limit": 1000}, headers=admin).json()["items"]
    seen = {(r["action"], r["outcome"]) for r in log}
    for expected in [
        ("auth.login", "success"),
        ("auth.login", "failure"),
        ("users.create", "success"),
        ("users.update", "success"),
        ("keys.create", "success"),
        ("keys.revoke", "success"),
        ("meters.update", "success"),
        ("meters.create", "success"),
        ("meters.delete", "success"),
        ("ingest.readings", "success"),
        ("readings.edit", "success"),
        ("export.readings", "success"),
    ]:
        assert expected in seen, expected
    failures = [r for r in log if r["action"] == "auth.login" and r["outcome"] == "failure"]
    failure = next(r for r in failures if r["actor"] == "ana")
    assert failure["client"] and failure["request_id"]
    assert failure["details"] == {"reason": "bad credentials"}
    assert any(r["actor"] == "dora" and r["details"] == {"reason": "disabled"} for r in failures)
    edit_row = next(r for r in log if r["action"] == "readings.edit")
    assert edit_row["actor"] == "admin" and edit_row["details"]["reason"] == "register read"
    with api.conn() as conn:
        everything = " ".join(r[0] for r in conn.execute("SELECT audit_log::text FROM audit_log"))
    for secret in (
        PASSWORD,
        "not the password",
        key["key"],
        key["key"].split("_", 2)[2],
        api.tokens["admin"],
        SECRET,
    ):
        assert secret not in everything
    # the edit went through the pipeline: old values in history, edited flag on new ones
    with api.conn() as conn:
        edited = conn.execute(
            "SELECT import_kwh, quality & 512 FROM readings WHERE meter_id = 'M-N1' "
            "AND ts >= '2025-02-01' AND ts < '2025-02-01 00:30Z' ORDER BY ts"
        ).fetchall()
        history = conn.execute(
            "SELECT count(*) FROM reading_history WHERE meter_id = 'M-N1' "
            "AND ts >= '2025-02-01' AND ts < '2025-02-01 00:30Z'"
        ).fetchone()
    assert edited == [(0.2, 512), (0.2, 512)]
    assert history == (2,)


def test_audit_log_is_append_only(api: Api) -> None:
    with api.conn() as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() != (0,)
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'someone else'")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM audit_log")
