"""The sign-in throttle's arithmetic on a counter store whose clock the test moves.

The stores themselves (PostgreSQL, Redis) are exercised in
tests/integration/api/test_throttle.py; here only the policy: bursts, intervals,
Retry-After, the known-address exemption, and that refusals are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from metrify.api.auth.throttle import SignInThrottle, Throttled
from metrify.settings.api import ApiConfig


class Clocked:
    """Counters as the stores keep them (one instant per key), on a hand-moved clock."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.until: dict[str, float] = {}

    def ahead(self, keys: Sequence[str]) -> list[float]:
        return [max(0.0, self.until.get(k, 0.0) - self.now) for k in keys]

    def add(self, key: str, seconds: float) -> float:
        self.until[key] = max(self.until.get(key, 0.0), self.now) + seconds
        return self.until[key] - self.now

    def put(self, key: str, seconds: float) -> None:
        self.until[key] = self.now + seconds


def throttle(**cfg: int) -> tuple[SignInThrottle, Clocked]:
    counters = Clocked()
    return SignInThrottle(counters, ApiConfig(**cfg)), counters


def fail(t: SignInThrottle, user: str, client: str) -> None:
    t.check_password(user, client)
    t.password_failed(user, client)


def test_an_address_gets_its_burst_then_one_attempt_per_interval() -> None:
    t, clock = throttle(login_failures_per_minute=4)  # one every 15 s
    for i in range(4):
        fail(t, f"user{i}", "198.51.100.1")
    with pytest.raises(Throttled) as refused:
        t.check_password("user9", "198.51.100.1")
    assert (refused.value.scope, refused.value.wait) == ("address", 15)
    clock.now += 14.5
    with pytest.raises(Throttled) as again:  # refused attempts are not counted...
        t.check_password("user9", "198.51.100.1")
    assert again.value.wait == 1  # ...so the wait only runs down (0.5 s, rounded up)
    clock.now += 0.5
    fail(t, "user9", "198.51.100.1")  # one attempt back
    with pytest.raises(Throttled):
        t.check_password("user10", "198.51.100.1")
    t.check_password("user0", "198.51.100.2")  # other addresses are untouched


def test_an_account_gets_its_burst_from_any_addresses_then_its_slow_rate() -> None:
    t, clock = throttle(account_failures_burst=3, account_failures_per_hour=6)  # 10 min
    for i in range(3):
        fail(t, "victim", f"203.0.113.{i}")
    with pytest.raises(Throttled) as refused:
        t.check_password("victim", "203.0.113.99")
    assert (refused.value.scope, refused.value.wait) == ("account", 600)
    t.check_password("someone-else", "203.0.113.99")
    clock.now += 600
    fail(t, "victim", "203.0.113.99")


def test_the_account_limit_spares_the_users_own_addresses_not_the_address_limit() -> None:
    t, _ = throttle(account_failures_burst=2, login_failures_per_minute=3)
    t.signed_in("victim", "192.0.2.10")
    fail(t, "victim", "203.0.113.1")
    fail(t, "victim", "203.0.113.2")
    with pytest.raises(Throttled):
        t.check_password("victim", "192.0.2.11")
    t.check_password("victim", "192.0.2.10")  # home: the password is checked
    for _ in range(3):  # but failing there spends home's own address budget
        fail(t, "victim", "192.0.2.10")
    with pytest.raises(Throttled) as refused:
        t.check_password("victim", "192.0.2.10")
    assert refused.value.scope == "address"


def test_a_known_address_is_forgotten_after_known_address_days() -> None:
    t, clock = throttle(account_failures_burst=1, known_address_days=1)
    t.signed_in("victim", "192.0.2.10")
    fail(t, "victim", "203.0.113.1")
    t.check_password("victim", "192.0.2.10")
    clock.now += 86_400  # a day later the account is attacked again
    fail(t, "victim", "203.0.113.2")
    with pytest.raises(Throttled) as refused:
        t.check_password("victim", "192.0.2.10")
    assert refused.value.scope == "account"


def test_refresh_failures_are_their_own_bucket() -> None:
    t, _ = throttle(refresh_failures_per_minute=2, login_failures_per_minute=1)
    fail(t, "ana", "198.51.100.1")  # the sign-in budget of the address is spent...
    t.check_refresh("198.51.100.1")  # ...refresh is not
    t.refresh_failed("198.51.100.1")
    t.refresh_failed("198.51.100.1")
    with pytest.raises(Throttled) as refused:
        t.check_refresh("198.51.100.1")
    assert (refused.value.scope, refused.value.wait) == ("refresh", 30)
