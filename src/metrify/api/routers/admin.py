"""Admin: users, API keys and the audit log (role ``admin`` only). Every change is audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from metrify.api import audit, users
from metrify.api import paging as q
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.models import AuditPage, KeyCreated, KeyIn, KeyOut, UserIn, UserOut, UserPatch
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.state import AppState

router = APIRouter(prefix="/v1", tags=["admin"])
Admin = Annotated[Principal, Depends(require(Permission.ADMIN_USERS))]
Auditor = Annotated[Principal, Depends(require(Permission.READ_AUDIT))]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (401, 403, 404, 409, 422, 429)
}
Username = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]


def _do(
    state: AppState,
    request: Request,
    principal: Principal,
    action: str,
    target: str,
    details: dict[str, Any],
    work: Any,
) -> Any:
    """Run ``work(conn)`` and its audit row in one transaction."""
    with state.pool.connection() as conn, conn.transaction():
        try:
            result = work(conn)
        except users.LastAdminError as exc:
            raise Problem(409, str(exc)) from None
        except users.UserError as exc:
            status = 409 if "already exists" in str(exc) else 404 if "no " in str(exc) else 422
            raise Problem(status, str(exc)) from None
        except ValueError as exc:
            raise Problem(422, str(exc)) from None
        audit.record(conn, audit.event(request, principal, action, target, details))
    state.principals.clear()
    return result


@router.get("/admin/users", response_model=list[UserOut], responses=ERRORS)
async def list_users(state: State, principal: Admin) -> Any:
    def work() -> Any:
        with state.pool.connection() as conn:
            return users.list_users(conn)

    return await run_in_threadpool(work)


@router.post("/admin/users", response_model=UserOut, status_code=201, responses=ERRORS)
async def create_user(request: Request, state: State, principal: Admin, body: UserIn) -> Any:
    return await run_in_threadpool(
        _do,
        state,
        request,
        principal,
        "users.create",
        body.username,
        {"role": body.role.value, "regions": body.regions},
        lambda conn: users.create_user(conn, body.username, body.password, body.role, body.regions),
    )


@router.patch("/admin/users/{username}", response_model=UserOut, responses=ERRORS)
async def update_user(
    request: Request, state: State, principal: Admin, username: Username, body: UserPatch
) -> Any:
    given = body.model_dump(exclude_unset=True)
    details = {k: v for k, v in given.items() if k != "password"}
    if "password" in given:
        # the audit store drops every details key that names a password (so no caller can
        # leak one); the fact that it changed needs a key that survives that filter
        details["credential_changed"] = True
    return await run_in_threadpool(
        _do,
        state,
        request,
        principal,
        "users.update",
        username,
        details,
        lambda conn: users.update_user(
            conn,
            username,
            role=body.role,
            regions=body.regions,
            set_regions="regions" in given,
            disabled=body.disabled,
            password=body.password,
        ),
    )


@router.get("/admin/keys", response_model=list[KeyOut], responses=ERRORS)
async def list_keys(state: State, principal: Admin) -> Any:
    def work() -> Any:
        with state.pool.connection() as conn:
            return users.list_keys(conn)

    return await run_in_threadpool(work)


@router.post("/admin/keys", response_model=KeyCreated, status_code=201, responses=ERRORS)
async def create_key(request: Request, state: State, principal: Admin, body: KeyIn) -> Any:
    def work(conn: Any) -> Any:
        return users.create_key(
            conn,
            body.name,
            body.role,
            created_by=principal.actor,
            regions=body.regions,
            expires_days=body.expires_days,
        )

    created = await run_in_threadpool(
        _do,
        state,
        request,
        principal,
        "keys.create",
        body.name,
        {"role": body.role.value, "regions": body.regions, "expires_days": body.expires_days},
        work,
    )
    return created


@router.delete("/admin/keys/{key_id}", response_model=KeyOut, responses=ERRORS)
async def revoke_key(
    request: Request,
    state: State,
    principal: Admin,
    key_id: Annotated[int, Path(ge=1, lt=2**63)],
) -> Any:
    return await run_in_threadpool(
        _do,
        state,
        request,
        principal,
        "keys.revoke",
        str(key_id),
        {},
        lambda conn: users.revoke_key(conn, str(key_id)),
    )


@router.get("/audit", response_model=AuditPage, responses=ERRORS)
async def audit_log(
    state: State,
    principal: Auditor,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=100, description="'*' matches any")] = None,
    since: Annotated[dt.datetime | None, Query()] = None,
    until: Annotated[dt.datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Any:
    after_id = q.decode_id_cursor(cursor) or None
    where = audit.Filter(
        actor=actor,
        action=action,
        since=None if since is None else q.utc(since),
        until=None if until is None else q.utc(until),
    )
    async with state.apool.connection() as conn:
        rows = await audit.page(conn, where, after_id=after_id, limit=limit + 1)
    items = rows[:limit]
    more = len(rows) > limit
    return {"items": items, "next_cursor": q.encode_cursor(items[-1]["id"]) if more else None}
