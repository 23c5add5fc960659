"""``POST /v1/readings|grid|weather``: push data through the one pipeline.

The body (JSON array, NDJSON or CSV by Content-Type) becomes raw frames like a file's,
goes through ``Session.pipeline(contract).submit(...)`` and the answer is the pipeline's
summary plus each rejected record's reason by its index in the body. Each request is its
own source (``api:<actor>:<request id>``), so quarantine rows and VEE rejects can be
traced back to it and to the record.

Concurrent requests of one kind share pipeline runs (:mod:`metrify.api.grouping`): the
pipeline keeps a summary per source, so each request still gets only its own counts.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import Annotated, Any, cast

import orjson
import polars as pl
from fastapi import APIRouter, Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from metrify.api import audit, bodies, idempotency
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, client_address, request_id, require
from metrify.api.grouping import Entry, GroupCommit
from metrify.api.models import IngestResult
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.state import AppState
from metrify.contracts.records import GRID, READING, WEATHER, Contract, Quality
from metrify.contracts.summary import Summary
from metrify.pipeline.session import Session
from metrify.pipeline.stages import Pipeline
from metrify.sources.decode import SchemaMismatch, check_columns, decode, wire_times
from metrify.sources.mapping import Mapping
from metrify.stores.lake import Lake
from metrify.stores.pools import Connection
from metrify.stores.postgres import PostgresStore, register_in_region
from metrify.stores.reads import meters, quarantine
from metrify.stores.reads.rejects import rejected

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["ingest"])

MAX_REJECTS = 1000

_BODY = {
    "requestBody": {
        "required": True,
        "description": "records in the contract's field names (see DESIGN.md)",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: PROBLEM_SCHEMA,
    401: PROBLEM_SCHEMA,
    403: PROBLEM_SCHEMA,
    409: PROBLEM_SCHEMA,
    413: PROBLEM_SCHEMA,
    415: PROBLEM_SCHEMA,
    422: PROBLEM_SCHEMA,
    429: PROBLEM_SCHEMA,
}

Ingester = Annotated[Principal, Depends(require(Permission.INGEST))]


def _ids(parts: list[bodies.Part], column: str) -> list[str]:
    return sorted(
        {
            v
            for p in parts
            if column in p.frame.columns
            for v in p.frame[column].drop_nulls().cast(pl.String).str.strip_chars().to_list()
        }
    )


def _region_check(state: AppState, principal: Principal, ids: list[str]) -> None:
    """A region-scoped principal may not write readings of another region's meters.

    Meters it sends first are registered in its region (it has one) before the check,
    so a race with another region's sender leaves the id with one of them and the other
    refused; with several regions the new meter's region is ambiguous, so it must be
    registered first (``POST /v1/meters`` with a region)."""
    if principal.regions is None or not ids:
        return
    regions = list(principal.regions)
    with state.pool.connection() as conn:
        if len(regions) == 1:
            register_in_region(conn, ids, regions[0])
        else:
            new = meters.unknown(conn, ids)
            if new:
                raise Problem(
                    422,
                    f"unknown meters: {', '.join(new)}; your regions are {', '.join(regions)}:"
                    " register these meters with a region first (POST /v1/meters)",
                )
        outside = meters.outside_regions(conn, ids, regions)
    if outside:
        raise Problem(403, f"meters outside your regions: {', '.join(outside)}")


def _check_columns(contract: Contract, parts: list[bodies.Part]) -> None:
    """Refuse a body without a required field before it joins a run with others."""
    for part in parts:
        if part.frame.width == 0:  # only unusable elements: nothing to decode
            part.frame = pl.DataFrame(schema=dict.fromkeys(contract.fields, pl.String))
        try:
            check_columns(contract, part.frame.columns, Mapping())
        except SchemaMismatch as exc:
            raise Problem(
                422,
                str(exc)
                .replace("--map", "rename the field; no --map over HTTP")
                .split("; map one")[0],
            ) from None


def _vee_rejects(
    conn: Connection,
    contract: Contract,
    fmt: bodies.Format,
    source: str,
    parts: list[bodies.Part],
    ids: list[str],
) -> list[dict[str, Any]]:
    """Stored rows of this request that VEE rejected, mapped back to body indices (the
    parts count in CSV lines for a CSV body, in indices for JSON: the same conversion as
    for the quarantined rows makes ``index`` mean one thing for every format)."""
    id_col = contract.key[0]
    rows = rejected(conn, contract, source, ids, limit=MAX_REJECTS)
    if not rows:
        return []
    # Map keys back to positions with the pipeline's own decoder (no second processing).
    keys: dict[tuple[str, Any], int] = {}
    for part in parts:
        if part.frame.height == 0:
            continue
        decoded = decode(
            contract,
            part.frame,
            Mapping(),
            first_line=part.first_line,
            lines=part.lines,
            check_ranges=False,
        )
        raw_keys = decoded.records.select(id_col, "ts")
        kept = part.line_numbers()[decoded.rows.to_numpy()].tolist()
        for (ident, ts), line in zip(raw_keys.iter_rows(), kept, strict=False):
            keys[(ident, ts)] = line
    records = bodies.content_lines(parts) if fmt == "csv" else None
    out = []
    for ident, ts, quality in rows:
        flags = [f.name.lower().replace("_", " ") for f in Quality if f & quality and f.name]
        line = keys.get((ident, ts))
        out.append(
            {
                "index": bodies.index_of_line(fmt, line, records),
                "line": line if fmt == "csv" else None,
                "reason": "rejected by validation: " + (", ".join(flags) or "rule"),
                "key": {id_col: ident, "ts": ts.isoformat()},
            }
        )
    return out


@dataclass
class _Body:
    """A parsed request on its way through a (grouped) pipeline run: its records, and
    what its answer, key and audit row need."""

    parts: list[bodies.Part]
    source: str
    ids: list[str]
    fmt: bodies.Format
    principal: Principal
    rid: str
    client: str | None
    endpoint: str
    idem_key: str | None = None
    digest: bytes = b""


@dataclass
class _Answer:
    """A request's outcome: its answer (status, JSON body, replayed) or its own error."""

    status: int = 200
    body: bytes = b""
    replayed: bool = False
    error: Problem | None = None


