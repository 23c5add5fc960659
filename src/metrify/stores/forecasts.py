"""Stored demand forecasts: write an issue, read the band, score it against what came.

The table is migration 0016's: one row per subject, model, horizon, issue time and
target interval, with P10, P50 and P90. An issue is a unit: writing one replaces every
row of the same (subject, model, horizon, issue time) in one transaction, so a re-run
of a job or a command over the same issue leaves exactly its new rows (never a mix of
two runs, nor targets only the old run had). Different issues are kept side by side:
the band a dashboard draws is the latest issue for each target, and scoring later
compares what was forecast then with what was measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from metrify.stores.pools import Connection
from metrify.stores.postgres import copy_binary
from metrify.stores.series import Described, Subject, actual_sql, fresh

__all__ = [
    "COLUMNS",
    "KEY",
    "Point",
    "Scored",
    "issues",
    "models",
    "read",
    "score",
    "write",
]

#: the columns a written frame carries, in the table's order
COLUMNS: Final = (
    "subject_type",
    "subject_id",
    "model",
    "horizon",
    "issued_at",
    "target_ts",
    "p10",
    "p50",
    "p90",
)
#: what one issue is: replaced as a whole
KEY: Final = ("subject_type", "subject_id", "model", "horizon", "issued_at")
_TYPES: Final[dict[str, pl.DataType]] = {
    "subject_type": pl.String(),
    "subject_id": pl.String(),
    "model": pl.String(),
    "horizon": pl.String(),
    "issued_at": pl.Datetime("us", "UTC"),
    "target_ts": pl.Datetime("us", "UTC"),
    "p10": pl.Float64(),
    "p50": pl.Float64(),
    "p90": pl.Float64(),
}


def write(conn: Connection, frame: pl.DataFrame) -> int:
    """Store the forecasts of ``frame`` (:data:`COLUMNS`), each issue in it replacing
    any stored rows of the same issue; returns the rows written.

    The rows go in with one binary COPY into a staging table, then one DELETE of the
    issues they belong to and one INSERT, in a single transaction (readers see the old
    issue or the new one, never half of each). ``ON CONFLICT`` covers a concurrent
    writer of the same issue committing between our DELETE and INSERT: the last wins."""
    if frame.is_empty():
        return 0
    rows = frame.select(pl.col(c).cast(t) for c, t in _TYPES.items()).unique(
        subset=[*KEY, "target_ts"], keep="last", maintain_order=True
    )
    keys = ", ".join(KEY)
    cols = ", ".join(COLUMNS)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE forecasts_in ON COMMIT DROP AS"
            f" SELECT {cols} FROM forecasts WITH NO DATA"
        )
        copy_binary(cur, "forecasts_in", rows)
        cur.execute(
            f"DELETE FROM forecasts f USING (SELECT DISTINCT {keys} FROM forecasts_in) k"
            f" WHERE ({', '.join(f'f.{c}' for c in KEY)}) = ({', '.join(f'k.{c}' for c in KEY)})"
        )
        cur.execute(
            f"INSERT INTO forecasts ({cols}) SELECT {cols} FROM forecasts_in"
            f" ON CONFLICT ({keys}, target_ts) DO UPDATE SET p10 = EXCLUDED.p10,"
            " p50 = EXCLUDED.p50, p90 = EXCLUDED.p90, created_at = now()"
        )
    return rows.height


@dataclass(frozen=True)
class Point:
    """One target interval of a forecast: when it was issued and its quantiles."""

    target_ts: dt.datetime
    issued_at: dt.datetime
    p10: float | None
    p50: float
    p90: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_ts": self.target_ts,
            "issued_at": self.issued_at,
            "p10": self.p10,
            "p50": self.p50,
            "p90": self.p90,
        }


def read(
    conn: Connection,
    subject: Subject,
    *,
    model: str,
    horizon: str,
    start: dt.datetime,
    end: dt.datetime,
    issued_at: dt.datetime | None = None,
) -> list[Point]:
    """The forecast of ``subject`` for targets in [start, end), in target order: the
    given issue's, or for each target the latest issue that covers it (what a dashboard
    draws as "the forecast"; the ``forecasts_latest`` index answers it in order)."""
    where = (
        "subject_type = %s AND subject_id = %s AND model = %s AND horizon = %s"
        " AND target_ts >= %s AND target_ts < %s"
    )
    params: list[object] = [subject.kind, subject.key, model, horizon, start, end]
    if issued_at is not None:
        sql = (
            f"SELECT target_ts, issued_at, p10, p50, p90 FROM forecasts WHERE {where}"
            " AND issued_at = %s ORDER BY target_ts"
        )
        params.append(issued_at)
    else:
        sql = (
            "SELECT DISTINCT ON (target_ts) target_ts, issued_at, p10, p50, p90"
            f" FROM forecasts WHERE {where} ORDER BY target_ts, issued_at DESC"
        )
    return [Point(*row) for row in conn.execute(sql, params).fetchall()]


def models(conn: Connection, subject: Subject, horizon: str) -> list[str]:
    """The models with stored forecasts of ``subject`` at ``horizon``, by name."""
    rows = conn.execute(
        "SELECT DISTINCT model FROM forecasts WHERE subject_type = %s AND subject_id = %s"
        " AND horizon = %s ORDER BY 1",
        (subject.kind, subject.key, horizon),
    ).fetchall()
    return [str(r[0]) for r in rows]


def issues(
    conn: Connection, subject: Subject, model: str, horizon: str, limit: int = 20
) -> list[dt.datetime]:
    """The newest ``limit`` issue times stored for ``subject``, newest first."""
    rows = conn.execute(
        "SELECT DISTINCT issued_at FROM forecasts WHERE subject_type = %s AND subject_id = %s"
        " AND model = %s AND horizon = %s ORDER BY 1 DESC LIMIT %s",
        (subject.kind, subject.key, model, horizon, limit),
    ).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True)
class Scored:
    """How a model's stored forecasts of a range did against the measured values:
    ``n`` target intervals that have both; MAE in the series' unit, MAPE in percent
    (intervals measured at zero left out of it), the pinball loss averaged over P10, P50
    and P90, and the share of measured values inside the P10-P90 band."""

    model: str
    n: int
    mae: float | None
    mape: float | None
    pinball: float | None
    coverage_p10_p90: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n": self.n,
            "mae": self.mae,
            "mape": self.mape,
            "pinball": self.pinball,
            "coverage_p10_p90": self.coverage_p10_p90,
        }


_PINBALL = " + ".join(
    f"greatest({q} * (a.value - f.{c}), ({q} - 1) * (a.value - f.{c}))"
    for q, c in ((0.1, "p10"), (0.5, "p50"), (0.9, "p90"))
)


def score(
    conn: Connection,
    described: Described,
    *,
    horizon: str,
    start: dt.datetime,
    end: dt.datetime,
) -> list[Scored]:
    """Per stored model, its latest forecasts of each target in [start, end) against
    the subject's measured series (:func:`metrify.stores.series.actual_sql`), summed up
    in one query: nothing but the scores leaves the database."""
    if described.source == "aggregates":
        fresh(conn)
    actual, actual_params = actual_sql(described)
    subject = described.subject
    rows = conn.execute(
        f"""
        WITH f AS (
            SELECT DISTINCT ON (model, target_ts) model, target_ts, p10, p50, p90
            FROM forecasts WHERE subject_type = %s AND subject_id = %s AND horizon = %s
              AND target_ts >= %s AND target_ts < %s
            ORDER BY model, target_ts, issued_at DESC
        ), a AS ({actual})
        SELECT f.model, count(a.value),
               avg(abs(a.value - f.p50)),
               100 * avg(abs(a.value - f.p50) / abs(a.value)) FILTER (WHERE a.value <> 0),
               avg(({_PINBALL}) / 3) FILTER (WHERE f.p10 IS NOT NULL AND f.p90 IS NOT NULL),
               avg((a.value BETWEEN f.p10 AND f.p90)::int)
                   FILTER (WHERE f.p10 IS NOT NULL AND f.p90 IS NOT NULL)
        FROM f JOIN a ON a.ts = f.target_ts
        GROUP BY 1 ORDER BY 1
        """,
        [subject.kind, subject.key, horizon, start, end, *actual_params, start, end],
    ).fetchall()
    return [
        Scored(str(m), int(n), *(None if v is None else float(v) for v in vals))
        for m, n, *vals in rows
    ]
