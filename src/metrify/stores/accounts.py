"""Users and API keys: the rows behind every credential the API accepts.

Only digests are stored (a password hash, a key's SHA-256); callers hash before they
come here. Synchronous for the admin work (the CLI has no event loop; the API calls it
on a worker thread); the two lookups a request's authentication needs are async, for
the event loop. Every change that can make a cached principal wrong (a role, regions,
disabling, a password, a revoked key) announces itself on ``metrify_auth``; disabling a
user or changing a password also moves ``tokens_valid_after``, which voids every access
token issued before, and revokes the user's refresh tokens.

Revocation is exact: ``token_version`` is incremented by every password change and
disable, access tokens carry the version they were signed with and their refresh-token
family, and :func:`check_user` answers both questions with the user in one statement.
``tokens_valid_after`` still records when that last happened (for people, not checks).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NamedTuple

import psycopg

from metrify.stores import changes, refresh_tokens
from metrify.stores.pools import AsyncConnection, Connection

USER_COLUMNS = "user_id, username, role, regions, disabled, created_at, last_login_at"
KEY_COLUMNS = (
    "key_id, prefix, name, role, regions, created_by, created_at, expires_at, revoked_at, "
    "last_used_at"
)
#: ``api_keys.last_used_at`` is written at most this often per key: a hint for the
#: admin (is this key still in use?), never a write per request
KEY_USE_RESOLUTION = dt.timedelta(seconds=60)


class UserError(ValueError):
    """A user or key operation that cannot be done (message fit for a user)."""


class LastAdminError(UserError):
    """The change would leave no enabled admin: nobody could manage users any more."""


#: serialises the changes that can remove an enabled admin (see :func:`update_user`)
_ADMIN_LOCK = 7274020


class UserCheck(NamedTuple):
    """What an access token's user (and session) must still be for the token to count."""

    username: str
    role: str
    regions: list[str] | None
    disabled: bool
    #: a token signed with another version predates a password change or disable
    token_version: int
    #: the token's refresh-token family still has a live token (not signed out, no re-use)
    family_live: bool


class KeyCheck(NamedTuple):
    """What an API key (found by its public prefix) must still be to count."""

    key_id: int
    key_hash: bytes
    role: str
    regions: list[str] | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    owner_disabled: bool
    last_used_at: dt.datetime | None


class Login(NamedTuple):
    user_id: int
    password_hash: str
    disabled: bool
    #: read with the hash: a token signed for it dies if the password changes meanwhile
    token_version: int


def _user_dict(row: Any) -> dict[str, Any]:
    return dict(zip(USER_COLUMNS.split(", "), row, strict=True))


def _key_dict(row: Any) -> dict[str, Any]:
    return dict(zip(KEY_COLUMNS.split(", "), row, strict=True))


# --- users --------------------------------------------------------------------------


def insert_user(
    conn: Connection, username: str, password_hash: str, role: str, regions: list[str] | None
) -> dict[str, Any]:
    try:
        row = conn.execute(
            f"INSERT INTO users (username, password_hash, role, regions) VALUES (%s, %s, %s, %s)"
            f" RETURNING {USER_COLUMNS}",
            (username, password_hash, role, regions),
        ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise UserError(f"user {username} already exists") from None
    except psycopg.errors.CheckViolation:
        raise UserError(f"invalid user name {username!r}") from None
    assert row is not None
    return _user_dict(row)


def list_users(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY username").fetchall()
    return [_user_dict(r) for r in rows]


def get_user(conn: Connection, username: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {USER_COLUMNS} FROM users WHERE username = %s", (username,)
    ).fetchone()
    return None if row is None else _user_dict(row)


def update_user(
    conn: Connection,
    username: str,
    *,
    role: str | None = None,
    regions: list[str] | None = None,
    set_regions: bool = False,
    disabled: bool | None = None,
    password_hash: str | None = None,
) -> dict[str, Any]:
    """Change the given fields (``regions`` only with ``set_regions``: None is a value).

    Disabling or demoting the last enabled admin is refused (:class:`LastAdminError`):
    nobody could enable or promote anyone again. The check runs here, in the change's own
    transaction and under one advisory lock, so the API and the CLI share it and two
    concurrent demotions of the last two admins cannot both pass (each would otherwise
    still see the other as an admin).
    """
    removes_admin = disabled is True or (role is not None and role != "admin")
    with conn.transaction():
        if removes_admin:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADMIN_LOCK,))
        before = conn.execute(
            "SELECT role = 'admin' AND NOT disabled FROM users WHERE username = %s", (username,)
        ).fetchone()
        if before is None:
            raise UserError(f"no user {username}")
        row = _update_user(
            conn,
            username,
            role=role,
            regions=regions,
            set_regions=set_regions,
            disabled=disabled,
            password_hash=password_hash,
        )
        if removes_admin and before[0] and not _enabled_admins(conn):
            raise LastAdminError(
                f"{username} is the last enabled admin: enable or create another admin first"
            )
    return row


