"""``GET /v1/forecasts`` and ``GET /v1/forecasts/scores``: stored demand forecasts.

The band a dashboard draws (P10, P50, P90 per target interval: the latest issue for
each target, or one given issue) and how the stored forecasts of a range did against
what was measured. Subjects, permissions and region scope are those of ``/v1/energy``
(:func:`metrify.api.energy.check_scope`): a scoped caller sees its meters and regions,
not totals that span regions.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.energy import check_scope
from metrify.api.forecasts import Asked, band, scores
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.contracts.records import ID_PATTERN
from metrify.stores import aggregates
from metrify.stores.series import Subject

router = APIRouter(prefix="/v1", tags=["query"])

Reader = Annotated[Principal, Depends(require(Permission.READ_AGGREGATES))]
Ident = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
Name = Annotated[str | None, Query(min_length=1, max_length=100)]
Start = Annotated[str, Query(alias="from", max_length=40, description="local date or ISO")]
End = Annotated[str, Query(alias="to", max_length=40, description="end, exclusive")]
HorizonQ = Literal["day-ahead", "intraday"]
Zone = Annotated[str | None, Query(max_length=64, description="IANA zone of from/to")]
SubjectType = Literal["meter", "node", "segment", "region", "fleet"]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (400, 401, 403, 404, 422, 429)
}


class ForecastPoint(BaseModel):
    """One target interval (its start, UTC) of the issue that forecast it."""

    target_ts: dt.datetime
    issued_at: dt.datetime
    p10: float | None
    p50: float
    p90: float | None


class ForecastBand(BaseModel):
    subject_type: SubjectType
    subject_id: str
    horizon: HorizonQ
    unit: str
    tz: str
    model: str
    issued_at: dt.datetime | None
    points: list[ForecastPoint]


class ModelScore(BaseModel):
    """MAE in the series' unit, MAPE in percent, pinball averaged over the three
    quantiles, coverage the share of measured values within P10-P90."""

    model: str
    n: int
    mae: float | None
    mape: float | None
    pinball: float | None
    coverage_p10_p90: float | None


class ForecastScores(BaseModel):
    subject_type: SubjectType
    subject_id: str
    horizon: HorizonQ
    unit: str
    tz: str
    start: dt.datetime
    end: dt.datetime
    scores: list[ModelScore]


async def _subject(
    state: State,
    principal: Principal,
    meter: str | None,
    node: str | None,
    region: str | None,
    segment: str | None,
    fleet: bool,
) -> Subject:
    try:
        dim, key = aggregates.subject(meter, node, region, segment, fleet)
    except aggregates.BadQuery:
        raise Problem(
            400, "give exactly one of meter, node, region, segment or fleet=true"
        ) from None
    await check_scope(state, principal, dim, key)
    return Subject(dim, key)


@router.get("/forecasts", response_model=ForecastBand, responses=ERRORS)
async def get_forecasts(
    state: State,
    principal: Reader,
    start: Start,
    end: End,
    meter: Ident = None,
    node: Ident = None,
    region: Name = None,
    segment: Name = None,
    fleet: bool = False,
    horizon: HorizonQ = "day-ahead",
    model: Annotated[str, Query(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "metrify",
    issued_at: Annotated[
        dt.datetime | None, Query(description="one issue (ISO); default: latest per target")
    ] = None,
    tz: Zone = None,
) -> ForecastBand:
    """The stored forecast of targets in [from, to): P10, P50 and P90 per interval."""
    subject = await _subject(state, principal, meter, node, region, segment, fleet)
    if issued_at is not None and issued_at.tzinfo is None:
        issued_at = issued_at.replace(tzinfo=dt.UTC)
    asked = Asked(subject, start, end, tz, horizon)
    answer = await run_in_threadpool(band, state, asked, model, issued_at)
    return ForecastBand.model_validate(answer)


@router.get("/forecasts/scores", response_model=ForecastScores, responses=ERRORS)
async def get_forecast_scores(
    state: State,
    principal: Reader,
    start: Start,
    end: End,
    meter: Ident = None,
    node: Ident = None,
    region: Name = None,
    segment: Name = None,
    fleet: bool = False,
    horizon: HorizonQ = "day-ahead",
    tz: Zone = None,
) -> ForecastScores:
    """Per stored model, its latest forecasts of [from, to) against the measured values."""
    subject = await _subject(state, principal, meter, node, region, segment, fleet)
    answer = await run_in_threadpool(scores, state, Asked(subject, start, end, tz, horizon))
    return ForecastScores.model_validate(answer)
