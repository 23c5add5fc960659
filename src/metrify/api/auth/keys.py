"""API keys for machines: ``mk_<prefix>_<secret>``, stored as a SHA-256 digest.

The key has 256 bits of randomness, so a fast hash is safe (no dictionary to attack)
and the check costs microseconds per request. The public prefix finds the row; the
digest is compared in constant time. The full key is shown once and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX_BYTES = 6
SECRET_BYTES = 32


def new_key() -> tuple[str, str, bytes]:
    """A fresh key: (full key to show once, lookup prefix, digest to store)."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    key = f"mk_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return key, prefix, digest(key)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "mk" or len(parts[1]) != 2 * PREFIX_BYTES:
        return None
    if not all(c in "0123456789abcdef" for c in parts[1]) or len(parts[2]) < 20:
        return None
    return parts[1]


def matches(key: str, stored: bytes) -> bool:
    return hmac.compare_digest(digest(key), bytes(stored))
