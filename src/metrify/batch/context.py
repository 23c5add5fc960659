"""What a batch job is handed and what it hands back.

A job is a function ``run(ctx: JobContext) -> Outcome`` over one data interval. It
raises on failure (the runner records the error and goes on with the jobs that do not
need it), raises :class:`JobSkipped` when there is nothing it can do in this build or
configuration (the lake disabled, a component not installed), and is safe to run again
over the same interval: each one replaces what it made for the interval rather than
adding to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

from metrify.settings import Settings
from metrify.stores.lake import Lake
from metrify.stores.pools import Connection

__all__ = ["Interval", "JobContext", "JobSkipped", "Outcome", "describe", "interval_of"]


@dataclass(frozen=True)
class Interval:
    """A data interval: one UTC day, [start, end)."""

    day: dt.date

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.day, dt.time(), dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=1)


def interval_of(start: dt.datetime | dt.date | str) -> Interval:
    """The data interval starting at ``start`` (a date, or Airflow's
    ``data_interval_start`` as a datetime or ISO text); ValueError unless it is a UTC
    midnight, since an interval is a whole UTC day."""
    if isinstance(start, str):
        text = start.strip().replace("Z", "+00:00")
        timed = "T" in text or " " in text
        start = dt.datetime.fromisoformat(text) if timed else dt.date.fromisoformat(text)
    if isinstance(start, dt.datetime):
        utc = start.astimezone(dt.UTC) if start.tzinfo else start.replace(tzinfo=dt.UTC)
        if utc.time() != dt.time():
            raise ValueError(f"a data interval starts at a UTC midnight, not {start.isoformat()}")
        return Interval(utc.date())
    return Interval(start)


@dataclass
class JobContext:
    """One job's run: the settings, the store's connection (autocommit; a job opens its
    own transactions), the lake (None when disabled) and the interval."""

    settings: Settings
    conn: Connection
    lake: Lake | None
    interval: Interval


@dataclass
class Outcome:
    """What a job did: a count worth a column (``rows``) and details for the run log."""

    rows: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


class JobSkipped(Exception):
    """The job cannot run in this build or configuration; the message says why."""


def describe(result: object) -> dict[str, Any]:
    """A result object of another component (a dataclass, a pydantic model, anything
    with public attributes) as a plain, JSON-safe dict for the run log and for Airflow,
    which hands a task's return value on as JSON (a path or a time becomes text)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        out: Any = dataclasses.asdict(result)
    elif callable(dump := getattr(result, "model_dump", None)) and isinstance(dump(), dict):
        out = dump()
    elif isinstance(attrs := getattr(result, "__dict__", None), dict):
        out = {k: v for k, v in attrs.items() if not k.startswith("_")}
    else:
        out = {"result": repr(result)}
    safe: dict[str, Any] = orjson.loads(orjson.dumps(out, default=str))
    return safe