def _claim(conn: Connection, body: _Body) -> _Answer | None:
    """Claim the request's key in the run's transaction: None to go on, else its answer
    (a replay of a request that committed meanwhile, or its 409/422)."""
    if body.idem_key is None:
        return None
    try:
        stored = idempotency.claim(
            conn, body.principal.actor, body.idem_key, body.endpoint, body.digest
        )
    except Problem as exc:
        return _Answer(error=exc)
    return None if stored is None else _Answer(stored.status, stored.body, replayed=True)


def _finish(conn: Connection, contract: Contract, body: _Body, summary: Summary) -> _Answer:
    """In the run's transaction: the request's answer, stored under its key, and its
    audit row."""
    result = _result(conn, contract, body, summary)
    data = orjson.dumps(
        {"request_id": body.rid, "source": body.source, **result}, option=orjson.OPT_UTC_Z
    )
    actor = body.principal.actor
    if body.idem_key is not None:
        idempotency.complete(conn, actor, body.idem_key, 200, data)
    counts = result["summary"]
    audit.record(
        conn,
        audit.Event(
            actor=actor,
            actor_kind=body.principal.kind,
            action=f"ingest.{contract.kind}",
            target=body.source,
            request_id=body.rid,
            client=body.client,
            details={
                k: counts[k]
                for k in ("read", "accepted", "rejected", "quarantined", "inserted", "updated")
            },
        ),
    )
    return _Answer(200, data)


def _partitions_ahead(store: PostgresStore, contract: Contract, items: list[_Body]) -> None:
    """Create the monthly partitions the bodies' times (in the wire format) fall in
    before the run's transaction begins: created inside it, a partition would lock the
    whole table until the request ends. Best effort: a month missed here (another time
    format, a gap reaching back) is created in the transaction, as before."""
    times = [
        wire_times(part.frame.get_column("ts").cast(pl.String))
        for item in items
        for part in item.parts
        if "ts" in part.frame.columns and part.frame.height
    ]
    if not times:
        return
    ts = pl.concat(times)
    ts = ts.filter(ts.dt.year().is_between(1900, 2200))  # a wild year is the pipeline's
    try:
        store.ensure_partitions(contract, ts)
    except Exception as exc:  # the in-transaction path creates it or reports the error
        log.warning("partitions not created ahead of an ingest: %s", exc)


