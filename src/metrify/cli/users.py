"""API access from the command line: ``metrify users`` and ``metrify keys``.

FastAPI's modules load only when one of these commands runs. User and key changes made
here are audited with actor ``cli:<os user>`` like the ones made over HTTP.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer

from metrify.cli.apps import keys_app, users_app
from metrify.cli.common import (
    UserError,
    audit_act,
    cli_actor,
    console,
    friendly,
    load_settings,
)

__all__ = [
    "keys_create",
    "keys_list",
    "keys_revoke",
    "users_create",
    "users_disable",
    "users_enable",
    "users_list",
    "users_password",
]

ROLES = "admin, operator, analyst, viewer or ingest"

T = TypeVar("T")


def _role(value: str) -> Any:
    from metrify.api.rbac import Role

    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"--role {value}: expected {ROLES}") from None


def _conn() -> Any:
    from metrify.stores import database

    return database.connect(load_settings())


def _scope(regions: list[str] | None) -> str:
    """A region scope as a cell: NULL is every region; an empty list (refused since, but
    possibly stored before) is no region and must not read as "all"."""
    if regions is None:
        return "all"
    return ",".join(regions) or "none"


def _wrap(work: Callable[[], T]) -> T:
    """Run ``work``; the user store's refusals become one-line errors."""
    from metrify.api.users import UserError as StoreError

    try:
        return work()
    except StoreError as exc:
        raise UserError(str(exc)) from None


def _password(env: str | None) -> str:
    """The new password: from the variable ``env``, else prompted for twice on a
    terminal, else the first line of stdin. Never an argument (shell history, ``ps``)."""
    if env:
        password = os.environ.get(env)
        if not password:
            raise UserError(f"--password-env {env}: variable is not set")
        return password
    if sys.stdin.isatty():
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\n")


PasswordEnv = Annotated[
    str | None,
    typer.Option(help="read the password from this environment variable"),
]


@users_app.command("create")
@friendly
def users_create(
    username: Annotated[str, typer.Argument(help="sign-in name")],
    role: Annotated[str, typer.Option(help=ROLES)],
    regions: Annotated[list[str], typer.Option("--region", help="scope (repeat)")] = [],  # noqa: B006
    password_env: PasswordEnv = None,
) -> None:
    """Create a user; the password is prompted for (or read from --password-env)."""
    from metrify.api import users

    parsed = _role(role)
    password = _password(password_env)
    with _conn() as conn:
        user = _wrap(lambda: users.create_user(conn, username, password, parsed, regions or None))
        audit_act(conn, "users.create", username, {"role": parsed.value, "regions": regions})
    console.print(f"created user {user['username']} ({user['role']})")


@users_app.command("list")
@friendly
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List users (never their password hashes)."""
    from rich.table import Table

    from metrify.api import users

    with _conn() as conn:
        rows = users.list_users(conn)
    if as_json:
        sys.stdout.write(orjson.dumps(rows).decode() + "\n")
        return
    table = Table()
    for col in ("username", "role", "regions", "disabled", "last_login_at"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["username"],
            r["role"],
            _scope(r["regions"]),
            str(r["disabled"]).lower(),
            str(r["last_login_at"] or ""),
        )
    console.print(table)


def _set_disabled(username: str, disabled: bool) -> None:
    """Disable or enable a user, audited like the API's change of the same field."""
    from metrify.api import users

    with _conn() as conn:
        _wrap(lambda: users.update_user(conn, username, disabled=disabled))
        audit_act(conn, "users.update", username, {"disabled": disabled})
    console.print(f"{'disabled' if disabled else 'enabled'} {username}")


@users_app.command("disable")
@friendly
def users_disable(username: Annotated[str, typer.Argument()]) -> None:
    """Disable a user: their tokens stop working on the next request."""
    _set_disabled(username, True)


@users_app.command("enable")
@friendly
def users_enable(username: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled user again: they sign in anew (their old tokens stay void)."""
    _set_disabled(username, False)


@users_app.command("password")
@friendly
def users_password(
    username: Annotated[str, typer.Argument()],
    password_env: PasswordEnv = None,
) -> None:
    """Set a user's password (prompted for, or read from --password-env); their tokens
    issued before stop working. Audited, without the password."""
    from metrify.api import users

    password = _password(password_env)
    with _conn() as conn, conn.transaction():
        _wrap(lambda: users.update_user(conn, username, password=password))
        # the API's row for a password change: the audit store drops any details key
        # naming a password, so the fact is kept under another name
        audit_act(conn, "users.update", username, {"credential_changed": True})
    console.print(f"password of {username} changed")


@keys_app.command("create")
@friendly
def keys_create(
    name: Annotated[str, typer.Argument(help="what the key is for, e.g. head-end-1")],
    role: Annotated[str, typer.Option(help=ROLES)] = "ingest",
    regions: Annotated[list[str], typer.Option("--region", help="scope (repeat)")] = [],  # noqa: B006
    expires_days: Annotated[int, typer.Option(help="days until it expires (0: never)")] = 90,
) -> None:
    """Create an API key and print it ONCE (only its digest is stored)."""
    from metrify.api import users

    parsed = _role(role)
    with _conn() as conn:
        key = users.create_key(
            conn,
            name,
            parsed,
            created_by=cli_actor(),
            regions=regions or None,
            expires_days=expires_days or None,
        )
        audit_act(conn, "keys.create", name, {"role": parsed.value, "key_id": key["key_id"]})
    typer.echo(key["key"])
    typer.echo(
        f"key {key['key_id']} ({key['prefix']}) for {name}, role {parsed.value}; "
        "store it now: it cannot be shown again",
        err=True,
    )


@keys_app.command("list")
@friendly
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List API keys: prefix, role, scope, expiry, revocation, last use (never the key)."""
    from rich.table import Table
    from rich.text import Text

    from metrify.api import users

    with _conn() as conn:
        rows = users.list_keys(conn)
    if as_json:
        sys.stdout.write(orjson.dumps(rows).decode() + "\n")
        return
    table = Table()
    for col in (
        "key_id",
        "prefix",
        "name",
        "role",
        "regions",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["key_id"]),
            r["prefix"],
            Text(r["name"]),  # free text: "[x]" is a name, not markup
            r["role"],
            _scope(r["regions"]),
            str(r["expires_at"] or "never"),
            str(r["revoked_at"] or ""),
            str(r["last_used_at"] or ""),
        )
    console.print(table)


@keys_app.command("revoke")
@friendly
def keys_revoke(ident: Annotated[str, typer.Argument(help="key id or prefix")]) -> None:
    """Revoke a key; the next request with it is refused."""
    from metrify.api import users

    with _conn() as conn:
        key = _wrap(lambda: users.revoke_key(conn, ident))
        audit_act(conn, "keys.revoke", str(key["key_id"]), {"prefix": key["prefix"]})
    console.print(f"revoked key {key['key_id']} ({key['prefix']})")
