"""A streaming read replica: how far behind the primary it is, in bytes of WAL and in
seconds, and the write position a caller's own write reached.

PostgreSQL positions in the WAL (LSNs, ``X/Y`` in hex) order every change: a replica
whose replay position is at or past the LSN a write committed at shows that write. The
API uses that to send a caller's reads to the replica only once it holds the caller's
own writes (:mod:`metrify.api.replica`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from metrify.stores.pools import AsyncConnection


def parse_lsn(text: str) -> int:
    """``16/B374D848`` as one integer (PostgreSQL's ``pg_lsn``)."""
    high, _, low = text.partition("/")
    if not low:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


async def primary_lsn(conn: AsyncConnection) -> int:
    """The primary's current WAL write position: every change committed so far is at
    or before it."""
    cur = await conn.execute("SELECT pg_current_wal_lsn()::text")
    row = await cur.fetchone()
    return parse_lsn(str(row[0])) if row else 0


@dataclass(frozen=True)
class ReplayState:
    """Where a replica's replay is, read on the replica."""

    in_recovery: bool
    replay_lsn: int
    replayed_at: dt.datetime | None  # commit time of the last transaction replayed
    now: dt.datetime


async def replay_state(conn: AsyncConnection) -> ReplayState:
    cur = await conn.execute(
        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
        " pg_last_xact_replay_timestamp(), now()"
    )
    row = await cur.fetchone()
    if row is None:  # pragma: no cover - one row, always
        raise RuntimeError("no answer from the replica")
    recovering, lsn, replayed_at, now = row
    return ReplayState(bool(recovering), parse_lsn(str(lsn)) if lsn else 0, replayed_at, now)
