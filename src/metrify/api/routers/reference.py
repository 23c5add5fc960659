"""CRUD for reference data: meters, grid nodes, weather stations.

Writes go through the pipeline (``Session.pipeline(contract)``) like a reference file,
so validation and storage are the ones every source uses; request models add the
contract's ranges up front so a bad value is a 422, not a quarantine row. Deleting sets
``status = removed``: readings keep their meter, history keeps its meaning. Meters are
region scoped; nodes and stations are shared, so only unscoped principals change them.
"""

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
import polars as pl
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from metrify.api import audit
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, request_id, require
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.scope import in_scope
from metrify.api.state import AppState
from metrify.contracts.records import ID_PATTERN, METER, NODE, STATION, Contract
from metrify.pipeline.session import Session
from metrify.stores.reads import reference

router = APIRouter(prefix="/v1", tags=["reference"])

Reader = Annotated[Principal, Depends(require(Permission.READ_REFERENCE))]
Writer = Annotated[Principal, Depends(require(Permission.WRITE_REFERENCE))]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (400, 401, 403, 404, 409, 422, 429)
}
Lifecycle = Literal["active", "inactive", "removed", "unregistered"]


def _python_type(contract: Contract, name: str, dtype: pl.DataType) -> tuple[Any, Any]:
    """(annotation, Field) of one contract field, with its ranges."""
    kwargs: dict[str, Any] = {"default": None}
    if name in contract.nonnegative:
        kwargs["ge"] = 0
    if name in contract.bounded:
        kwargs["ge"], kwargs["le"] = contract.bounded[name]
    if name == "status":
        return Lifecycle | None, Field(**kwargs)
    if name == "commodity":
        return Literal["electricity", "gas", "heat", "water"] | None, Field(**kwargs)
    if name in ("node_id", "station_id", "parent_id") and name != contract.id_field:
        return str | None, Field(pattern=ID_PATTERN, **kwargs)
    if name == "interval_s":
        return int | None, Field(ge=60, le=86400, **kwargs)
    if name == "register_digits":
        return int | None, Field(ge=1, le=12, **kwargs)
    if dtype == pl.String:  # no control characters: they break COPY and terminals
        return str | None, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$", **kwargs)
    if dtype == pl.Boolean:
        return bool | None, Field(**kwargs)
    if dtype == pl.Date:
        return dt.date | None, Field(**kwargs)
    if dtype in (pl.Int16, pl.Int32, pl.Int64):
        return int | None, Field(ge=-(2**31), lt=2**31, **kwargs)
    return float | None, Field(allow_inf_nan=False, **kwargs)


def _models(
    contract: Contract, title: str
) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    id_field = contract.key[0]
    values = {n: _python_type(contract, n, t) for n, t in contract.schema.items() if n != id_field}
    create: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{title}In",
        __config__={"extra": "forbid"},
        **{id_field: (str, Field(pattern=ID_PATTERN))},
        **values,
    )
    patch: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{title}Patch", __config__={"extra": "forbid"}, **values
    )
    out_fields: dict[str, Any] = {id_field: (str, ...)}
    out_fields.update({n: (ann, None) for n, (ann, _) in values.items()})
    out_fields["status"] = (str, ...)
    out_fields["created_at"] = (dt.datetime, ...)
    out_fields["updated_at"] = (dt.datetime, ...)
    out: type[BaseModel] = create_model(f"{title}Out", **out_fields)
    return create, patch, out


def _page_model(title: str, out: type[BaseModel]) -> type[BaseModel]:
    model: type[BaseModel] = create_model(
        f"{title}Page",
        items=(list[out], ...),  # type: ignore[valid-type]
        next_cursor=(str | None, ...),
    )
    return model


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_UTC_Z),
        status_code=status,
        media_type="application/json",
    )


