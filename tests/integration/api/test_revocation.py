"""Revocation is exact: a password change or disable voids the tokens signed before it
however close in time, and a revoked session (re-used refresh token, sign-out) voids
its access tokens too, at once (the principal cache included)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from metrify.api.auth.passwords import hash_password
from metrify.stores import accounts
from support.api import PASSWORD, SECRET, Api, running_api
from support.tokens import access_claims, hs256, live_family, me, user_id_of
from support.waiting import until


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


@pytest.mark.parametrize("change", ["password", "disable"])
def test_a_token_signed_in_the_same_instant_before_a_change_dies_and_after_lives(
    api: Api, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The token clock is stopped, so both tokens carry the very same ``iat``: only the
    order of sign-in and change can tell them apart, and it must. (The new password is
    hashed up front so that the change follows the first sign-in at once: where the
    clock cannot be stopped, the two still fall in one second.)"""
    name = f"pat_{change}"
    api.add_user(name, "viewer")
    state = api.client.app.state.metrify  # type: ignore[attr-defined]
    stopped = dt.datetime.now(dt.UTC)
    monkeypatch.setattr(state.tokens, "clock", lambda: stopped, raising=False)
    password = PASSWORD + " v2" if change == "password" else PASSWORD
    digest = hash_password(password)
    before = api.sign_in(name).json()["access_token"]
    with api.conn() as conn:
        if change == "password":
            accounts.update_user(conn, name, password_hash=digest)
        else:
            accounts.update_user(conn, name, disabled=True)
            accounts.update_user(conn, name, disabled=False)
    after = api.sign_in(name, password).json()["access_token"]
    refused = me(api, before)
    assert refused.status_code == 401 and refused.json()["detail"] == "token revoked"
    accepted = me(api, after)
    assert accepted.status_code == 200 and accepted.json()["name"] == name
    assert claims(before)["iat"] == claims(after)["iat"]


def refresh(api: Api, token: str) -> Any:
    return api.client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )


def test_a_reused_refresh_token_voids_the_access_tokens_of_its_family(api: Api) -> None:
    api.add_user("rita", "viewer")
    first = api.sign_in("rita").json()
    other = api.sign_in("rita").json()  # another session of the same user
    second = refresh(api, first["refresh_token"]).json()
    # both access tokens of the session work (and are now in the principal cache)
    assert me(api, first["access_token"]).status_code == 200
    assert me(api, second["access_token"]).status_code == 200
    assert refresh(api, first["refresh_token"]).status_code == 401  # the re-use
    for token in (first["access_token"], second["access_token"]):
        response = me(api, token)
        assert response.status_code == 401, response.text
        assert "session revoked" in response.json()["detail"]
    # one stolen session does not end the user's others
    assert me(api, other["access_token"]).status_code == 200


def test_sign_out_ends_the_access_tokens_of_its_session(api: Api) -> None:
    api.add_user("sam", "viewer")
    session = api.sign_in("sam").json()
    other = api.sign_in("sam").json()
    assert me(api, session["access_token"]).status_code == 200
    out = api.client.post("/v1/auth/revoke", data={"refresh_token": session["refresh_token"]})
    assert out.status_code == 204
    assert me(api, session["access_token"]).status_code == 401
    assert refresh(api, session["refresh_token"]).status_code == 401
    assert me(api, other["access_token"]).status_code == 200


def test_a_token_of_an_unknown_session_is_refused(api: Api) -> None:
    """``fam`` is checked against the store, not merely present: a correctly signed
    token of the user's current version naming a session that never existed is refused."""
    api.add_user("tom", "viewer")
    uid = user_id_of(api, "tom")
    made_up = hs256(access_claims(uid, fam=uuid.uuid4().hex), SECRET.encode())
    assert me(api, made_up).status_code == 401
    alive = hs256(access_claims(uid, fam=live_family(api, "tom")), SECRET.encode())
    assert me(api, alive).status_code == 200


def test_a_family_revoked_in_one_worker_is_refused_by_another_that_cached_it(
    api: Api, tmp_path: Path
) -> None:
    """Worker B caches the session's access token for five minutes; the re-use is
    detected by worker A. B learns it from PostgreSQL (NOTIFY), not from its cache's
    expiry."""
    api.add_user("una", "viewer")
    with running_api(api.url, tmp_path, clean=False, auth_cache_s=300.0) as b:
        session = b.sign_in("una").json()
        assert me(b, session["access_token"]).status_code == 200  # cached in B
        assert refresh(api, session["refresh_token"]).status_code == 200
        assert refresh(api, session["refresh_token"]).status_code == 401  # re-use, in A
        until(lambda: me(b, session["access_token"]).status_code == 401, timeout=10)
