"""``GET /v1/baselines/...``: weather-normalised baselines, as ``metrify baseline``.

* ``/v1/baselines/fits``: the fits stored for a meter (by the batch job or ``--save``);
* ``/v1/baselines/fit``: fit a meter's daily and/or hourly model over a period now;
* ``/v1/baselines/weather-effect``: how much of a month's change is weather, for a
  meter, a tariff segment or the fleet;
* ``/v1/baselines/savings``: savings after a change, with ASHRAE 14's uncertainty.

The same permission and region scope as ``GET /v1/energy`` (a scoped caller may ask for
its meters only; segment and fleet answers span regions). The answers are
:mod:`metrify.batch.baselines`', computed on a worker thread.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.energy import check_scope
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.batch import baselines as answers
from metrify.contracts.records import ID_PATTERN
from metrify.stores import baselines as store

router = APIRouter(prefix="/v1/baselines", tags=["query"])

Reader = Annotated[Principal, Depends(require(Permission.READ_AGGREGATES))]
MeterId = Annotated[str, Query(pattern=ID_PATTERN, max_length=64)]
Ident = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]
Model = Literal["daily", "hourly"]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (400, 401, 403, 404, 422, 429)
}


def _answer(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except answers.NotAnswerable as exc:
        raise Problem(422, str(exc)) from None
    except ValueError as exc:
        raise Problem(422, str(exc)) from None


@router.get("/fits", responses=ERRORS)
async def fits(
    state: State, principal: Reader, meter: MeterId, model: Model | None = None
) -> list[dict[str, Any]]:
    """The meter's stored baselines, newest period first."""
    await check_scope(state, principal, "meter", meter)

    def read() -> list[dict[str, Any]]:
        with state.pool.connection() as conn:
            return store.fits(conn, meter, model)

    return await run_in_threadpool(read)


@router.get("/fit", responses=ERRORS)
async def fit(
    state: State,
    principal: Reader,
    meter: MeterId,
    model: Model | None = None,
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to", description="exclusive")] = None,
) -> list[dict[str, Any]]:
    """Fit the meter's baselines over ``[from, to)`` (default: the 365 days up to its
    newest reading): CV(RMSE), NMBE and the parameters of each."""
    await check_scope(state, principal, "meter", meter)
    models = answers.MODELS if model is None else (model,)

    def run() -> list[dict[str, Any]]:
        with state.pool.connection() as conn:
            done: list[dict[str, Any]] = _answer(
                answers.fit_meter, conn, meter, models, start, end,
                state.settings.fleet_timezone,
            )  # fmt: skip
            return done

    return await run_in_threadpool(run)


@router.get("/weather-effect", responses=ERRORS)
async def weather_effect(
    state: State,
    principal: Reader,
    month: Month,
    against: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    meter: Ident = None,
    segment: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    fleet: bool = False,
) -> dict[str, Any]:
    """How much of ``month``'s change in use against ``against`` (default: the same
    month a year before, else the month before) is weather, calendar and the rest."""
    if sum((meter is not None, segment is not None, fleet)) != 1:
        raise Problem(400, "give exactly one of meter, segment or fleet=true")
    dim, key = ("meter", meter) if meter else ("segment", segment) if segment else ("fleet", "all")
    await check_scope(state, principal, dim, key or "")

    def run() -> dict[str, Any]:
        with state.pool.connection() as conn:
            done: dict[str, Any] = _answer(
                answers.weather_effect, conn, month, against, meter=meter, segment=segment,
                fleet=fleet, default_tz=state.settings.fleet_timezone,
            )  # fmt: skip
            return done

    return await run_in_threadpool(run)


@router.get("/savings", responses=ERRORS)
async def savings(
    state: State,
    principal: Reader,
    meter: MeterId,
    change: Annotated[dt.date, Query(description="local day the change took effect")],
    end: Annotated[dt.date | None, Query(alias="to", description="end of reporting")] = None,
    model: Model = "daily",
    baseline_days: Annotated[int, Query(ge=30, le=3650)] = 365,
) -> dict[str, Any]:
    """Savings after ``change``: predicted (baseline fitted before it, the reporting
    period's weather) minus actual, with a 90 % uncertainty (ASHRAE Guideline 14)."""
    await check_scope(state, principal, "meter", meter)

    def run() -> dict[str, Any]:
        with state.pool.connection() as conn:
            done: dict[str, Any] = _answer(
                answers.savings, conn, meter, change, end, model, baseline_days,
                state.settings.fleet_timezone,
            )  # fmt: skip
            return done

    return await run_in_threadpool(run)
