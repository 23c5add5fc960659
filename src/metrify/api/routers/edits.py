"""``POST /v1/meters/{id}/edits``: an operator's manual edit (the E of VEE), audited.

Goes through :func:`metrify.pipeline.edit.edit_readings`, i.e. the pipeline's one write
path: the old versions go to history with who and why, the new ones carry ``edited``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from metrify.api import audit
from metrify.api import paging as q
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.models import EditRequest, EditResultModel
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.scope import check_meter
from metrify.api.state import AppState
from metrify.contracts.records import ID_PATTERN, READING
from metrify.pipeline.edit import EditError, edit_readings
from metrify.pipeline.session import Session
from metrify.stores.lake import Lake

router = APIRouter(prefix="/v1", tags=["edit"])
Editor = Annotated[Principal, Depends(require(Permission.EDIT_READINGS))]


def _edit(state: AppState, meter_id: str, body: EditRequest, operator: str) -> dict[str, Any]:
    start, end = q.check_range(body.start, body.end)
    settings = state.settings
    with state.pool.connection() as conn:
        lake = Lake(settings.lake) if settings.lake_enabled else None
        pipeline = Session(settings, conn, state.store_for(conn), lake).pipeline(READING)
        try:
            result = edit_readings(
                pipeline,
                meter_id,
                start,
                end,
                value=body.value,
                reestimate=body.estimate,
                reason=body.reason,
                operator=operator,
            )
        except EditError as exc:
            raise Problem(
                422,
                str(exc)
                .replace("--set VALUE", "value")
                .replace("--set:", "value:")
                .replace("--estimate", "estimate")
                .replace("--", ""),
            ) from None
        finally:
            pipeline.close()
    return {"meter_id": meter_id, "rows": result.rows, "updated": result.updated}


@router.post(
    "/meters/{meter_id}/edits",
    response_model=EditResultModel,
    responses={s: PROBLEM_SCHEMA for s in (401, 403, 404, 422, 429)},
)
async def edit(
    request: Request,
    state: State,
    principal: Editor,
    meter_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: EditRequest,
) -> Any:
    """Set import_kwh to a value, or re-estimate, for the stored readings in [from, to)."""
    await check_meter(state, principal, meter_id)
    result = await run_in_threadpool(_edit, state, meter_id, body, principal.actor)
    state.latest.discard(meter_id)

    def write_audit() -> None:
        with state.pool.connection() as conn:
            state.readings_changed(conn, [meter_id])  # every worker's latest cache
            audit.record(
                conn,
                audit.event(
                    request,
                    principal,
                    "readings.edit",
                    meter_id,
                    {
                        "from": body.start.isoformat(),
                        "to": body.end.isoformat(),
                        "value": body.value,
                        "estimate": body.estimate,
                        "reason": body.reason,
                        "rows": result["rows"],
                    },
                ),
            )

    await run_in_threadpool(write_audit)
    return result
