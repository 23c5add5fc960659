"""Sign-in throttling: per address across accounts, per account across addresses, shared
by every worker (PostgreSQL or Redis), behind trusted proxies only.

Addresses are the TCP peer the app sees (``Api.peer``), from documentation ranges.
Every app here is a fresh one over a cleared database; 429s are counted, never timed.
Where a test relies on a default limit it names it (``DEFAULT_*``), so the expected
counts follow from the documented settings, not from a run. A limit refills one attempt
per interval (60 s / limit for an address): each test keeps that interval ten times
longer than its password checks take (Argon2 costs up to a second on a busy machine),
so no attempt is let through by a refill.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.api import Api, running_api

WRONG = "not the password at all"
#: ApiConfig defaults (docs/guides/configuration.md)
DEFAULT_ACCOUNT_BURST = 10
DEFAULT_REFRESH_FAILURES = 30
REDIS_URL = "redis://127.0.0.1:6379/0"


def codes(api: Api, attempts: list[tuple[str, str]], password: str = WRONG) -> list[int]:
    """Status of a password sign-in as each (user name, address) in turn."""
    out = []
    for name, address in attempts:
        with api.peer(address):
            out.append(api.sign_in(name, password).status_code)
    return out


def test_spraying_user_names_from_one_address_is_throttled(
    database_url: str, tmp_path: Path
) -> None:
    limit = 3  # one attempt back every 20 s
    with running_api(database_url, tmp_path, login_failures_per_minute=limit) as api:
        seen = codes(api, [(f"user{i}", "198.51.100.1") for i in range(40)])
        assert seen == [401] * limit + [429] * (40 - limit)
        with api.peer("198.51.100.1"):
            refused = api.sign_in("user99", WRONG)
        assert refused.headers["content-type"] == "application/problem+json"
        # one failure's share of the minute, rounded up: 60 / 3 = 20 s at most
        assert 1 <= int(refused.headers["retry-after"]) <= 60 // limit
        # another address is not held back by this one
        assert codes(api, [("user0", "198.51.100.2")]) == [401]


def test_one_account_attacked_from_many_addresses_is_throttled(
    database_url: str, tmp_path: Path
) -> None:
    burst = DEFAULT_ACCOUNT_BURST
    with running_api(database_url, tmp_path) as api:
        api.add_user("victim", "viewer")
        seen = codes(api, [("victim", f"203.0.113.{i}") for i in range(1, 21)])
        assert seen == [401] * burst + [429] * (20 - burst)
        # other accounts are not held back by this one
        assert codes(api, [("someone-else", "203.0.113.50")]) == [401]


def test_the_user_still_signs_in_from_an_address_of_their_own(
    database_url: str, tmp_path: Path
) -> None:
    """The account limit closes the account to new addresses only: the user's own
    address (a successful sign-in there) still gets the password checked."""
    with running_api(database_url, tmp_path) as api:
        api.add_user("victim", "viewer")
        with api.peer("192.0.2.10"):  # home
            assert api.sign_in("victim").status_code == 200
        attack = codes(api, [("victim", f"203.0.113.{i}") for i in range(1, 16)])
        assert attack.count(429) == 15 - DEFAULT_ACCOUNT_BURST
        with api.peer("192.0.2.10"):
            assert api.sign_in("victim", WRONG).status_code == 401  # still checked...
            assert api.sign_in("victim").status_code == 200  # ...and the right one works
        with api.peer("192.0.2.11"):  # an address the user never signed in from
            assert api.sign_in("victim").status_code == 429


@contextlib.contextmanager
def two_apps(
    database_url: str, tmp_path: Path, backend: str, **config: Any
) -> Iterator[tuple[Api, Api]]:
    """Two app instances (two workers) over one database, and for ``redis`` one Redis
    under a prefix of this test's own (deleted afterwards)."""
    if backend == "redis":
        redis = pytest.importorskip("redis")
        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.ping()
        except redis.ConnectionError:
            pytest.skip(f"no Redis at {REDIS_URL}")
        prefix = f"metrify-test-{uuid.uuid4().hex}:"
        config = {**config, "redis_url": REDIS_URL, "redis_prefix": prefix}
    try:
        with (
            running_api(database_url, tmp_path / "a", **config) as a,
            running_api(database_url, tmp_path / "b", clean=False, **config) as b,
        ):
            yield a, b
    finally:
        if backend == "redis":
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_two_app_instances_share_the_counters(
    database_url: str, tmp_path: Path, backend: str
) -> None:
    with two_apps(database_url, tmp_path, backend, login_failures_per_minute=3) as (a, b):
        # address: three failures, through both workers, spend the one budget
        sprayed = [
            codes(app, [(f"user{i}", "198.51.100.7")])[0] for i, app in enumerate([a, b] * 3)
        ]
        assert sprayed == [401, 401, 401, 429, 429, 429]
        # account: its burst of failures from as many addresses, through both workers
        workers = [a, b] * (DEFAULT_ACCOUNT_BURST // 2 + 1)
        guessed = [
            codes(app, [("victim", f"203.0.113.{i}")])[0] for i, app in enumerate(workers, 1)
        ]
        refused = len(workers) - DEFAULT_ACCOUNT_BURST
        assert guessed == [401] * DEFAULT_ACCOUNT_BURST + [429] * refused
        if backend == "redis":  # the counters are where the backend says, not in PostgreSQL
            with a.conn() as conn:
                assert conn.execute("SELECT count(*) FROM auth_throttle").fetchone() == (0,)
        else:
            with a.conn() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM auth_throttle WHERE key = 'a:198.51.100.7'"
                ).fetchone()
            assert row == (1,)


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    database_url: str, tmp_path: Path
) -> None:
    with running_api(
        database_url, tmp_path, login_failures_per_minute=3, trusted_proxies=["10.0.0.0/8"]
    ) as api:

        def via(peer: str, forwarded: str, name: str) -> int:
            with api.peer(peer):
                response = api.sign_in(name, WRONG, headers={"X-Forwarded-For": forwarded})
            return int(response.status_code)

        # through our proxy: each client has its own budget
        assert [via("10.0.0.1", "203.0.113.5", f"u{i}") for i in range(4)] == [401] * 3 + [429]
        assert via("10.0.0.1", "203.0.113.6", "u9") == 401
        # the rightmost address that is not ours; what the client wrote further left is not
        assert via("10.0.0.1", "198.51.100.99, 203.0.113.5, 10.0.0.2", "u10") == 429
        # a peer that is not a trusted proxy picks no address: it is counted itself
        rotating = [via("192.0.2.9", f"203.0.113.{100 + i}", f"v{i}") for i in range(4)]
        assert rotating == [401] * 3 + [429]
        with api.conn() as conn:
            clients = {
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT client FROM audit_log WHERE action = 'auth.login'"
                )
            }
        assert clients == {"203.0.113.5", "203.0.113.6", "192.0.2.9"}