class Resource:
    """The five routes of one reference table."""

    def __init__(self, contract: Contract, path: str, title: str, noun: str) -> None:
        self.contract = contract
        self.path = path
        self.noun = noun
        self.id_field = contract.key[0]
        self.create_model, self.patch_model, self.out_model = _models(contract, title)
        self.page_model = _page_model(title, self.out_model)
        self.scoped = contract is METER

    # --- reads ---------------------------------------------------------------------

    async def fetch(self, state: AppState, ident: str) -> dict[str, Any] | None:
        async with state.apool.connection() as conn:
            return await reference.one(conn, self.contract, ident)

    def visible(self, principal: Principal, row: dict[str, Any] | None) -> bool:
        return row is not None and (not self.scoped or in_scope(principal, row.get("region")))

    # --- writes --------------------------------------------------------------------

    def check_write(self, principal: Principal, region: Any) -> None:
        if principal.regions is None:
            return
        if not self.scoped:
            raise Problem(403, f"{self.noun}s are shared; a region-scoped role cannot change them")
        if not in_scope(principal, region):
            raise Problem(403, f"region {region!r} is outside your regions")

    def write(self, state: AppState, row: dict[str, Any], source: str) -> None:
        schema = {k: self.contract.schema[k] for k in row}
        frame = pl.DataFrame([row], schema=schema)
        with state.pool.connection() as conn:
            session = Session(state.settings, conn, state.store_for(conn), None)
            pipeline = session.pipeline(self.contract)
            pipeline.submit(frame, source=source)
            summary = pipeline.close()
            if self.scoped:  # a meter's region is part of its cached latest answer
                state.readings_changed(conn, [str(row[self.id_field])])
        if summary.rejected:
            reasons = "; ".join(summary.reasons) or "rejected"
            raise Problem(422, f"{self.noun} rejected: {reasons}")

    def audit(
        self,
        state: AppState,
        request: Request,
        principal: Principal,
        action: str,
        ident: str,
        details: dict[str, Any],
    ) -> None:
        with state.pool.connection() as conn:
            audit.record(
                conn,
                audit.event(request, principal, f"{self.contract.kind}.{action}", ident, details),
            )

    def register(self) -> None:
        res = self
        IdPath = Annotated[str, Path(pattern=ID_PATTERN, alias=self.id_field)]
        create_model_, patch_model = self.create_model, self.patch_model

        async def list_items(
            state: State,
            principal: Reader,
            region: Annotated[str | None, Query(max_length=100)] = None,
            status: Annotated[Lifecycle | None, Query()] = None,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
            cursor: Annotated[str | None, Query(max_length=100)] = None,
        ) -> Response:
            async with state.read_apool().connection() as conn:
                rows = await reference.page(
                    conn,
                    res.contract,
                    after=cursor,
                    status=status,
                    region=region if res.scoped else None,
                    regions=principal.regions if res.scoped else None,
                    limit=limit + 1,
                )
            items = rows[:limit]
            more = len(rows) > limit
            return _json({"items": items, "next_cursor": items[-1][res.id_field] if more else None})

        async def get_item(state: State, principal: Reader, ident: IdPath) -> Response:
            row = await res.fetch(state, ident)
            if not res.visible(principal, row):
                raise Problem(404, f"no {res.noun} {ident}")
            return _json(row)

        async def create_item(
            request: Request,
            state: State,
            principal: Writer,
            body: Annotated[create_model_, Body()],  # type: ignore[valid-type]
        ) -> Response:
            data = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
            ident = data[res.id_field]
            if data.get("status") is None:
                data["status"] = "active"
            res.check_write(principal, data.get("region"))
            existing = await res.fetch(state, ident)
            if existing is not None and not res.visible(principal, existing):
                # Ids are one namespace: a write cannot hide that this one is taken, so
                # it gets the ingest door's answer for another region's meter.
                raise Problem(403, f"{res.noun}s outside your regions: {ident}")
            if existing is not None:
                raise Problem(409, f"{res.noun} {ident} already exists")
            source = f"api:{principal.actor}:{request_id(request)}"
            await run_in_threadpool(res.write, state, data, source)
            await run_in_threadpool(
                res.audit, state, request, principal, "create", ident, {"fields": sorted(data)}
            )
            return _json(await res.fetch(state, ident), 201)

        async def patch_item(
            request: Request,
            state: State,
            principal: Writer,
            ident: IdPath,
            body: Annotated[patch_model, Body()],  # type: ignore[valid-type]
        ) -> Response:
            data = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
            if "status" in data and data["status"] is None:
                raise Problem(422, "status cannot be null; use active, inactive or removed")
            row = await res.fetch(state, ident)
            if not res.visible(principal, row):
                raise Problem(404, f"no {res.noun} {ident}")
            assert row is not None
            res.check_write(principal, row.get("region"))
            if "region" in data:
                res.check_write(principal, data["region"])
            if data:
                source = f"api:{principal.actor}:{request_id(request)}"
                await run_in_threadpool(res.write, state, {res.id_field: ident, **data}, source)
                await run_in_threadpool(
                    res.audit, state, request, principal, "update", ident, {"fields": sorted(data)}
                )
            return _json(await res.fetch(state, ident))

        async def delete_item(
            request: Request, state: State, principal: Writer, ident: IdPath
        ) -> Response:
            row = await res.fetch(state, ident)
            if not res.visible(principal, row):
                raise Problem(404, f"no {res.noun} {ident}")
            assert row is not None
            res.check_write(principal, row.get("region"))
            source = f"api:{principal.actor}:{request_id(request)}"
            await run_in_threadpool(
                res.write, state, {res.id_field: ident, "status": "removed"}, source
            )
            await run_in_threadpool(res.audit, state, request, principal, "delete", ident, {})
            return Response(status_code=204)

        p, item = self.path, f"{self.path}/{{{self.id_field}}}"
        kind = self.contract.kind
        router.add_api_route(
            p,
            list_items,
            methods=["GET"],
            response_model=self.page_model,
            responses=ERRORS,
            name=f"list_{kind}",
            summary=f"List {self.noun}s",
        )
        router.add_api_route(
            p,
            create_item,
            methods=["POST"],
            response_model=self.out_model,
            status_code=201,
            responses=ERRORS,
            name=f"create_{kind}",
            summary=f"Create a {self.noun}",
        )
        router.add_api_route(
            item,
            get_item,
            methods=["GET"],
            response_model=self.out_model,
            responses=ERRORS,
            name=f"get_{kind}",
            summary=f"One {self.noun}",
        )
        router.add_api_route(
            item,
            patch_item,
            methods=["PATCH"],
            response_model=self.out_model,
            responses=ERRORS,
            name=f"update_{kind}",
            summary=f"Change fields of a {self.noun}",
        )
        router.add_api_route(
            item,
            delete_item,
            methods=["DELETE"],
            status_code=204,
            responses=ERRORS,
            name=f"delete_{kind}",
            summary=f"Retire a {self.noun} (status removed)",
        )


for _args in (
    (METER, "/meters", "Meter", "meter"),
    (NODE, "/grid/nodes", "GridNode", "grid node"),
    (STATION, "/weather/stations", "WeatherStation", "weather station"),
):
    Resource(*_args).register()
