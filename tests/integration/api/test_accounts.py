"""Accounts: empty region lists, the last enabled admin, and ``api_keys.last_used_at``.

``auth_cache_s = 0``: every request checks its credential in the database, so a row
changed by hand (no NOTIFY) acts on the next request, and ``last_used_at`` is shown to
be written once a minute at most even when nothing is cached.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from metrify.api import users
from metrify.api.rbac import Role
from metrify.stores import accounts
from support.api import PASSWORD, Api, seed_reference

API_CONFIG = {"auth_cache_s": 0.0}


def seed_api(api: Api) -> None:
    api.add_user("root", "admin")
    seed_reference(api, "root")


# --- regions: [] ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/admin/users", {"username": "e1", "password": PASSWORD, "role": "viewer"}),
        ("PATCH", "/v1/admin/users/root", {}),
        ("POST", "/v1/admin/keys", {"name": "e-key", "role": "viewer"}),
    ],
)
def test_an_empty_region_list_is_refused(
    api: Api, method: str, path: str, body: dict[str, Any]
) -> None:
    """``regions: []`` used to be stored as NULL: unscoped, every region."""
    with api.conn() as conn:
        before = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM api_keys), "
            "(SELECT regions FROM users WHERE username = 'root')"
        ).fetchone()
    response = api.client.request(
        method, path, json={**body, "regions": []}, headers=api.headers("root")
    )
    assert response.status_code == 422, response.text
    assert "empty" in response.json()["detail"]
    with api.conn() as conn:
        after = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM api_keys), "
            "(SELECT regions FROM users WHERE username = 'root')"
        ).fetchone()
    assert after == before


def test_null_regions_still_mean_every_region(api: Api) -> None:
    made = api.client.post(
        "/v1/admin/users",
        json={"username": "wide", "password": PASSWORD, "role": "viewer", "regions": None},
        headers=api.headers("root"),
    )
    assert made.status_code == 201 and made.json()["regions"] is None


def test_a_stored_empty_region_list_sees_no_meter(api: Api) -> None:
    """A row written before the refusal (or by hand) fails closed: no region, not all."""
    api.add_user("nowhere", "viewer", ["north"])
    key = api.add_key("nowhere-key", "viewer", ["north"])
    with api.conn() as conn:
        conn.execute("UPDATE users SET regions = '{}' WHERE username = 'nowhere'")
        conn.execute("UPDATE api_keys SET regions = '{}' WHERE key_id = %s", (key["key_id"],))
    for headers in (api.headers("nowhere"), {"X-API-Key": key["key"]}):
        listed = api.client.get("/v1/meters", headers=headers)
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert api.client.get("/v1/meters/M-N1", headers=headers).status_code == 404
        assert api.client.get("/v1/auth/me", headers=headers).json()["regions"] == []


# --- the last enabled admin -----------------------------------------------------------


def _patch(api: Api, actor: str, username: str, body: dict[str, Any]) -> Any:
    return api.client.patch(f"/v1/admin/users/{username}", json=body, headers=api.headers(actor))


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(api: Api) -> None:
    for body in ({"disabled": True}, {"role": "operator"}, {"role": "viewer", "disabled": True}):
        response = _patch(api, "root", "root", body)
        assert response.status_code == 409, (body, response.text)
        assert "last enabled admin" in response.json()["detail"]
    with api.conn() as conn:
        assert conn.execute(
            "SELECT role, disabled FROM users WHERE username = 'root'"
        ).fetchone() == ("admin", False)
        refused = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'users.update' AND target = 'root'"
        ).fetchone()
    assert refused == (0,)  # nothing happened, so nothing is audited as done
    # other changes to the last admin still work
    assert _patch(api, "root", "root", {"regions": None}).status_code == 200


def test_an_admin_may_go_while_another_stays(api: Api) -> None:
    api.add_user("second", "admin")
    assert _patch(api, "root", "second", {"role": "analyst"}).status_code == 200
    api.add_user("third", "admin")
    assert _patch(api, "root", "third", {"disabled": True}).status_code == 200
    # a disabled admin does not count: root is the last enabled one again
    assert _patch(api, "root", "root", {"disabled": True}).status_code == 409
    # changing a non-admin never needs another admin
    assert _patch(api, "root", "second", {"disabled": True}).status_code == 200


def test_two_concurrent_demotions_cannot_both_pass(api: Api) -> None:
    """Each transaction alone leaves one admin; together they would leave none."""
    with api.conn() as conn:
        users.create_user(conn, "adm-a", PASSWORD, Role.ADMIN)
        users.create_user(conn, "adm-b", PASSWORD, Role.ADMIN)
        # only adm-a and adm-b are enabled admins from here on
        conn.execute(
            "UPDATE users SET disabled = true WHERE role = 'admin' "
            "AND username NOT IN ('adm-a', 'adm-b')"
        )
    outcome: dict[str, BaseException | None] = {}
    first = psycopg.connect(api.url, autocommit=True)
    second = psycopg.connect(api.url, autocommit=True)
    try:
        with first.transaction():
            accounts.update_user(first, "adm-a", role="viewer")  # not committed yet

            def demote_b() -> None:
                try:
                    accounts.update_user(second, "adm-b", role="viewer")
                    outcome["b"] = None
                except BaseException as exc:  # reported by the assertion below
                    outcome["b"] = exc

            thread = threading.Thread(target=demote_b)
            thread.start()
            thread.join(timeout=1.0)
            # adm-b's demotion waits for adm-a's transaction instead of racing it
            assert thread.is_alive()
        thread.join(timeout=10)
        assert not thread.is_alive()
    finally:
        first.close()
        second.close()
    assert isinstance(outcome["b"], accounts.LastAdminError)
    with api.conn() as conn:
        rows = conn.execute(
            "SELECT username, role FROM users WHERE username IN ('adm-a', 'adm-b') ORDER BY 1"
        ).fetchall()
        conn.execute("UPDATE users SET disabled = false WHERE username = 'root'")
    assert rows == [("adm-a", "viewer"), ("adm-b", "admin")]


# --- api_keys.last_used_at ------------------------------------------------------------


def _last_used(api: Api, key_id: int) -> Any:
    with api.conn() as conn:
        row = conn.execute(
            "SELECT last_used_at FROM api_keys WHERE key_id = %s", (key_id,)
        ).fetchone()
    assert row is not None
    return row[0]


def test_last_used_at_is_set_once_a_minute_at_most(api: Api) -> None:
    key = api.add_key("meter-gw", "ingest")
    headers = {"X-API-Key": key["key"]}
    assert _last_used(api, key["key_id"]) is None
    assert api.client.get("/v1/auth/me", headers=headers).status_code == 200
    first = _last_used(api, key["key_id"])
    assert first is not None
    # more requests within the minute write nothing (no write per request)
    for _ in range(3):
        assert api.client.get("/v1/auth/me", headers=headers).status_code == 200
    assert _last_used(api, key["key_id"]) == first
    # a minute later, the next use is recorded
    with api.conn() as conn:
        conn.execute(
            "UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE key_id = %s",
            (key["key_id"],),
        )
    stale = _last_used(api, key["key_id"])
    assert api.client.get("/v1/auth/me", headers=headers).status_code == 200
    assert _last_used(api, key["key_id"]) > stale
    # a refused key is not "used"
    revoked = api.add_key("gone", "ingest")
    with api.conn() as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (revoked["key_id"],)
        )
    assert api.client.get("/v1/auth/me", headers={"X-API-Key": revoked["key"]}).status_code == 401
    assert _last_used(api, revoked["key_id"]) is None