def _run_group(
    state: AppState, contract: Contract, group: list[Entry[_Body, _Answer]]
) -> list[_Answer]:
    """One pipeline run for a group of requests (see :mod:`metrify.api.grouping`), on a
    pooled connection, in ONE transaction: every request's rows, quarantine, key and
    audit row commit together or not at all, so nothing of a request is visible before
    it answers and a crash leaves nothing. The lake follows after the commit (the
    outbox catches up whatever a crash keeps from it). Each request's summary is its own
    source's (a request alone takes the run's, without the cost of counting per source).
    """
    settings = state.settings
    answers: list[_Answer | None] = [None] * len(group)
    with state.pool.connection() as conn:
        lake = Lake(settings.lake) if settings.lake_enabled else None
        store = state.store_for(conn)
        _partitions_ahead(store, contract, [e.item for e in group])
        try:
            with conn.transaction():
                answers = [_claim(conn, entry.item) for entry in group]
                todo = [e.item for e, a in zip(group, answers, strict=True) if a is None]
                if not todo:
                    return [a for a in answers if a is not None]
                session = Session(settings, conn, store, lake)
                pipeline = session.pipeline(contract, by_source=len(todo) > 1, defer_lake=True)
                for item in todo:
                    for part in item.parts:
                        pipeline.submit(
                            part.frame,
                            source=item.source,
                            first_line=part.first_line,
                            lines=part.lines,
                            bad=part.bad,
                        )
                # Daily quality scores: a background refresh (AppState) rather than per request.
                summary = pipeline.close(final=not state.deferred_quality)
                done = iter(_own_summaries(contract, pipeline, summary, todo))
                answers = [
                    a if a is not None else _finish(conn, contract, e.item, next(done))
                    for e, a in zip(group, answers, strict=True)
                ]
        except BaseException:
            store.rolled_back()
            raise
        # Committed: from here on nothing may fail the run (it would be run again).
        try:
            if contract is READING:  # the hot cache must not hide what was just written
                state.readings_changed(conn, sorted({i for item in todo for i in item.ids}))
                state.quality_marked()
            pipeline.publish_lake()
        except Exception as exc:  # the lake outbox keeps what the lake still lacks
            log.error("after an ingest commit: %s", exc)
    return [a for a in answers if a is not None]


def _own_summaries(
    contract: Contract, pipeline: Pipeline, summary: Summary, todo: list[_Body]
) -> list[Summary]:
    """Each request's summary: the run's for a request alone, else its source's."""
    if pipeline.sources is None:
        return [summary]
    answers = []
    for item in todo:
        own = pipeline.sources.get(item.source) or Summary(kind=contract.kind)
        # What belongs to the run as a whole: its lake files, errors and time.
        own.lake_files, own.seconds = summary.lake_files, summary.seconds
        own.errors = list(summary.errors)
        answers.append(own)
    return answers


def _grouped(state: AppState, contract: Contract) -> GroupCommit[_Body, _Answer]:
    with state.ingest_groups_lock:
        group = state.ingest_groups.get(contract.kind)
        if group is None:
            group = state.ingest_groups[contract.kind] = GroupCommit(
                functools.partial(_run_group, state, contract),
                state.settings.api.ingest_group_rows,
                state.settings.api.ingest_runs,
            )
    return cast(GroupCommit[_Body, _Answer], group)


def _run(state: AppState, contract: Contract, body: _Body) -> _Answer:
    """The body through the pipeline, grouped with concurrent ones unless grouping is
    off; its answer, or its own error raised."""
    rows = sum(part.frame.height + len(part.bad) for part in body.parts)
    ids = frozenset(body.ids)
    # Two requests with one key never share a run: in one, the later would meet its
    # twin's uncommitted claim in its own transaction (409 at once, although the first
    # is about to answer); in the next run it finds the committed answer.
    apart = (
        frozenset()
        if body.idem_key is None
        else frozenset([f"{body.principal.actor}\0{body.idem_key}"])
    )
    if state.settings.api.ingest_group_rows > 0:
        answer = _grouped(state, contract).submit(body, ids, rows, apart)
    else:
        answer = _run_group(state, contract, [Entry(body, ids, rows)])[0]
    if answer.error is not None:
        raise answer.error
    return answer


