"""Sign-in throttling: per client address across accounts, per account across addresses.

Three limits, each a shared counter (:mod:`metrify.stores.throttle`, PostgreSQL or
Redis) so every worker and host sees the same numbers:

- **address**: failed password sign-ins from one client address, whatever the user
  names (``login_failures_per_minute``, also the burst). Spraying many names from one
  address stops here. A success never resets it: otherwise an attacker with one valid
  account could clear their address between guesses.
- **account**: failed sign-ins of one user name from any address, a slower bucket
  (``account_failures_burst`` at once, then ``account_failures_per_hour``). Guessing one
  password from many addresses stops here.
- **refresh**: unknown or re-used refresh tokens from one address (refresh and sign-out,
  ``refresh_failures_per_minute``). A valid refresh is never counted, so users sharing
  an address never share a bucket for doing the right thing.

Why the account limit cannot lock a user out: it does not apply at the addresses the
user signed in from successfully within ``known_address_days``. A throttled account is
closed to new addresses (where a distributed guesser is) but a correct password from
the user's own address still works, and sessions (refresh tokens) are not throttled by
failures at all. What no server can do from an address alone is tell two people behind
one NAT apart: someone failing at the full address rate delays everyone behind that
address, by at most one address interval per attempt (60 / ``login_failures_per_minute``
seconds), never longer, and never at other addresses.

The check and the count are two steps, so N concurrent attempts from one address may
overshoot a limit by N - 1 (bounded by the server's concurrency); refused attempts are
not counted, so hammering a throttled key does not extend its wait.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from prometheus_client import Counter

from metrify.settings.api import ApiConfig
from metrify.stores.throttle import Counters

log = logging.getLogger(__name__)

THROTTLED = Counter(
    "metrify_auth_throttled",
    "Sign-in and refresh attempts refused with 429, by the limit that refused them",
    ["scope"],
)
_THROTTLED = {scope: THROTTLED.labels(scope) for scope in ("address", "account", "refresh")}

_DAY_S = 86_400.0


class Throttled(Exception):
    """Refused before any credential was checked; ``wait`` whole seconds for Retry-After."""

    def __init__(self, scope: str, wait: int) -> None:
        super().__init__(f"too many failed attempts ({scope}); retry in {wait} s")
        self.scope = scope
        self.wait = wait


@dataclass(frozen=True)
class _Bucket:
    """``burst`` events at once, then one every ``interval`` seconds."""

    interval: float
    burst: int

    def wait(self, lead: float) -> float:
        """Seconds until one more event fits, given the counter's lead (0: now)."""
        return max(0.0, lead - (self.burst - 1) * self.interval)


def _client(client: str | None) -> str:
    return client or "unknown"


class SignInThrottle:
    """The three limits over one counter store."""

    def __init__(self, counters: Counters, cfg: ApiConfig) -> None:
        self.counters = counters
        self.address = _Bucket(60.0 / cfg.login_failures_per_minute, cfg.login_failures_per_minute)
        self.account = _Bucket(3600.0 / cfg.account_failures_per_hour, cfg.account_failures_burst)
        self.refresh = _Bucket(
            60.0 / cfg.refresh_failures_per_minute, cfg.refresh_failures_per_minute
        )
        self.known_s = cfg.known_address_days * _DAY_S

    # --- password sign-in ---------------------------------------------------------------

    def check_password(self, username: str, client: str | None) -> None:
        """Raise :class:`Throttled` if this attempt may not even be checked."""
        at = _client(client)
        address, account, known = self.counters.ahead(
            [f"a:{at}", f"u:{username}", f"k:{at}|{username}"]
        )
        wait = self.address.wait(address)
        if wait > 0:
            self._refuse("address", wait, at, username)
        wait = self.account.wait(account)
        if wait > 0 and known <= 0:
            self._refuse("account", wait, at, username)

    def password_failed(self, username: str, client: str | None) -> None:
        at = _client(client)
        self.counters.add(f"a:{at}", self.address.interval)
        self.counters.add(f"u:{username}", self.account.interval)

    def signed_in(self, username: str, client: str | None) -> None:
        """Remember the address as the user's own (exempt from the account limit)."""
        if self.known_s > 0:
            self.counters.put(f"k:{_client(client)}|{username}", self.known_s)

    # --- refresh tokens -------------------------------------------------------------------

    def check_refresh(self, client: str | None) -> None:
        at = _client(client)
        (lead,) = self.counters.ahead([f"r:{at}"])
        wait = self.refresh.wait(lead)
        if wait > 0:
            self._refuse("refresh", wait, at, None)

    def refresh_failed(self, client: str | None) -> None:
        self.counters.add(f"r:{_client(client)}", self.refresh.interval)

    # ------------------------------------------------------------------------------------

    def _refuse(self, scope: str, wait: float, client: str, username: str | None) -> None:
        seconds = max(1, math.ceil(wait))
        _THROTTLED[scope].inc()
        # user names are logged as the audit log does; never a password or token
        log.warning(
            "auth attempt throttled: limit=%s client=%s user=%s retry_after=%ss",
            scope,
            client,
            username if username is not None else "-",
            seconds,
        )
        raise Throttled(scope, seconds)
