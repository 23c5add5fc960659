"""Keeping the lake equal to what PostgreSQL committed, day by day.

The store is the source of truth; the lake is an export of it that a crash, a failed
write or a deleted file can leave short. A day of the lake is *equal* to the store when
it holds the same versions (the store's current rows and its history: see
:mod:`metrify.stores.reads.lake_days`): the same number, and the same content checksum
over the key, value, quality and status columns (``source`` and ``ingested_at`` are where
and when, not what). A day that differs, or that the lake outbox still names, is
*rewritten* from the store: idempotent, so a repair may be re-run at will.

``metrify lake verify|repair`` :func:`plan` the days, then :func:`compare` or
:func:`repair` them; every load, and a server at start, run :func:`catch_up` over the
outbox first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass

import polars as pl

from metrify.contracts.records import EVENT, GRID, READING, WEATHER, Contract
from metrify.stores import lake_outbox
from metrify.stores.lake import Lake, LakeConflict
from metrify.stores.pools import Connection
from metrify.stores.postgres import VERSION_TYPES
from metrify.stores.reads import lake_days

log = logging.getLogger(__name__)

#: how often a day replacement beaten by a concurrent write to that day starts over
SYNC_ATTEMPTS = 5

#: the kinds the lake holds, by name (``--kind``); meter events in their current version
KINDS: dict[str, Contract] = {c.kind: c for c in (READING, GRID, WEATHER, EVENT)}


@dataclass(frozen=True)
class DayState:
    """One day of one kind, as the store and the lake hold it."""

    kind: str
    day: dt.date
    store_rows: int
    lake_rows: int
    store_sum: str
    lake_sum: str
    #: the lake outbox still names this day (a write not yet brought into the lake)
    pending: bool = False

    @property
    def equal(self) -> bool:
        return self.store_rows == self.lake_rows and self.store_sum == self.lake_sum

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "day": self.day.isoformat(),
            "store_rows": self.store_rows,
            "lake_rows": self.lake_rows,
            "store_checksum": self.store_sum,
            "lake_checksum": self.lake_sum,
            "pending": self.pending,
        }


def _content_columns(contract: Contract) -> list[str]:
    judged = ["quality", "status"] if contract.time_series else []  # events are not judged
    return [*contract.fields, *judged]


def checksum(contract: Contract, frame: pl.DataFrame | None) -> str:
    """A digest of the versions' key, values, quality and status, independent of row and
    file order (rows are sorted first); the same for the store's and the lake's copy."""
    if frame is None or not frame.height:
        return hashlib.sha256(b"").hexdigest()[:16]
    schema = {**contract.schema, **VERSION_TYPES}
    cols = _content_columns(contract)
    typed = frame.select(
        pl.col(c).cast(schema[c]) if c in frame.columns else pl.lit(None, schema[c]).alias(c)
        for c in cols
    )
    text = typed.sort(cols, nulls_last=True).write_csv(include_header=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _state(
    conn: Connection, lake: Lake, contract: Contract, day: dt.date, pending: bool
) -> tuple[DayState, pl.DataFrame, int | None]:
    """The day compared, with the store's versions and the lake table version that was
    read (taken before the store is read: see :meth:`Lake.replace_day`)."""
    version = lake.version(contract.kind)
    stored = lake_days.versions(conn, contract, day)
    held = None if version is None else lake.read_day(contract.kind, day, version)
    state = DayState(
        contract.kind,
        day,
        stored.height,
        0 if held is None else held.height,
        checksum(contract, stored),
        checksum(contract, held),
        pending,
    )
    return state, stored, version


def plan(
    conn: Connection,
    lake: Lake,
    kinds: list[str],
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[tuple[str, dt.date]]:
    """The (kind, day)s to look at, in order: every day in the range that the store,
    the lake or the outbox holds."""
    out: list[tuple[str, dt.date]] = []
    for kind in kinds:
        contract = KINDS[kind]
        days = set(lake.days(kind))
        bounds = lake_days.span(conn, contract)
        if bounds is not None:
            first, last = max(bounds[0], since or bounds[0]), min(bounds[1], until or bounds[1])
            if first <= last:
                days.update(lake_days.day_counts(conn, contract, first, last))
        days.update(day for _, day in lake_outbox.pending(conn, kind, since, until))
        out += [
            (kind, d)
            for d in sorted(days)
            if (since is None or d >= since) and (until is None or d <= until)
        ]
    return out


def compare(conn: Connection, lake: Lake, days: list[tuple[str, dt.date]]) -> Iterator[DayState]:
    """Each planned day compared (equal days included), in the plan's order: a stretch
    of consecutive days of a kind at a time (:func:`_bulk`)."""
    pending = lake_outbox.pending(conn)
    for kind, stretch in _kind_stretches(days):
        yield from _bulk(conn, lake, KINDS[kind], stretch, pending)


def _kind_stretches(days: list[tuple[str, dt.date]]) -> Iterator[tuple[str, list[dt.date]]]:
    """Planned (kind, day)s as stretches of consecutive days of one kind, in order."""
    run: list[dt.date] = []
    kind = ""
    for k, day in days:
        if run and (k != kind or day - run[-1] != dt.timedelta(days=1) or len(run) >= _SPAN_DAYS):
            yield kind, run
            run = []
        kind = k
        run.append(day)
    if run:
        yield kind, run


def _bulk(
    conn: Connection,
    lake: Lake,
    contract: Contract,
    stretch: list[dt.date],
    pending: Container[tuple[str, dt.date]],
) -> Iterator[DayState]:
    """Consecutive days compared with one read of the lake and one of the store (a day
    at a time, each opened the lake's table and a dataset: a year took 16 s)."""
    version = lake.version(contract.kind)  # (taken before the store is read)
    stored = _by_day(lake_days.versions(conn, contract, stretch[0], stretch[-1]))
    held = None if version is None else lake.read_days(contract.kind, stretch, version)
    lake_rows = _by_day(held)
    for day in stretch:
        mine, theirs = stored.get(day), lake_rows.get(day)
        yield DayState(
            contract.kind,
            day,
            0 if mine is None else mine.height,
            0 if theirs is None else theirs.height,
            checksum(contract, mine),
            checksum(contract, theirs),
            (contract.kind, day) in pending,
        )


def sync_day(
    conn: Connection, lake: Lake, contract: Contract, day: dt.date, *, pending: bool = False
) -> DayState:
    """Compare one day and replace it from the store if it differs; the state found.

    The replacement is one commit made against the table version read before the store
    was: if another writer committed to that day meanwhile (its rows may be newer than
    what was read from the store), the commit is refused and the day compared again."""
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        state, stored, version = _state(conn, lake, contract, day, pending)
        if state.equal:
            return state
        try:
            lake.replace_day(contract.kind, day, stored, version)
            return state
        except LakeConflict as exc:
            if attempt == SYNC_ATTEMPTS:
                raise
            log.info(
                "lake day %s %s changed while being replaced (%s): again", contract.kind, day, exc
            )
    raise AssertionError("unreachable")


#: the most days :func:`sync_days` reads from the store in one query
_SPAN_DAYS = 31


def sync_days(conn: Connection, lake: Lake, contract: Contract, days: list[dt.date]) -> int:
    """:func:`sync_day` for many days (a load that found its rows unchanged: a re-sent
    file touches a year of days); how many were replaced.

    The days are compared a stretch of consecutive days at a time (one lake read, one
    store read), and only the days that differ go through :func:`sync_day`, which
    compares them again under its commit protocol. Day by day, a re-sent year of one
    household took a minute and a half; nearly all of it opening the lake's table and a
    dataset for each day."""
    replaced = 0
    planned = [(contract.kind, day) for day in sorted(set(days))]
    for _, stretch in _kind_stretches(planned):
        for state in _bulk(conn, lake, contract, stretch, ()):
            if not state.equal:
                replaced += not sync_day(conn, lake, contract, state.day).equal
    return replaced


def _by_day(frame: pl.DataFrame | None) -> dict[dt.date, pl.DataFrame]:
    """Versions split by their UTC day."""
    if frame is None or not frame.height:
        return {}
    parts = frame.with_columns(_day=pl.col("ts").dt.date()).partition_by(
        "_day", as_dict=True, include_key=False
    )
    return {key[0]: part for key, part in parts.items()}


def repair(
    conn: Connection,
    lake: Lake,
    days: list[tuple[str, dt.date]],
    progress: Callable[[DayState], None] | None = None,
) -> int:
    """Rewrite each planned day that differs from the store and clear the outbox entries
    of the days checked; how many days were rewritten."""
    # The entries are read before the store is: their rows are in what is read next.
    entries = lake_outbox.pending(conn)
    rewritten = 0
    for kind, stretch in _kind_stretches(days):
        for state in _bulk(conn, lake, KINDS[kind], stretch, entries):
            # an equal day the outbox does not name needs nothing; any other goes through
            # sync_day, which compares it again under its commit protocol
            if not state.equal or state.pending:
                state = sync_day(conn, lake, KINDS[kind], state.day, pending=state.pending)
            rewritten += not state.equal
            lake_outbox.clear(conn, entries.get((kind, state.day), []))
            if progress is not None:
                progress(state)
    return rewritten


def catch_up(conn: Connection, lake: Lake, kinds: list[str] | None = None) -> int:
    """Bring the days the outbox names into the lake (what a crash between a commit and
    its lake write left behind); how many days were rewritten. Failures are logged and
    leave the entries for the next try."""
    rewritten = 0
    for (kind, day), ids in lake_outbox.pending(conn).items():
        if (kinds is not None and kind not in kinds) or kind not in KINDS:
            continue
        try:
            rewritten += not sync_day(conn, lake, KINDS[kind], day, pending=True).equal
        except Exception as exc:  # the store holds the rows; the next catch-up retries
            log.error("lake catch-up of %s %s failed: %s", kind, day, exc)
            continue
        lake_outbox.clear(conn, ids)
    if rewritten:
        log.warning("lake catch-up rewrote %d day(s) from the store", rewritten)
    return rewritten
