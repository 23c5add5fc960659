"""The dashboard's pages: sign-in, fleet overview, meters, anomaly triage, grid, live.

Pages are rendered on the server (Jinja2) with what one or two indexed queries give;
charts are drawn in the browser by a few lines of script over the API's own JSON routes
(``/v1/energy``, ``/v1/meters/{id}/readings``, ``/v1/forecasts``, ...), called with the
session's access token, so a chart shows exactly what the API answers that user. Access
is the API's: every page names the permission it needs, region scope applies to every
read, and triage uses the same status change and audit record as the API's routes.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

import orjson
from fastapi import APIRouter, Query, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from metrify import __version__
from metrify.api.deps import client_address, request_id
from metrify.api.problems import Problem
from metrify.api.rbac import Permission
from metrify.api.routers.anomalies import set_status
from metrify.api.routers.auth import end_session, password_sign_in
from metrify.api.scope import in_scope
from metrify.api.state import AppState
from metrify.contracts.anomalies import SEVERITIES, Kind, Status
from metrify.contracts.records import ID_PATTERN, METER, NODE
from metrify.stores import aggregates
from metrify.stores.anomalies import AnomalyQuery, list_anomalies_async
from metrify.stores.reads import dashboard, meters, reference
from metrify.web import session as s

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

#: Content Security Policy of every page: scripts, styles and data from this site only,
#: so an injected tag can neither run nor load anything, nor the page be framed
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: the quality bits (fixed: they mean the same everywhere) as the pages name them
FLAGS = (
    "missing",
    "duplicate",
    "out of range",
    "spike",
    "flat line",
    "register mismatch",
    "register rollover",
    "clock",
    "estimated",
    "edited",
    "anomaly",
)
#: the navigation: (path, label, the permission the page needs; a role without it does
#: not see the link)
NAV = (
    ("/", "Fleet", Permission.READ_AGGREGATES),
    ("/meters", "Meters", Permission.READ_REFERENCE),
    ("/anomalies", "Anomalies", Permission.READ_ANOMALIES),
    ("/grid", "Grid", Permission.READ_AGGREGATES),
    ("/live", "Live", Permission.READ_AGGREGATES),
)

router = APIRouter(include_in_schema=False)


def flags_of(quality: int | None) -> str:
    if not quality:
        return ""
    return ", ".join(name for bit, name in enumerate(FLAGS) if quality & (1 << bit))


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: ``45 s``, ``12 min``, ``3 h 20 min``, ``643 d 8 h``."""
    if seconds is None:
        return "—"
    sign, left = ("-" if seconds < 0 else ""), abs(int(seconds))
    if left < 120:
        return f"{sign}{left} s"
    if left < 3600:
        return f"{sign}{left // 60} min"
    if left < 86400:
        return f"{sign}{left // 3600} h {left % 3600 // 60} min"
    return f"{sign}{left // 86400} d {left % 86400 // 3600} h"


env.filters["flags"] = flags_of
env.filters["duration"] = duration


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


