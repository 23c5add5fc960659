"""Time buckets and JSON rows: what every time-series read shares.

Buckets use ``date_bin`` on UTC instants (a ``1d`` bucket is a UTC day), so a bucket
means the same in every worker whatever its time zone. A bucket's status is the worst
status among its rows, so nothing is hidden by aggregation. Pages render each row as a
JSON object in PostgreSQL: a page of hundreds of rows then costs the server one join of
byte strings instead of a dict and a datetime per value.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, TypeAlias

Resolution = Literal["raw", "15m", "1h", "1d"]
STEPS = {"15m": "15 minutes", "1h": "1 hour", "1d": "1 day"}
ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
#: the worst status of a bucket's rows
WORST = (
    "(ARRAY['valid','estimated','suspect','rejected'])[max(CASE status WHEN 'valid' THEN 1 "
    "WHEN 'estimated' THEN 2 WHEN 'suspect' THEN 3 ELSE 4 END)]"
)

#: one page row: the row as JSON object text, and its ``ts`` (the keyset cursor)
JsonRow: TypeAlias = tuple[str, dt.datetime]


def bucket(step: str) -> str:
    """The bucket start of ``ts`` for a resolution other than raw."""
    return f"date_bin(interval '{STEPS[step]}', ts, {ORIGIN})"


def as_json_rows(sql: str, columns: tuple[str, ...] | None = None) -> str:
    """Each row of ``sql`` as one JSON object text, plus its ``ts``; ``columns`` names
    the columns of ``sql`` when it leaves them unnamed."""
    names = "" if columns is None else f"({', '.join(columns)})"
    return f"SELECT row_to_json(t)::text, t.ts FROM ({sql}) AS t{names}"