def refresh(api: Api, token: str) -> Any:
    return api.client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )


def test_valid_refreshes_are_never_throttled(database_url: str, tmp_path: Path) -> None:
    """Many users behind one address refresh all day: rotation, never a 429 (with the
    default limits, which used to count every refresh as a failed sign-in)."""
    with running_api(database_url, tmp_path) as api:
        api.add_user("ana", "viewer")
        with api.peer("198.51.100.20"):
            token = api.sign_in("ana").json()["refresh_token"]
            for _ in range(DEFAULT_REFRESH_FAILURES + 5):
                response = refresh(api, token)
                assert response.status_code == 200, response.text
                token = response.json()["refresh_token"]


def test_made_up_refresh_tokens_are_throttled_per_address(
    database_url: str, tmp_path: Path
) -> None:
    """Unknown refresh tokens, at refresh or at sign-out, are guesses: counted per
    address, and only there."""
    limit = 4  # one attempt back every 15 s
    with running_api(database_url, tmp_path, refresh_failures_per_minute=limit) as api:
        api.add_user("ana", "viewer")
        with api.peer("198.51.100.20"):
            token = api.sign_in("ana").json()["refresh_token"]
        with api.peer("198.51.100.21"):
            for i in range(limit // 2):
                assert refresh(api, f"mr_made-up-{i}").status_code == 401
                gone = api.client.post("/v1/auth/revoke", data={"refresh_token": f"mr_gone-{i}"})
                assert gone.status_code == 204  # sign-out says nothing about the token...
            refused = refresh(api, token)  # ...but it was counted: even a valid one waits now
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            out = api.client.post("/v1/auth/revoke", data={"refresh_token": token})
            assert out.status_code == 429
        with api.peer("198.51.100.20"):
            assert refresh(api, token).status_code == 200


def test_an_unreachable_counter_store_refuses_sign_in_with_503(
    database_url: str, tmp_path: Path
) -> None:
    """Without its counters the throttle cannot tell a guesser from a user: sign-in is
    refused (503, a problem document), never let through unthrottled."""
    nowhere = "redis://127.0.0.1:1/0"  # port 1: nothing listens there
    with running_api(database_url, tmp_path) as api:
        api.add_user("ana", "viewer")
    with running_api(database_url, tmp_path, clean=False, redis_url=nowhere) as api:
        response = api.sign_in("ana")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "unavailable" in response.json()["detail"]
