"""What the lake should hold for a day, read from the store: every version of every
record of that UTC day (the current rows and the versions they replaced).

The lake keeps every accepted version (:mod:`metrify.stores.lake`); the store keeps the
current one in the contract's table and the replaced ones in its history table, so the
two together are the lake's content as it should be. Meter events have no history
table (a re-sent event replaces the stored one): for them the lake holds the current
rows only, without quality or status. ``metrify lake verify`` compares them; a repair
writes them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from metrify.contracts.records import Contract
from metrify.stores.pools import Connection
from metrify.stores.postgres import HISTORY_TABLE, VERSION_COLUMNS, VERSION_TYPES, copy_out

_TIMES = ("ts", "ingested_at")


def _tables(contract: Contract) -> list[str]:
    """The contract's table and its history table, if it has one."""
    history = HISTORY_TABLE.get(contract.table)
    return [contract.table] if history is None else [contract.table, history]


def version_columns(contract: Contract) -> tuple[str, ...]:
    """The columns beside the record that the lake keeps of each version."""
    if contract.table in HISTORY_TABLE:
        return VERSION_COLUMNS
    return tuple(c for c in VERSION_COLUMNS if c not in ("quality", "status"))


def _union(contract: Contract, columns: str) -> str:
    return " UNION ALL ".join(
        f"SELECT {columns} FROM {table} WHERE ts >= %(lo)s AND ts < %(hi)s"
        for table in _tables(contract)
    )


def _bounds(first: dt.date, last: dt.date) -> dict[str, Any]:
    lo = dt.datetime.combine(first, dt.time(), dt.UTC)
    return {"lo": lo, "hi": dt.datetime.combine(last, dt.time(), dt.UTC) + dt.timedelta(days=1)}


def day_counts(
    conn: Connection, contract: Contract, first: dt.date, last: dt.date
) -> dict[dt.date, int]:
    """How many versions the store holds per UTC day from ``first`` to ``last``."""
    query = (
        "SELECT (ts AT TIME ZONE 'UTC')::date AS day, count(*) FROM ("
        + _union(contract, "ts")
        + ") v GROUP BY 1"
    )
    rows = conn.execute(query, _bounds(first, last)).fetchall()
    return {day: int(n) for day, n in rows}


def span(conn: Connection, contract: Contract) -> tuple[dt.date, dt.date] | None:
    """The first and last UTC day the store holds a version of (None: none)."""
    spans = " UNION ALL ".join(
        f"SELECT min(ts) AS lo, max(ts) AS hi FROM {table}" for table in _tables(contract)
    )
    row = conn.execute(
        "SELECT (min(lo) AT TIME ZONE 'UTC')::date, (max(hi) AT TIME ZONE 'UTC')::date FROM ("
        f" {spans}) t"
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def history_days(conn: Connection, contract: Contract) -> list[dt.date]:
    """The UTC days whose records have a replaced version: the only days on which the
    lake holds more than one version of a key (it holds the current rows and the
    history, nothing else), so the only days where finding the current version needs a
    window. Read AFTER fixing the lake version to read: a correction reaches the history
    table before the lake, so every replaced version in that lake version is counted."""
    history = HISTORY_TABLE.get(contract.table)
    if history is None:
        return []
    rows = conn.execute(
        f"SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM {history} ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def versions(
    conn: Connection, contract: Contract, day: dt.date, last: dt.date | None = None
) -> pl.DataFrame:
    """Every version of the day's records (through ``last``, when given), in the lake's
    columns and types."""
    cols = [*contract.fields, *version_columns(contract)]
    schema = {c: {**contract.schema, **VERSION_TYPES}[c] for c in cols}
    out = ", ".join(
        f"(extract(epoch FROM {c}) * 1000000)::bigint" if c in _TIMES else c for c in cols
    )
    with conn.cursor() as cur:
        raw = copy_out(cur, _union(contract, out), cols, _bounds(day, last or day))
    if raw is None:
        return pl.DataFrame(schema=schema)
    return raw.with_columns(
        *[
            pl.from_epoch(pl.col(c).cast(pl.Int64), "us").dt.replace_time_zone("UTC")
            for c in _TIMES
        ],
        *[pl.col(c).cast(t) for c, t in schema.items() if c not in _TIMES and t != pl.String],
    ).select(cols)
