"""Users and API keys: shared by the admin routes and ``metrify users|keys``.

What a credential means is decided here: passwords are hashed, keys generated and
regions normalised before :mod:`metrify.stores.accounts` keeps the rows. Synchronous on
purpose (the CLI has no event loop; the routes call these on a worker thread).
Disabling a user or changing a password voids every token issued before; revoking a key
is one UPDATE the next request sees.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from metrify.api.auth import keys
from metrify.api.auth.passwords import hash_password
from metrify.api.rbac import Role, parse_regions
from metrify.stores import accounts
from metrify.stores.accounts import (
    LastAdminError,
    UserError,
    get_user,
    list_keys,
    list_users,
    revoke_key,
)
from metrify.stores.pools import Connection

__all__ = [
    "EmptyRegionsError",
    "LastAdminError",
    "UserError",
    "create_key",
    "create_user",
    "get_user",
    "list_keys",
    "list_users",
    "revoke_key",
    "update_user",
]


class EmptyRegionsError(ValueError):
    """``regions: []``: refused rather than guessed (a 422 over HTTP, exit 2 in the CLI)."""


def _regions(regions: list[str] | None) -> list[str] | None:
    """As stored: None for every region, else the distinct regions in order.

    Unscoped is spelled by leaving regions out (or null). An empty list is refused: it
    used to be stored as NULL, so a user meant to see nothing saw every region, and
    reading it as "no region" would be a silent surprise of the other kind.
    """
    parsed = parse_regions(regions)
    if parsed is None:
        return None
    if not parsed:
        raise EmptyRegionsError(
            "regions: an empty list is refused; leave regions out (or null) for every region"
        )
    return list(parsed)


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: Role,
    regions: list[str] | None = None,
) -> dict[str, Any]:
    digest = hash_password(password)
    return accounts.insert_user(conn, username, digest, role.value, _regions(regions))


def update_user(
    conn: Connection,
    username: str,
    *,
    role: Role | None = None,
    regions: list[str] | None = None,
    set_regions: bool = False,
    disabled: bool | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    return accounts.update_user(
        conn,
        username,
        role=None if role is None else role.value,
        regions=_regions(regions) if set_regions else None,
        set_regions=set_regions,
        disabled=disabled,
        password_hash=None if password is None else hash_password(password),
    )


def create_key(
    conn: Connection,
    name: str,
    role: Role,
    *,
    created_by: str,
    regions: list[str] | None = None,
    expires_days: int | None = 90,
    owner: str | None = None,
) -> dict[str, Any]:
    """A new key; the returned dict holds the full key under ``key`` (show it once)."""
    full, prefix, digest = keys.new_key()
    expires = (
        None if expires_days is None else dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days)
    )
    owner_id = None
    if owner is not None:
        user = get_user(conn, owner)
        if user is None:
            raise UserError(f"no user {owner}")
        owner_id = user["user_id"]
    row = accounts.insert_key(
        conn,
        prefix=prefix,
        key_hash=digest,
        name=name,
        role=role.value,
        regions=_regions(regions),
        owner_id=owner_id,
        created_by=created_by,
        expires_at=expires,
    )
    return {**row, "key": full}
