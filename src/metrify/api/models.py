"""Response and request models: what the OpenAPI document promises clients."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from metrify.api.rbac import Role

#: a region name as meters.region holds it
Region = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class SummaryModel(BaseModel):
    """The pipeline's summary, as ``metrify ingest --json`` prints it."""

    kind: str
    read: int
    accepted: int
    rejected: int
    quarantined: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    gaps: int
    estimated: int
    statuses: dict[str, int]
    files: int
    lake_files: int
    seconds: float
    rate_per_s: int | None
    reasons: dict[str, int]
    errors: list[str]
    warnings: list[str]


class Reject(BaseModel):
    index: int | None = Field(description="0-based position of the record in the body")
    line: int | None = Field(default=None, description="CSV line (header = 1)")
    reason: str
    key: dict[str, str] | None = Field(default=None, description="stored key (VEE rejects)")


class IngestResult(BaseModel):
    request_id: str
    source: str
    summary: SummaryModel
    rejects: list[Reject]
    rejects_truncated: bool = False


class Page(BaseModel):
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class ReadingRow(BaseModel):
    ts: dt.datetime
    interval_s: int | None = None
    import_kwh: float | None = Field(
        default=None, description="kWh; for a water meter its volume in m³ (see meters.unit)"
    )
    export_kwh: float | None = None
    generation_kwh: float | None = Field(
        default=None, description="gross generation behind the meter (a PV production meter)"
    )
    volume_m3: float | None = Field(
        default=None, description="metered volume of a gas or water meter"
    )
    register_kwh: float | None = None
    voltage_v: float | None = None
    quality: int
    status: str
    source: str | None = None


class ReadingBucket(BaseModel):
    ts: dt.datetime = Field(description="bucket start (UTC)")
    import_kwh: float | None = Field(description="sum over non-rejected readings")
    export_kwh: float | None
    intervals: int
    valid: int
    estimated: int
    suspect: int
    rejected: int
    missing: int
    quality: int = Field(description="bitwise OR of the readings' quality flags")
    status: str = Field(description="worst status in the bucket")


class ReadingsPage(Page):
    meter_id: str
    resolution: Literal["raw", "15m", "1h", "1d"]
    items: list[ReadingRow] | list[ReadingBucket]


class MeterEventRow(BaseModel):
    ts: dt.datetime
    event: str = Field(
        description="power_failure, power_restore, tamper, cover_open, cover_close, "
        "clock_set, reverse_running, magnetic_field or other"
    )
    code: str | None = Field(
        default=None, description="the source's own code (IEC 61968-9 or DLMS), as given"
    )
    details: str | None = None
    source: str | None = None


class MeterEventsPage(Page):
    meter_id: str
    items: list[MeterEventRow]


class LatestReading(BaseModel):
    meter_id: str
    reading: ReadingRow | None


class QualityDay(BaseModel):
    day: dt.date
    expected: int
    present: int
    valid: int
    estimated: int
    suspect: int
    rejected: int
    missing: int
    completeness: float
    score: float


class QualityPage(BaseModel):
    meter_id: str
    days: list[QualityDay]


class SeriesPage(Page):
    id: str
    resolution: str
    items: list[dict[str, Any]]


class QuarantineRow(BaseModel):
    id: int
    kind: str
    source: str
    raw: str
    reason: str
    line: int | None
    received_at: dt.datetime


class QuarantinePage(Page):
    items: list[QuarantineRow]


class RegionSummary(BaseModel):
    region: str | None
    meters: int
    reporting_meters: int
    readings: int = Field(description="stored readings (gap rows not counted)")
    missing: int = Field(description="gap rows (missing intervals, estimated or not)")
    import_kwh: float | None
    valid: int
    estimated: int
    suspect: int
    rejected: int
    mean_quality_score: float | None


class FleetSummary(BaseModel):
    start: dt.datetime = Field(alias="from")
    end: dt.datetime = Field(alias="to")
    regions: list[RegionSummary]

    model_config = {"populate_by_name": True}


class EditRequest(BaseModel):
    start: dt.datetime = Field(alias="from")
    end: dt.datetime = Field(alias="to")
    value: float | None = Field(default=None, ge=0, description="new import_kwh per interval")
    estimate: bool = Field(default=False, description="re-estimate from the meter's history")
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")

    model_config = {"populate_by_name": True}


class EditResultModel(BaseModel):
    meter_id: str
    rows: int
    updated: int


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class Me(BaseModel):
    kind: Literal["user", "key"]
    name: str
    role: Role
    regions: list[str] | None


class UserIn(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    password: str = Field(min_length=12, max_length=1024)
    role: Role
    regions: list[Region] | None = None


class UserPatch(BaseModel):
    role: Role | None = None
    regions: list[Region] | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class UserOut(BaseModel):
    user_id: int
    username: str
    role: Role
    regions: list[str] | None
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    role: Role
    regions: list[Region] | None = None
    expires_days: int | None = Field(default=90, ge=1, le=3650)


class KeyOut(BaseModel):
    key_id: int
    prefix: str
    name: str
    role: Role
    regions: list[str] | None
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="shown once; store it now")


class AuditRow(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    actor_kind: str
    action: str
    target: str | None
    outcome: str
    request_id: str | None
    client: str | None
    details: dict[str, Any]


class AuditPage(Page):
    items: list[AuditRow]


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool
    schema_revision: str | None
    head_revision: str | None
    #: the read replica's lag and use (null: none configured); never makes the API unready
    replica: dict[str, Any] | None = None