def _result(conn: Connection, contract: Contract, body: _Body, summary: Summary) -> dict[str, Any]:
    """The request's summary and rejects, read in the run's transaction."""
    fmt = body.fmt
    quarantined = quarantine.of_source(conn, body.source, limit=MAX_REJECTS + 1)
    records = bodies.content_lines(body.parts) if fmt == "csv" else None
    rejects: list[dict[str, Any]] = [
        {
            "index": bodies.index_of_line(fmt, line, records),
            "line": line if fmt == "csv" else None,
            "reason": reason,
        }
        for line, reason in quarantined
    ]
    if contract.time_series and summary.statuses.get("rejected"):
        rejects += _vee_rejects(conn, contract, fmt, body.source, body.parts, body.ids)
    # Bad rows over the quarantine cap (``max_rejects``) are counted, not listed.
    truncated = len(rejects) > MAX_REJECTS or summary.not_kept > 0
    return {
        "summary": summary.as_dict(),
        "rejects": rejects[:MAX_REJECTS],
        "rejects_truncated": truncated,
    }


def _process(
    state: AppState,
    principal: Principal,
    contract: Contract,
    fmt: bodies.Format,
    data: bytes,
    *,
    idem_key: str | None,
    endpoint: str,
    rid: str,
    client: str | None,
    charset: str = "utf-8",
) -> tuple[int, bytes, bool]:
    """The whole blocking part of an ingest, on one worker thread (never on the event
    loop, which keeps serving reads meanwhile): replay check, parse, region check, then
    the run that commits the rows, the answer under the key and the audit row together.
    Returns (status, JSON body, replayed)."""
    digest = b""
    if idem_key is not None:
        digest = hashlib.sha256(f"{endpoint}\n{fmt}\n{charset}\n".encode() + data).digest()
        with state.pool.connection() as conn:
            stored = idempotency.replay(conn, principal.actor, idem_key, endpoint, digest)
        if stored is not None:
            return stored.status, stored.body, True
    parts = bodies.parse(fmt, data, charset)
    _check_columns(contract, parts)
    ids = _ids(parts, contract.key[0])
    if contract is READING:
        _region_check(state, principal, ids)
    body = _Body(
        parts,
        f"api:{principal.actor}:{rid}",
        ids,
        fmt,
        principal,
        rid,
        client,
        endpoint,
        idem_key,
        digest,
    )
    answer = _run(state, contract, body)
    return answer.status, answer.body, answer.replayed


async def _ingest(
    request: Request,
    state: AppState,
    principal: Principal,
    contract: Contract,
    idem_key: str | None,
) -> Response:
    fmt = bodies.body_format(request.headers.get("content-type"))
    charset = bodies.body_charset(request.headers.get("content-type"), fmt)
    if idem_key is not None:
        idempotency.check_key(idem_key)
    data = await request.body()  # bounded by the Guard middleware (max_body_bytes)
    status, body, replayed = await run_in_threadpool(
        _process,
        state,
        principal,
        contract,
        fmt,
        data,
        idem_key=idem_key,
        endpoint=f"POST {request.url.path}",
        rid=request_id(request),
        client=client_address(request),
        charset=charset,
    )
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"Idempotency-Replayed": "true"} if replayed else None,
    )


def _route(contract: Contract, path: str) -> None:
    async def endpoint(
        request: Request,
        state: State,
        principal: Ingester,
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", description="makes a retry return the first answer"),
        ] = None,
    ) -> Response:
        return await _ingest(request, state, principal, contract, idempotency_key)

    endpoint.__name__ = f"ingest_{contract.kind}"
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        response_model=IngestResult,
        responses=_ERRORS,
        openapi_extra=_BODY,
        summary=f"Ingest {contract.kind} through the pipeline",
    )


for _contract, _path in ((READING, "/readings"), (GRID, "/grid"), (WEATHER, "/weather")):
    _route(_contract, _path)
