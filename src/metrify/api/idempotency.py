"""``Idempotency-Key``: a retried write returns the stored answer, never runs twice.

The key is claimed inside the transaction that stores the request's rows, its audit row
and its answer (:mod:`metrify.api.routers.ingest`), so all of it commits together or not
at all: a request that fails or is killed leaves no claim, and its retry is processed.
A retry that finds the answer committed gets it again (``Idempotency-Replayed: true``);
one that arrives while the first is still running waits up to :data:`WAIT_MS` for it
and then gets 409. Keys are per principal, bound to the request's digest (the same key
with another body is a client bug: 422), and forgotten after a day
(:mod:`metrify.stores.idempotency` keeps them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metrify.api.problems import Problem
from metrify.stores import idempotency as keys
from metrify.stores.idempotency import Prior, complete
from metrify.stores.pools import Connection

__all__ = ["WAIT_MS", "Stored", "check_key", "claim", "complete", "replay"]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

#: how long a request waits for another one holding its key before answering 409
WAIT_MS = 2000


@dataclass
class Stored:
    status: int
    body: bytes


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise Problem(400, "Idempotency-Key must be 1-255 visible ASCII characters")
    return key


def _answer(prior: Prior, endpoint: str, digest: bytes) -> Stored:
    if prior.endpoint != endpoint or prior.request_hash != digest:
        raise Problem(422, "Idempotency-Key was already used for a different request")
    if prior.status is None:
        raise Problem(409, "a request with this Idempotency-Key is still being processed")
    return Stored(prior.status, prior.response or b"")


def replay(
    conn: Connection, principal: str, key: str, endpoint: str, digest: bytes
) -> Stored | None:
    """The committed answer to repeat (None: no request with this key has committed),
    checked before the body is even parsed."""
    prior = keys.answered(conn, principal, key)
    return None if prior is None else _answer(prior, endpoint, digest)


def claim(
    conn: Connection, principal: str, key: str, endpoint: str, digest: bytes
) -> Stored | None:
    """Inside the request's transaction: None when this request may proceed; the stored
    answer of a request that committed meanwhile; 409 or 422 as a :class:`Problem`."""
    prior = keys.claim(conn, principal, key, endpoint, digest, wait_ms=WAIT_MS)
    return None if prior is None else _answer(prior, endpoint, digest)
