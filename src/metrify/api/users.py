"""Users and API keys in the store: shared by the admin routes and ``metrify users|keys``.

Synchronous on purpose (the CLI has no event loop; the routes call these on a worker
thread). Disabling a user or changing a password moves ``tokens_valid_after``, which
voids every token issued before; revoking a key is one UPDATE the next request sees.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from metrify.api.auth import keys
from metrify.api.auth.passwords import hash_password
from metrify.api.rbac import Role, parse_regions

USER_COLUMNS = "user_id, username, role, regions, disabled, created_at, last_login_at"
KEY_COLUMNS = "key_id, prefix, name, role, regions, created_by, created_at, expires_at, revoked_at"


class UserError(ValueError):
    """A user or key operation that cannot be done (message fit for a user)."""


def notify(conn: psycopg.Connection[Any]) -> None:
    """Tell every API worker to drop cached principals (delivered at commit)."""
    conn.execute("NOTIFY metrify_auth")


def _user_dict(row: Any) -> dict[str, Any]:
    return dict(zip(USER_COLUMNS.split(", "), row, strict=True))


def _key_dict(row: Any) -> dict[str, Any]:
    return dict(zip(KEY_COLUMNS.split(", "), row, strict=True))


def create_user(
    conn: psycopg.Connection[Any],
    username: str,
    password: str,
    role: Role,
    regions: list[str] | None = None,
) -> dict[str, Any]:
    digest = hash_password(password)
    regions_t = parse_regions(regions)
    try:
        row = conn.execute(
            f"INSERT INTO users (username, password_hash, role, regions) VALUES (%s, %s, %s, %s)"
            f" RETURNING {USER_COLUMNS}",
            (username, digest, role.value, list(regions_t) if regions_t else None),
        ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise UserError(f"user {username} already exists") from None
    except psycopg.errors.CheckViolation:
        raise UserError(f"invalid user name {username!r}") from None
    assert row is not None
    return _user_dict(row)


def list_users(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY username").fetchall()
    return [_user_dict(r) for r in rows]


def get_user(conn: psycopg.Connection[Any], username: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {USER_COLUMNS} FROM users WHERE username = %s", (username,)
    ).fetchone()
    return None if row is None else _user_dict(row)


def update_user(
    conn: psycopg.Connection[Any],
    username: str,
    *,
    role: Role | None = None,
    regions: list[str] | None = None,
    set_regions: bool = False,
    disabled: bool | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    sets: list[str] = ["updated_at = now()"]
    params: list[Any] = []
    if role is not None:
        sets.append("role = %s")
        params.append(role.value)
    if set_regions:
        regions_t = parse_regions(regions)
        sets.append("regions = %s")
        params.append(list(regions_t) if regions_t else None)
    if disabled is not None:
        sets.append("disabled = %s")
        params.append(disabled)
    if password is not None:
        sets.append("password_hash = %s")
        params.append(hash_password(password))
    if disabled or password is not None:
        sets.append("tokens_valid_after = now()")
        conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND "
            "user_id = (SELECT user_id FROM users WHERE username = %s)",
            (username,),
        )
    row = conn.execute(
        f"UPDATE users SET {', '.join(sets)} WHERE username = %s RETURNING {USER_COLUMNS}",
        (*params, username),
    ).fetchone()
    if row is None:
        raise UserError(f"no user {username}")
    notify(conn)
    return _user_dict(row)


def create_key(
    conn: psycopg.Connection[Any],
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
    regions_t = parse_regions(regions)
    row = conn.execute(
        "INSERT INTO api_keys (prefix, key_hash, name, role, regions, owner_id, created_by, "
        f"expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {KEY_COLUMNS}",
        (
            prefix,
            digest,
            name,
            role.value,
            list(regions_t) if regions_t else None,
            owner_id,
            created_by,
            expires,
        ),
    ).fetchone()
    assert row is not None
    return {**_key_dict(row), "key": full}


def list_keys(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY key_id").fetchall()
    return [_key_dict(r) for r in rows]


def revoke_key(conn: psycopg.Connection[Any], ident: str) -> dict[str, Any]:
    """Revoke by prefix or id; takes effect on the next request.

    The prefix is tried first: a prefix is hex and can be all digits, and ids never
    reach twelve digits."""
    row = None
    for column, value in (("prefix", ident), ("key_id", int(ident) if ident.isdigit() else None)):
        if value is None:
            continue
        row = conn.execute(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE {column} = %s "
            f"RETURNING {KEY_COLUMNS}",
            (value,),
        ).fetchone()
        if row is not None:
            break
    if row is None:
        raise UserError(f"no API key {ident}")
    notify(conn)
    return _key_dict(row)