def _enabled_admins(conn: Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled"
    ).fetchone()
    return 0 if row is None else int(row[0])


def _update_user(
    conn: Connection,
    username: str,
    *,
    role: str | None,
    regions: list[str] | None,
    set_regions: bool,
    disabled: bool | None,
    password_hash: str | None,
) -> dict[str, Any]:
    sets: list[str] = ["updated_at = now()"]
    params: list[Any] = []
    if role is not None:
        sets.append("role = %s")
        params.append(role)
    if set_regions:
        sets.append("regions = %s")
        params.append(regions)
    if disabled is not None:
        sets.append("disabled = %s")
        params.append(disabled)
    if password_hash is not None:
        sets.append("password_hash = %s")
        params.append(password_hash)
    if disabled or password_hash is not None:
        sets.append("tokens_valid_after = now()")
        sets.append("token_version = token_version + 1")
        refresh_tokens.revoke_user(conn, username)
    row = conn.execute(
        f"UPDATE users SET {', '.join(sets)} WHERE username = %s RETURNING {USER_COLUMNS}",
        (*params, username),
    ).fetchone()
    if row is None:
        raise UserError(f"no user {username}")
    changes.announce_auth(conn)
    return _user_dict(row)


def login(conn: Connection, username: str) -> Login | None:
    """What a password sign-in checks (None: no such user)."""
    row = conn.execute(
        "SELECT user_id, password_hash, disabled, token_version FROM users WHERE username = %s",
        (username,),
    ).fetchone()
    return None if row is None else Login(int(row[0]), str(row[1]), bool(row[2]), int(row[3]))


def signed_in(conn: Connection, user_id: int) -> None:
    conn.execute("UPDATE users SET last_login_at = now() WHERE user_id = %s", (user_id,))


async def check_user(conn: AsyncConnection, user_id: int, family: uuid.UUID) -> UserCheck | None:
    """The user behind an access token, and whether the token's session is still open
    (one probe of the partial index of live refresh tokens)."""
    cur = await conn.execute(
        "SELECT username, role, regions, disabled, token_version, EXISTS ("
        "SELECT 1 FROM refresh_tokens t WHERE t.family = %s AND t.revoked_at IS NULL "
        "AND t.user_id = users.user_id) FROM users WHERE user_id = %s",
        (family, user_id),
    )
    row = await cur.fetchone()
    return None if row is None else UserCheck._make(row)


# --- API keys -----------------------------------------------------------------------


def insert_key(
    conn: Connection,
    *,
    prefix: str,
    key_hash: bytes,
    name: str,
    role: str,
    regions: list[str] | None,
    owner_id: int | None,
    created_by: str,
    expires_at: dt.datetime | None,
) -> dict[str, Any]:
    row = conn.execute(
        "INSERT INTO api_keys (prefix, key_hash, name, role, regions, owner_id, created_by, "
        f"expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {KEY_COLUMNS}",
        (prefix, key_hash, name, role, regions, owner_id, created_by, expires_at),
    ).fetchone()
    assert row is not None
    return _key_dict(row)


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY key_id").fetchall()
    return [_key_dict(r) for r in rows]


def revoke_key(conn: Connection, ident: str) -> dict[str, Any]:
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
    changes.announce_auth(conn)
    return _key_dict(row)


async def check_key(conn: AsyncConnection, prefix: str) -> KeyCheck | None:
    cur = await conn.execute(
        "SELECT k.key_id, k.key_hash, k.role, k.regions, k.expires_at, k.revoked_at, "
        "coalesce(u.disabled, false), k.last_used_at FROM api_keys k "
        "LEFT JOIN users u ON u.user_id = k.owner_id WHERE k.prefix = %s",
        (prefix,),
    )
    row = await cur.fetchone()
    return None if row is None else KeyCheck._make(row)


async def key_used(conn: AsyncConnection, key_id: int) -> None:
    """Record that a key authenticated, unless that was recorded less than a minute ago.

    Called only after a successful check that read an older ``last_used_at`` (so once a
    minute per key, whatever the request rate); the condition repeats in SQL so that
    several workers racing on one key still write once. No NOTIFY: a use changes
    nothing a cached principal depends on.
    """
    await conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE key_id = %s "
        "AND (last_used_at IS NULL OR last_used_at <= now() - %s)",
        (key_id, KEY_USE_RESOLUTION),
    )