def render(
    request: Request,
    template: str,
    session: s.Session | None,
    *,
    status: int = 200,
    data: dict[str, Any] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the session's user, navigation and CSRF token; ``data``
    goes to the page's script as inert JSON (never as script); renewed tokens as cookies."""
    body = env.get_template(template).render(
        request=request,
        session=session,
        principal=None if session is None else session.principal,
        nav=[] if session is None else [(h, t) for h, t, p in NAV if session.can(p)],
        path=request.url.path,
        version=__version__,
        page_data=orjson.dumps(data or {}, default=_iso).decode().replace("</", "<\\/"),
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers=HEADERS)
    if session is not None and session.renewed:
        s.set_tokens(request, response, session.access, session.refresh)
    return response


def to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/?next={quote(target, safe='')}", status_code=303)
    s.clear_tokens(response)
    return response


async def page_session(request: Request, permission: Permission) -> s.Session | Response:
    """The session, or the response to send instead: sign-in, or a 403 page."""
    try:
        return await s.current(request, permission)
    except s.NoSession:
        return to_sign_in(request)
    except Problem as exc:
        if exc.status != 403:
            raise
        try:
            who = await s.current(request)
        except (s.NoSession, Problem):
            who = None
        return render(request, "forbidden.html", who, status=403, detail=exc.detail)


def _utc(value: str | None, default: dt.datetime) -> dt.datetime:
    if not value:
        return default
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Problem(400, f"not a date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# --- sign-in ----------------------------------------------------------------------------


@router.get("/")
async def home(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """The fleet overview, or the sign-in page for a visitor without a session."""
    try:
        session = await s.current(request, Permission.READ_AGGREGATES)
    except s.NoSession:
        return sign_in_page(request, next)
    except Problem as exc:
        if exc.status != 403:
            raise
        who = await s.current(request)
        return render(request, "forbidden.html", who, status=403, detail=exc.detail)
    return await overview(request, session)


def sign_in_page(
    request: Request, next_path: str | None, error: str | None = None, status: int = 200
) -> HTMLResponse:
    nonce = s.login_nonce(request)
    response = render(
        request,
        "signin.html",
        None,
        status=status,
        nonce=nonce,
        next_path=s.safe_next(next_path),
        error=error,
    )
    s.set_login_nonce(request, response, nonce)
    return response


async def form(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (first value each; at most 10, each at most 2,000
    characters): parsed here, so the pages need no multipart parser."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise Problem(415, "send the form as application/x-www-form-urlencoded")
    try:
        parsed = parse_qs((await request.body()).decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "malformed form body") from None
    return {k: v[0][:2000] for k, v in parsed.items()}


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """The API's password grant from a form; the tokens become the session cookies."""
    fields = await form(request)
    username, password = fields.get("username", "")[:64], fields.get("password", "")
    nonce, next = fields.get("nonce", ""), fields.get("next", "/")
    if not s.same(nonce, request.cookies.get(s.LOGIN_COOKIE)):
        return sign_in_page(request, next, "The form expired: please sign in again.", 403)
    if "\x00" in username or "\x00" in password:
        return sign_in_page(request, next, "Invalid user name or password.", 401)
    try:
        tokens = await password_sign_in(
            s.state_of(request), username, password, client_address(request), request_id(request)
        )
    except Problem as exc:
        if exc.status == 401:
            return sign_in_page(request, next, "Invalid user name or password.", 401)
        if exc.status == 429:
            return sign_in_page(request, next, "Too many failed attempts: try again later.", 429)
        raise
    response = RedirectResponse(s.safe_next(next), status_code=303)
    s.set_tokens(request, response, str(tokens["access_token"]), str(tokens["refresh_token"]))
    response.delete_cookie(s.LOGIN_COOKIE, path="/")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Revoke the session's token family (as ``/v1/auth/revoke``) and forget the cookies."""
    csrf = (await form(request)).get("csrf", "")
    refresh = request.cookies.get(s.REFRESH_COOKIE, "")
    if refresh and s.same(csrf, s.csrf_of(refresh)):
        await end_session(s.state_of(request), refresh, client_address(request))
    response = RedirectResponse("/", status_code=303)
    s.clear_tokens(response)
    return response


@router.post("/session/refresh")
async def refresh(request: Request) -> Response:
    """A fresh access token for the page's script (its calls to the API), after the
    one in the page expired; the CSRF header proves the call comes from our page."""
    try:
        session = await s.current(request)
    except s.NoSession:
        return JSONResponse({"detail": "signed out"}, status_code=401)
    s.check_csrf(request, session, request.headers.get(s.CSRF_HEADER))
    response = JSONResponse(
        {"access_token": session.access, "csrf": session.csrf},
        headers={"Cache-Control": "no-store"},
    )
    if session.renewed:
        s.set_tokens(request, response, session.access, session.refresh)
    return response


# --- fleet overview ---------------------------------------------------------------------


def _refresh_aggregates(state: AppState) -> None:
    """Fold marked writes into the 30-minute aggregates first, as ``/v1/energy`` does,
    so the overview's counts include what was just ingested (blocking: a thread's)."""
    with state.pool.connection() as conn:
        if aggregates.pending(conn):
            aggregates.refresh(conn)


async def overview(request: Request, session: s.Session) -> Response:
    state = s.state_of(request)
    regions = session.principal.regions
    await run_in_threadpool(_refresh_aggregates, state)
    async with state.apool.connection() as conn:
        _, fresh = await dashboard.live_tail(conn, regions, limit=1)
        complete = await dashboard.completeness(conn, regions)
        counts = await dashboard.anomaly_counts(conn, regions)
        newest = complete["newest_bucket"] or fresh["newest_ts"]
        end = (newest or dt.datetime.now(dt.UTC)) + dt.timedelta(minutes=30)
        per_region = await dashboard.regions_summary(conn, regions, end - dt.timedelta(days=1), end)
    by_severity: dict[str, dict[str, int]] = {
        sev: {"open": 0, "acknowledged": 0} for sev in reversed(SEVERITIES)
    }
    for status, severity, n in counts:
        by_severity.setdefault(severity, {"open": 0, "acknowledged": 0})[status] = n
    return render(
        request,
        "overview.html",
        session,
        fresh=fresh,
        complete=complete,
        per_region=per_region,
        by_severity=by_severity,
        show_anomalies=session.can(Permission.READ_ANOMALIES),
        now=dt.datetime.now(dt.UTC),
        data={
            "newest": newest,
            "regions": None if regions is None else list(regions),
        },
    )


# --- meters -----------------------------------------------------------------------------


@router.get("/meters")
async def meter_list(
    request: Request,
    q: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Meters in the user's scope, in id order, from ``q`` (an id or its beginning)."""
    session = await page_session(request, Permission.READ_REFERENCE)
    if isinstance(session, Response):
        return session
    async with s.state_of(request).apool.connection() as conn:
        rows = await dashboard.meter_page(
            conn, prefix=q or "", after=after, regions=session.principal.regions, limit=101
        )
    more = len(rows) > 100
    return render(
        request,
        "meters.html",
        session,
        meters=rows[:100],
        q=q or "",
        next_after=rows[99]["meter_id"] if more else None,
    )


@router.get("/meters/{meter_id}")
async def meter_page(
    request: Request,
    meter_id: str,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    resolution: Annotated[str, Query(pattern="^(raw|15m|1h|1d)$")] = "1h",
) -> Response:
    """One meter: readings at a resolution with VEE flags, gaps and estimates marked,
    anomalies and the forecast band on the same time axis, and its edit history."""
    session = await page_session(request, Permission.READ_AGGREGATES)
    if isinstance(session, Response):
        return session
    state = s.state_of(request)
    if resolution == "raw" and not session.can(Permission.READ_RAW):
        resolution = "15m"  # raw readings need read:raw; the finest aggregate instead
    if not re.fullmatch(ID_PATTERN, meter_id):
        return render(request, "forbidden.html", session, status=404, detail="no such meter")
    async with state.apool.connection() as conn:
        known, region = await meters.region_of(conn, meter_id)
        if not known or not in_scope(session.principal, region):
            return render(
                request, "forbidden.html", session, status=404, detail=f"no meter {meter_id}"
            )
        meter = await reference.one(conn, METER, meter_id)
        newest = await dashboard.newest_reading_ts(conn, meter_id)
        last = _utc(end, (newest or dt.datetime.now(dt.UTC)) + dt.timedelta(hours=1))
        first = _utc(start, last - dt.timedelta(days=7))
        if first >= last:
            raise Problem(400, "'from' must be before 'to'")
        changes = await dashboard.history(conn, meter_id, first, last)
    return render(
        request,
        "meter.html",
        session,
        meter=meter,
        history=changes,
        first=first,
        last=last,
        resolution=resolution,
        can_raw=session.can(Permission.READ_RAW),
        data={
            "meter": meter_id,
            "from": first,
            "to": last,
            "resolution": resolution,
            "interval_s": None if meter is None else meter.get("interval_s"),
            "anomalies": session.can(Permission.READ_ANOMALIES),
        },
    )


# --- anomaly triage ---------------------------------------------------------------------


@router.get("/anomalies")
async def anomaly_list(
    request: Request,
    status: Annotated[str | None, Query(max_length=20)] = "open",
    severity: Annotated[str | None, Query(max_length=20)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    subject: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
) -> Response:
    """Anomalies in the user's scope, newest first, filtered like ``GET /v1/anomalies``."""
    session = await page_session(request, Permission.READ_ANOMALIES)
    if isinstance(session, Response):
        return session
    statuses = [x.value for x in Status]
    query = AnomalyQuery(
        status=status if status in statuses else None,
        min_severity=severity if severity in SEVERITIES else None,
        kind=kind or None,
        subject_id=subject or None,
        regions=session.principal.regions,
        before_id=before,
        limit=101,
    )
    async with s.state_of(request).apool.connection() as conn:
        rows = await list_anomalies_async(conn, query)
    filters = {"status": status or "", "severity": severity or "", "kind": kind or ""}
    filters["subject"] = subject or ""
    more = len(rows) > 100
    return render(
        request,
        "anomalies.html",
        session,
        anomalies=rows[:100],
        filters=filters,
        statuses=statuses,
        severities=SEVERITIES,
        kinds=[k.value for k in Kind],
        next_query=urlencode({**filters, "before": rows[99]["id"]}) if more else None,
        can_triage=session.can(Permission.ACK_ANOMALIES),
    )


async def _one_anomaly(request: Request, session: s.Session, anomaly_id: int) -> dict[str, Any]:
    query = AnomalyQuery(regions=session.principal.regions, before_id=anomaly_id + 1, limit=1)
    async with s.state_of(request).apool.connection() as conn:
        rows = await list_anomalies_async(conn, query)
    if not rows or rows[0]["id"] != anomaly_id:
        raise Problem(404, f"no anomaly {anomaly_id}")
    return rows[0]


@router.get("/anomalies/{anomaly_id}")
async def anomaly_page(request: Request, anomaly_id: int) -> Response:
    """One anomaly: its evidence, the subject's data around it plotted with its span
    shaded, and the triage actions its status allows."""
    session = await page_session(request, Permission.READ_ANOMALIES)
    if isinstance(session, Response):
        return session
    try:
        row = await _one_anomaly(request, session, anomaly_id)
    except Problem as exc:
        return render(request, "forbidden.html", session, status=exc.status, detail=exc.detail)
    evidence = row["evidence"]
    return render(
        request,
        "anomaly.html",
        session,
        a=row,
        evidence=evidence if isinstance(evidence, dict) else {"evidence": evidence},
        can_triage=session.can(Permission.ACK_ANOMALIES),
        actions=_actions(Status(row["status"])),
        data={k: row[k] for k in ("id", "subject_type", "subject_id", "ts_start", "ts_end")}
        | {"raw": session.can(Permission.READ_RAW)},
    )


def _actions(current: Status) -> list[tuple[str, str]]:
    """(form value, button label) of the changes the current status allows."""
    out = []
    if current is Status.OPEN:
        out.append(("acknowledge", "Acknowledge"))
    if current is not Status.RESOLVED:
        out.append(("resolve", "Resolve"))
    if current is not Status.FALSE_POSITIVE:
        out.append(("false_positive", "Mark false positive"))
    if current is not Status.OPEN:
        out.append(("reopen", "Reopen"))
    return out


_TARGETS = {
    "acknowledge": Status.ACKNOWLEDGED,
    "resolve": Status.RESOLVED,
    "false_positive": Status.FALSE_POSITIVE,
    "reopen": Status.OPEN,
}


@router.post("/anomalies/{anomaly_id}/status")
async def anomaly_status(request: Request, anomaly_id: int) -> Response:
    """Triage from a form: the API's status change (rules, audit record), CSRF-checked."""
    session = await page_session(request, Permission.ACK_ANOMALIES)
    if isinstance(session, Response):
        return session
    fields = await form(request)
    action, csrf = fields.get("action", ""), fields.get("csrf", "")
    note, back = fields.get("note", "")[:500], fields.get("back", "")
    s.check_csrf(request, session, csrf)
    if action not in _TARGETS:
        raise Problem(400, f"unknown action {action!r}")
    if "\x00" in note:
        raise Problem(400, "note must not contain NUL characters")
    try:
        await set_status(
            request,
            s.state_of(request),
            session.principal,
            anomaly_id,
            _TARGETS[action],
            note.strip() or None,
        )
    except Problem as exc:
        return render(request, "forbidden.html", session, status=exc.status, detail=exc.detail)
    response = RedirectResponse(s.safe_next(back or f"/anomalies/{anomaly_id}"), status_code=303)
    if session.renewed:
        s.set_tokens(request, response, session.access, session.refresh)
    return response


# --- grid -------------------------------------------------------------------------------


@router.get("/grid")
async def grid_page(
    request: Request,
    node: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
) -> Response:
    """A grid node's load against its capacity, voltage and frequency against their
    EN 50160 bands (nominal ±10%, 50 Hz ±1%)."""
    session = await page_session(request, Permission.READ_AGGREGATES)
    if isinstance(session, Response):
        return session
    async with s.state_of(request).apool.connection() as conn:
        nodes = await reference.page(conn, NODE, limit=500)
        chosen = next((n for n in nodes if n["node_id"] == node), nodes[0] if nodes else None)
        newest = None if chosen is None else await dashboard.newest_node_ts(conn, chosen["node_id"])
    last = _utc(end, (newest or dt.datetime.now(dt.UTC)) + dt.timedelta(hours=1))
    first = _utc(start, last - dt.timedelta(days=7))
    return render(
        request,
        "grid.html",
        session,
        nodes=nodes,
        node=chosen,
        first=first,
        last=last,
        data={"node": chosen, "from": first, "to": last},
    )


# --- live -------------------------------------------------------------------------------


@router.get("/live")
async def live_page(request: Request) -> Response:
    """The newest readings as they arrive: the page polls ``/ui/live`` every 2 s."""
    session = await page_session(request, Permission.READ_AGGREGATES)
    if isinstance(session, Response):
        return session
    return render(request, "live.html", session, data={"poll_ms": 2000})


@router.get("/ui/live")
async def live_data(request: Request) -> Response:
    """Freshness and the newest readings in the user's scope (JSON for the live page)."""
    try:
        session = await s.current(request, Permission.READ_AGGREGATES)
    except s.NoSession:
        return JSONResponse({"detail": "signed out"}, status_code=401)
    regions = session.principal.regions
    async with s.state_of(request).apool.connection() as conn:
        tail, fresh = await dashboard.live_tail(conn, regions)
    body = {"at": dt.datetime.now(dt.UTC), **fresh, "readings": tail}
    response = Response(
        orjson.dumps(body, default=_iso),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
    if session.renewed:
        s.set_tokens(request, response, session.access, session.refresh)
    return response
