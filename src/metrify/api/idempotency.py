"""``Idempotency-Key``: a retried write returns the stored answer, never runs twice.

The key is claimed (a row without an answer) before the work starts, so a concurrent
duplicate gets 409 instead of a second ingest; the answer is stored when the work ends,
and the claim is dropped if the work fails so the client can retry. Keys are per
principal, bound to the request's digest (the same key with another body is a client
bug: 422), and forgotten after a day (:mod:`metrify.stores.idempotency` keeps them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metrify.api.problems import Problem
from metrify.stores import idempotency as keys
from metrify.stores.idempotency import complete, release
from metrify.stores.pools import Connection

__all__ = ["Stored", "check_key", "claim", "complete", "release"]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass
class Stored:
    status: int
    body: bytes


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise Problem(400, "Idempotency-Key must be 1-255 visible ASCII characters")
    return key


def claim(
    conn: Connection, principal: str, key: str, endpoint: str, digest: bytes
) -> Stored | None:
    """None when this request may proceed; the stored answer for a completed retry."""
    prior = keys.claim(conn, principal, key, endpoint, digest)
    if prior is None:
        return None
    if prior.endpoint != endpoint or prior.request_hash != digest:
        raise Problem(422, "Idempotency-Key was already used for a different request")
    if prior.status is None:
        raise Problem(409, "a request with this Idempotency-Key is still being processed")
    return Stored(prior.status, prior.response or b"")
