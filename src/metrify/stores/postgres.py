"""Bulk, idempotent writes of contract batches into PostgreSQL.

One batch = one transaction. Fresh keys (a file load, a live stream) go straight in
with a binary ``COPY`` into the table's monthly partitions, the store's physical limit
(the writer marks the aggregates' meter-days itself, which the parent table's triggers
do for every other writer). When a
batch holds keys already stored (a re-delivery, a correction, a re-loaded file) that COPY
fails on the primary key and is rolled back to a savepoint; the batch then takes the
general path: COPY into a temporary staging table, then ``INSERT ... ON CONFLICT`` that
inserts new keys, replaces changed values (the old version goes to the history table,
with when, where from and why) and leaves unchanged re-deliveries untouched. Rejected
records go to ``quarantine`` in the same transaction, so a batch is durable all together
or not at all.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import pgpq
import polars as pl
import psycopg
from psycopg import errors, sql

from metrify.contracts.records import METER, READING, REFERENCE_FOR, Contract, MeterStatus, Quality
from metrify.ops import tracing
from metrify.settings import UnknownMeterPolicy
from metrify.stores import aggregate_days, lake_outbox, quality_daily
from metrify.stores.meter_days import meter_day_pairs
from metrify.stores.partitions import (
    Partitions,
    attach_month,
    by_partition,
    months_of,
    new_month,
    partition_start,
)

#: columns every stored time-series version carries beyond the contract's own fields.
VERSION_COLUMNS = ("quality", "status", "source", "ingested_at")
VERSION_TYPES: dict[str, pl.DataType] = {
    "quality": pl.Int32(),
    "status": pl.String(),
    "source": pl.String(),
    "ingested_at": pl.Datetime("us", "UTC"),
}
QUARANTINE_COLUMNS = ("kind", "source", "raw", "reason", "line")
#: optional column of a time-series batch: per row, a bit mask of the contract's value
#: fields the input did not carry at all (:func:`absent_mask`); null or 0: all carried
ABSENT = "absent_fields"
#: after a fast COPY failed on an existing key, this many batches take the staged upsert
DIRECT_COOLDOWN = 4

HISTORY_TABLE = {
    "readings": "reading_history",
    "grid_measurements": "grid_measurement_history",
    "weather_observations": "weather_observation_history",
}


@dataclass
class WriteResult:
    """What one batch did to the store."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    unknown_quarantined: int = 0
    #: keys of rows that were inserted or changed; None means "all rows of the batch".
    changed_keys: pl.DataFrame | None = None
    #: the same counts per id (columns id, inserted, updated, unchanged, unknown), when
    #: asked for: a run that gathers several inputs, each with its own ids (the API's
    #: grouped requests), answers each with its own
    by_id: pl.DataFrame | None = None
    #: the lake outbox entries this write added (one per day it touched), to clear once
    #: the lake holds those days (:mod:`metrify.stores.lake_outbox`)
    outbox: list[int] = field(default_factory=list)
    #: the days holding rows found unchanged: the lake is not sent those rows, so these
    #: days are compared with the store before their entries are cleared (a lake that
    #: lost them, by a crash before this fix or a deleted file, gets them back)
    unchanged_days: list[dt.date] = field(default_factory=list)
    #: for updated rows that lacked some field (see :data:`ABSENT`): their key and the
    #: stored values of the lacking fields, which the write kept; None: none such
    kept: pl.DataFrame | None = None


BY_ID_SCHEMA = {
    "id": pl.String(),
    "inserted": pl.Int64(),
    "updated": pl.Int64(),
    "unchanged": pl.Int64(),
    "unknown": pl.Int64(),
}


def _inserted_by_id(rows: pl.DataFrame, key: str) -> pl.DataFrame:
    """Per-id counts of rows that were all inserted."""
    return rows.group_by(pl.col(key).alias("id")).agg(
        inserted=pl.len().cast(pl.Int64),
        updated=pl.lit(0, pl.Int64),
        unchanged=pl.lit(0, pl.Int64),
        unknown=pl.lit(0, pl.Int64),
    )


def copy_frame(cur: psycopg.Cursor[tuple[object, ...]], table: str, frame: pl.DataFrame) -> None:
    """COPY a frame into ``table`` as CSV generated column-wise by Polars (no per-row Python)."""
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, null_value="", quote_style="necessary")
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv, NULL '')") as copy:
        copy.write(buffer.getbuffer())


def quarantine_rows(cur: psycopg.Cursor[tuple[object, ...]], frame: pl.DataFrame) -> None:
    """Store rows that never became records, once each: a re-sent bad input counts up the
    row it already has (``times_seen``, ``last_received_at``) instead of adding a copy.

    The rows go through a session-local staging table, so the batch stays one COPY, and
    are grouped there first: one statement may not update the same quarantine row twice.
    """
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS quarantine_in"
        " (kind text, source text, raw text, reason text, line integer)"
    )
    copy_frame(cur, "quarantine_in", frame.select(QUARANTINE_COLUMNS))
    cur.execute(
        """
        INSERT INTO quarantine AS q (kind, source, raw, reason, line, times_seen)
        SELECT kind, source, raw, reason, line, count(*) FROM quarantine_in
        GROUP BY kind, source, raw, reason, line
        ON CONFLICT (fingerprint) DO UPDATE
        SET times_seen = q.times_seen + excluded.times_seen, last_received_at = now()
        """
    )
    cur.execute("DELETE FROM quarantine_in")


def copy_binary(cur: psycopg.Cursor[tuple[object, ...]], table: str, frame: pl.DataFrame) -> None:
    """COPY a frame into ``table`` in PostgreSQL's binary format, encoded from Arrow by
    pgpq: nothing to format on our side nor to parse on the server's (about twice the
    rate of CSV for readings). The frame's types must be the table's: the binary format
    carries no type names, the server reads each field as its column's type."""
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    arrow = frame.to_arrow()
    encoder = pgpq.ArrowToPostgresBinaryEncoder(arrow.schema)
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(encoder.write_header())
        for batch in arrow.to_batches():
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())


def _counts(
    rows: pl.DataFrame, zones: pl.DataFrame | None
) -> tuple[tuple[str, str], list[str] | None]:
    """Fresh readings' meter-day marks and daily count increments (see
    :func:`quality_daily.increments`; None when too thin to count), as parameters."""
    return meter_day_pairs(rows), None if zones is None else quality_daily.increments(rows, zones)


def id_list(ids: pl.Series) -> list[str]:
    """``ids`` as the array parameter of ``= ANY(%s)`` or ``unnest(%s::text[])``.

    A lookup by an array is answered from the primary key. A temp table of the ids has
    no statistics, so the planner hash-joined it against a sequential scan of every
    partition in the range: a week of the whole fleet read to find ten meters' rows."""
    return ids.drop_nulls().unique().to_list()


def copy_out(
    cur: psycopg.Cursor[tuple[object, ...]],
    query: str,
    columns: list[str],
    params: Sequence[object] | Mapping[str, object] | None = None,
) -> pl.DataFrame | None:
    """The rows of ``query`` as string columns, streamed out with COPY as CSV and parsed
    by Polars (row-by-row fetching would be the slowest part of a batch); None when the
    query returns nothing. Callers cast the columns they need."""
    buffer = io.BytesIO()
    with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    if not buffer.tell():
        return None
    buffer.seek(0)
    return pl.read_csv(buffer, has_header=False, new_columns=columns, infer_schema=False)


#: the meter attributes a load may declare for the meters it registers (see
#: :func:`_register`)
DECLARED: Final = ("timezone", "commodity", "unit")


def _register(
    cur: psycopg.Cursor[tuple[object, ...]],
    contract: Contract,
    ids_sql: str,
    params: Sequence[object] = (),
    declared: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Add the ids ``ids_sql`` selects to the contract's reference table as unregistered
    (a meter known by its readings; a reference file later fills it in).

    ``declared``: what the load declared of a meter (``--tz``, ``--set commodity=``,
    ``unit``: :data:`DECLARED`), kept on the new meter's row: its daily scores count its
    own local days from the start, and a gas meter stays gas, not electricity until a
    meters file comes. A meter an earlier load registered takes it too
    (:func:`_redeclare`)."""
    ref = REFERENCE_FOR[contract.kind]
    if declared and ref is METER:
        # one insert per set of attributes declared (a load declares the same of all its
        # meters), so an attribute nobody declared keeps the table's default
        groups: dict[tuple[str, ...], list[str]] = {}
        for ident, given in declared.items():
            groups.setdefault(tuple(c for c in DECLARED if c in given), []).append(ident)
        for names, ids in groups.items():
            values = [[declared[i][c] for i in ids] for c in names]
            cur.execute(
                f"INSERT INTO {ref.table} (meter_id, status, {', '.join(names)})"
                f" SELECT ids.id, %s, {', '.join(f'd.{c}' for c in names)}"
                f" FROM ({ids_sql}) AS ids(id) JOIN unnest(%s::text[]"
                f"{', %s::text[]' * len(names)}) AS d(id, {', '.join(names)})"
                " ON d.id = ids.id ON CONFLICT DO NOTHING",
                (MeterStatus.UNREGISTERED.value, *params, ids, *values),
            )
            _redeclare(cur, names, ids, values)
        # and the ids with nothing declared, as below
        ids_sql = f"SELECT * FROM ({ids_sql}) AS ids(id) WHERE NOT (id = ANY(%s))"
        params = (*params, list(declared))
    cur.execute(
        f"INSERT INTO {ref.table} ({contract.key[0]}, status) SELECT ids.*, %s"
        f" FROM ({ids_sql}) AS ids ON CONFLICT DO NOTHING",
        (MeterStatus.UNREGISTERED.value, *params),
    )


def _redeclare(
    cur: psycopg.Cursor[tuple[object, ...]],
    names: Sequence[str],
    ids: list[str],
    values: list[list[str]],
) -> None:
    """Give the meters ``ids`` that an earlier load registered the ``names`` attributes
    this load declares (``values``, one list per name), where they differ.

    Such a meter's row holds what its first load said or the table's defaults: a gas
    meter first loaded undeclared is an electricity meter in kWh, and loaded again with
    ``--set commodity=gas --set unit=m3`` it must become gas, or the second load is
    judged and converted as the first was. A meter with reference data (any status but
    unregistered) keeps it. A changed zone re-derives its daily scores
    (:func:`quality_daily.rezone`), as a meters file's does."""
    sets = ", ".join(f"{c} = d.{c}" for c in names)
    differs = " OR ".join(f"m.{c} IS DISTINCT FROM d.{c}" for c in names)
    # ``o``, the same table joined again, holds the rows as they were before the update
    cur.execute(
        f"UPDATE meters m SET {sets}, updated_at = now()"
        f" FROM unnest(%s::text[]{', %s::text[]' * len(names)})"
        f" AS d(id, {', '.join(names)}), meters o"
        f" WHERE m.meter_id = d.id AND o.meter_id = m.meter_id AND m.status = %s"
        f" AND ({differs})"
        " RETURNING m.meter_id, o.timezone IS DISTINCT FROM m.timezone",
        (ids, *values, MeterStatus.UNREGISTERED.value),
    )
    moved = [str(row[0]) for row in cur.fetchall() if row[1]]
    if moved:
        selected = sql.SQL("SELECT unnest({}::text[])").format(sql.Literal(moved))
        quality_daily.rezone(cur, selected.as_string(cur))


def register_in_region(
    conn: psycopg.Connection[tuple[object, ...]], ids: list[str], region: str
) -> int:
    """Register the ``ids`` not yet known as unregistered meters of ``region``; returns
    how many were new. A region-scoped sender's first readings of a new meter must put
    it in the sender's region: registered without one, the sender's own next request
    for it would be refused as outside its regions."""
    cur = conn.execute(
        "INSERT INTO meters (meter_id, status, region) SELECT unnest(%s::text[]), %s, %s"
        " ON CONFLICT DO NOTHING",
        (ids, MeterStatus.UNREGISTERED.value, region),
    )
    return cur.rowcount


def absent_mask(contract: Contract, present: Collection[str]) -> int:
    """The :data:`ABSENT` bits of the value fields not in ``present``: bit ``i`` stands
    for ``contract.value_fields[i]``.

    A field the input does not carry (not mapped, no such column, no record of a JSON
    batch has it) is unknown, not null: a re-delivery without it keeps the stored value.
    An empty cell of a carried field is a value (null) and stays a correction."""
    return sum(1 << i for i, name in enumerate(contract.value_fields) if name not in present)


def absent_fields(contract: Contract, frame: pl.DataFrame) -> dict[str, int]:
    """The value fields some row of ``frame`` lacks (by its :data:`ABSENT` mask), with
    their bit; empty when the batch carries every field (then the upsert is as it
    always was)."""
    if ABSENT not in frame.columns or not frame.height:
        return {}
    any_bits = 0
    for value in frame.get_column(ABSENT).drop_nulls().unique().to_list():
        any_bits |= int(value)
    return {name: 1 << i for i, name in enumerate(contract.value_fields) if any_bits & (1 << i)}


def _new_value(name: str, old: str, new: str, absent: Mapping[str, int]) -> str:
    """SQL: the value ``name`` takes in the version ``new`` of ``old``: the stored one
    where the row did not carry the field (:data:`ABSENT`), else the delivered one."""
    bit = absent.get(name)
    if bit is None:
        return f"{new}.{name}"
    lacks = f"coalesce({new}.{ABSENT}, 0) & {bit} <> 0"
    return f"CASE WHEN {lacks} THEN {old}.{name} ELSE {new}.{name} END"


def _differs(values: list[str], old: str, new: str, absent: Mapping[str, int] | None = None) -> str:
    """SQL: the row ``new`` is another version of ``old``.

    A version is its values, whether it is a real reading or a gap row, and whether it
    is an estimate: the same record delivered again changes nothing, even when VEE
    judged it otherwise this time (its verdict depends on the neighbours a batch
    happened to hold, and a re-delivery after a crash is cut differently) or a detector
    has moved on. Other flags change only through an operator's edit. The estimate bit
    is the record's own where a source set it (a provider's substitute, an interval
    apportioned between register reads): the actual read that replaces an estimate of
    the same value is a new version, or the reading would stay marked estimated. A
    field the row does not carry (``absent``: field -> its :data:`ABSENT` bit) is
    compared as the stored value, so it never differs.
    """
    gap, edited, anomaly = int(Quality.MISSING), int(Quality.EDITED), int(Quality.ANOMALY)
    own = gap | int(Quality.ESTIMATED)
    record = [*values, f"quality & {own}"]
    verdict = [f"quality & ~{anomaly}", "status"]

    def row(alias: str, parts: list[str]) -> str:
        return ", ".join(f"{alias}.{p}" for p in parts)

    new_record = ", ".join(
        [*(_new_value(v, old, new, absent or {}) for v in values), f"{new}.quality & {own}"]
    )
    return (
        f"(({row(old, record)}) IS DISTINCT FROM ({new_record})"
        f" OR ({new}.quality & {edited} <> 0"
        f" AND ({row(old, verdict)}) IS DISTINCT FROM ({row(new, verdict)})))"
    )


class PostgresStore:
    """Writes contract batches to one PostgreSQL database over one connection."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self.partitions = Partitions()
        self._staged: set[str] = set()
        #: each time-series table's columns, in order (see :meth:`_stage`)
        self._stored_columns: dict[str, list[str]] = {}
        #: batches left to send straight to the staged path after a failed fast COPY
        self._direct_cooldown = 0

    def ensure_partitions(self, contract: Contract, ts: pl.Series) -> None:
        """Create the monthly partitions ``ts`` falls in now, in their own transaction:
        a caller about to write inside a longer transaction (an API request) calls this
        first, since creating a partition there would lock the parent table for all of
        that transaction."""
        self.partitions.ensure(self.conn, contract.table, months_of(ts.drop_nulls()))

    def rolled_back(self) -> None:
        """Forget what a rolled-back outer transaction undid: the staging tables it
        created, the partitions it made on this connection."""
        self._staged.clear()
        self.partitions = Partitions()

    # --- time series -----------------------------------------------------------------

    def _stage(self, contract: Contract, columns: list[str]) -> str:
        name = f"stage_{contract.table}"
        if name not in self._staged:
            self.conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {name} "
                f"(LIKE {contract.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            # the fields each staged row did not carry (see ABSENT); never stored, and
            # left out of the rows quarantined from the stage (their raw text is the
            # table's row, as before the column existed)
            self.conn.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {ABSENT} integer")
            if contract.table not in self._stored_columns:
                found = self.conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    (contract.table,),
                ).fetchall()
                self._stored_columns[contract.table] = [str(row[0]) for row in found]
            self.conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS changed_{contract.table} "
                f"(id text, ts timestamptz, inserted boolean) ON COMMIT DELETE ROWS"
            )
            self._staged.add(name)
        return name

    @tracing.db("write_series")
    def write_series(
        self,
        contract: Contract,
        frame: pl.DataFrame,
        *,
        unknown: UnknownMeterPolicy = UnknownMeterPolicy.REGISTER,
        reason: str = "corrected",
        quarantine: pl.DataFrame | None = None,
        likely_stored: pl.DataFrame | None = None,
        by_id: bool = False,
        declared: Mapping[str, Mapping[str, str]] | None = None,
        outbox: bool = False,
    ) -> WriteResult:
        """Upsert one batch of a time-series contract (plus its quarantine rows) atomically.

        ``frame`` holds the contract fields plus ``quality``, ``status``, ``source`` and
        ``ingested_at``, with at most one row per key (the pipeline deduplicates).
        ``likely_stored``: keys the caller knows may exist already; those rows take the
        upsert and the rest the fast COPY, so one repeated key does not send a whole
        batch down the slow path.
        ``by_id``: also count per id (:attr:`WriteResult.by_id`).
        ``declared``: what the load declared of ids this write may register (see
        :func:`_register`).
        ``outbox``: note the days written in the lake outbox (a lake follows this store).

        An optional :data:`ABSENT` column marks, per row, the value fields its input did
        not carry: a stored row keeps its value of those (they are unknown, not null),
        so a re-delivery that repeats only the fields it carries is unchanged, and a
        correction of a carried field keeps the others. :attr:`WriteResult.kept` then
        gives the stored values of the updated rows, for the lake.
        """
        result = WriteResult()
        table, key_id = contract.table, contract.key[0]
        nested = self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        bulk: list[dt.date] = []
        if frame.height:
            months = months_of(frame["ts"])
            if not nested and self._direct_open(unknown):
                bulk = self._bulk_months(table, frame, likely_stored)
            self.partitions.ensure(self.conn, table, [m for m in months if m not in bulk])
        stage = self._stage(contract, frame.columns)
        if nested:  # ON COMMIT DELETE ROWS has not emptied them since the last batch
            self.conn.execute(f"DELETE FROM {stage}")
            self.conn.execute(f"DELETE FROM changed_{table}")
        values = [c for c in contract.fields if c not in contract.key]
        cols = [*contract.fields, *VERSION_COLUMNS]
        col_list = ", ".join(cols)
        missing, estimated = int(Quality.MISSING), int(Quality.ESTIMATED)
        absent = absent_fields(contract, frame)
        changed_old = _differs(values, "r", "s", absent)
        changed_tgt = _differs(values, table, "s", absent)
        updates = ", ".join(
            f"{c} = {_new_value(c, table, 's', absent)}" for c in cols if c not in contract.key
        )
        history = HISTORY_TABLE[table]
        # A gap row (or its estimate) never replaces a real reading already stored.
        guard_old = f"NOT (s.quality & {missing} <> 0 AND r.quality & {missing} = 0)"
        guard_tgt = f"NOT (s.quality & {missing} <> 0 AND {table}.quality & {missing} = 0)"
        types = {**contract.schema, **VERSION_TYPES}
        with self.conn.transaction(), self.conn.cursor() as cur:
            if frame.height:
                days = frame["ts"].dt.date().unique().drop_nulls().sort().to_list()
                if outbox:
                    result.outbox = lake_outbox.add(cur, contract.kind, days)
                rows = frame.select(pl.col(c).cast(types[c]) for c in cols)
                if absent:  # the mask goes to the stage only (a fresh row stores nulls)
                    mask = frame.get_column(ABSENT).cast(pl.Int32)
                    rows = rows.with_columns(mask.alias(ABSENT))
                keys = [key_id, "ts"]
                fresh, maybe = rows, rows.clear()
                if likely_stored is not None and likely_stored.height:
                    fresh = rows.join(likely_stored, on=keys, how="anti")
                    maybe = rows.join(likely_stored, on=keys, how="semi")
                copied = 0
                ids = id_list(fresh[key_id]) if fresh.height else []
                if ids and self._copy_new(
                    cur, contract, fresh.drop(ABSENT, strict=False), ids, unknown, declared, bulk
                ):
                    copied = fresh.height
                    rows = maybe
                elif bulk:  # the staged path writes through the parent: months it can route to
                    self.partitions.ensure(self.conn, table, bulk)
                    bulk = []
                if by_id:
                    result.by_id = _inserted_by_id(fresh if copied else fresh.clear(), key_id)
                if not rows.height:
                    result.inserted = copied
                    if quarantine is not None and quarantine.height:
                        quarantine_rows(cur, quarantine)
                    return result
                copy_binary(cur, stage, rows)
                unknowns = self._unknown_ids(cur, contract, stage, unknown, declared)
                result.unknown_quarantined = sum(unknowns.values())
                # New keys first: a plain insert that skips existing keys. For fresh data
                # (the common case) that is all there is to do.
                cur.execute(
                    f"""
                    WITH ins AS (
                        INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage}
                        ON CONFLICT ({key_id}, ts) DO NOTHING
                        RETURNING {key_id}, ts
                    )
                    INSERT INTO changed_{table} SELECT {key_id}, ts, true FROM ins
                    """
                )
                inserted = max(cur.rowcount, 0)
                cur.execute(f"SELECT count(*) FROM {stage}")
                row = cur.fetchone()
                assert row is not None
                staged = int(row[0])  # type: ignore[call-overload]
                updated = 0
                if inserted < staged:
                    # Existing keys: replace changed values, keeping the old version.
                    cur.execute(
                        f"""
                        WITH old AS (
                            SELECT r.*, s.source AS new_source, s.quality AS new_quality
                            FROM {table} r JOIN {stage} s ON r.{key_id} = s.{key_id} AND r.ts = s.ts
                            WHERE {changed_old} AND {guard_old}
                        ), hist AS (
                            INSERT INTO {history} ({col_list}, replaced_by, reason)
                            SELECT {col_list}, new_source,
                                   CASE WHEN quality & {estimated} <> 0
                                        AND new_quality & {missing} = 0
                                        THEN 'real reading replaced estimate' ELSE %s END
                            FROM old
                        ), upd AS (
                            UPDATE {table} SET {updates} FROM {stage} s
                            WHERE {table}.{key_id} = s.{key_id} AND {table}.ts = s.ts
                              AND {changed_tgt} AND {guard_tgt}
                            RETURNING {table}.{key_id}, {table}.ts
                        )
                        INSERT INTO changed_{table} SELECT {key_id}, ts, false FROM upd
                        """,
                        (reason,),
                    )
                    updated = max(cur.rowcount, 0)
                    if absent and updated:
                        result.kept = self._kept(cur, contract, stage, list(absent))
                result.inserted, result.updated = copied + inserted, updated
                result.unchanged = staged - inserted - updated
                if by_id:
                    result.by_id = self._staged_by_id(cur, contract, stage, unknowns, result.by_id)
                if contract is READING and inserted + updated:
                    # Their daily scores are now stale: marked in this transaction, so
                    # the refresh (refresh_quality_daily) can wait without losing them.
                    cur.execute(
                        "INSERT INTO quality_dirty (meter_id, day)"
                        " SELECT DISTINCT id, (ts AT TIME ZONE 'UTC')::date"
                        " FROM changed_readings ON CONFLICT DO NOTHING"
                    )
                if copied + inserted + updated != frame.height:
                    cur.execute(f"SELECT id, ts FROM changed_{table}")
                    result.changed_keys = pl.concat(
                        [
                            fresh.select(keys) if copied else rows.select(keys).clear(),
                            pl.DataFrame(
                                cur.fetchall(),
                                schema={key_id: pl.String(), "ts": contract.schema["ts"]},
                                orient="row",
                            ),
                        ]
                    )
                if outbox and result.unchanged:
                    cur.execute(
                        f"SELECT DISTINCT (s.ts AT TIME ZONE 'UTC')::date FROM {stage} s"
                        f" WHERE NOT EXISTS (SELECT 1 FROM changed_{table} c"
                        f" WHERE c.id = s.{key_id} AND c.ts = s.ts) ORDER BY 1"
                    )
                    result.unchanged_days = [row[0] for row in cur.fetchall()]  # type: ignore[misc]
            if quarantine is not None and quarantine.height:
                quarantine_rows(cur, quarantine)
        self.partitions.known(table, bulk)  # attached, and now committed
        return result

    def _direct_open(self, unknown: UnknownMeterPolicy) -> bool:
        """Whether a write may take the fast path of :meth:`_copy_new` (without
        spending a cooldown batch, as trying it does)."""
        return unknown is UnknownMeterPolicy.REGISTER and self._direct_cooldown == 0

    def _bulk_months(
        self, table: str, frame: pl.DataFrame, likely_stored: pl.DataFrame | None
    ) -> list[dt.date]:
        """The months of ``frame`` its fast path loads bare and attaches (see
        :meth:`Partitions.bulk_months`): not one the caller expects stored rows in."""
        bulk = self.partitions.bulk_months(self.conn, table, frame["ts"])
        if bulk and likely_stored is not None and likely_stored.height:
            touched = set(months_of(likely_stored["ts"]))
            bulk = [m for m in bulk if m not in touched]
        return bulk

    def _copy_new(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        contract: Contract,
        rows: pl.DataFrame,
        ids: list[str],
        unknown: UnknownMeterPolicy,
        declared: Mapping[str, Mapping[str, str]] | None = None,
        bulk: Collection[dt.date] = (),
    ) -> bool:
        """Try the fast path: COPY the batch straight into the table, all keys new.

        Returns False (with nothing written) when the batch must take the staged upsert:
        a key already stored, or unknown ids to quarantine rather than register. After a
        failed try the next few batches go straight to the staged path, since re-sent
        data (a replayed file, a Kafka re-delivery) tends to come in runs.

        ``bulk``: months with no partition yet, whose rows go into a bare table that is
        then attached as the month's partition (:func:`~metrify.stores.partitions.new_month`).
        Should another writer create one of them meanwhile, nothing is written either.
        """
        if unknown is not UnknownMeterPolicy.REGISTER:
            return False
        if self._direct_cooldown > 0:
            self._direct_cooldown -= 1
            return False
        _register(cur, contract, "SELECT unnest(%s::text[])", (ids,), declared)
        # A field the batch carries for no row (a meter sends a few of the dozen optional
        # ones) is left out of the COPY: the table's default for it is NULL, and encoding
        # and sending a null per row and field was half of the writer's own work.
        rows = rows.select(
            c
            for c in rows.columns
            if c in contract.key
            or c in VERSION_COLUMNS
            or rows.get_column(c).null_count() < rows.height
        )
        # The readings' marks and daily counts are found on a thread of their own while
        # the server takes the rows (Polars releases the GIL): on the writer's thread
        # they were a tenth of a year's load, with the server waiting for them.
        aside = ThreadPoolExecutor(1, thread_name_prefix="write-counts")
        counted: Future[tuple[tuple[str, str], list[str] | None]] | None = None
        if contract is READING:
            zones = quality_daily.fresh_zones(cur, rows, ids)
            counted = aside.submit(_counts, rows, zones)
        try:
            with self.conn.transaction():  # a savepoint: a failed COPY leaves the rest
                # into the monthly partitions themselves (write_series ensured them, but
                # for the bulk months), past the parent's statement triggers
                for partition, part in by_partition(contract.table, rows):
                    month = partition_start(part["ts"][0]).date()
                    bare = new_month(cur, contract.table, month) if month in bulk else None
                    if bare is None:
                        copy_binary(cur, partition, part)
                    else:
                        copy_binary(cur, bare, part)
                        attach_month(cur, contract.table, month)
        except errors.UniqueViolation:
            self._direct_cooldown = DIRECT_COOLDOWN
            return False
        except errors.DuplicateTable:  # a bulk month's partition was made meanwhile
            return False
        finally:
            aside.shutdown(wait=True)
        if counted is not None:
            pairs, increments = counted.result()
            # what the parent's trigger would have marked
            aggregate_days.mark_rows(cur, rows, pairs)
            # (a thin write's days are marked stale with the same pairs: a stream's
            # micro-batches are mostly thin, and the pairs were found twice for them)
            quality_daily.add_fresh(cur, rows, increments, pairs)
        return True

    def _kept(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        contract: Contract,
        stage: str,
        fields: list[str],
    ) -> pl.DataFrame:
        """The stored ``fields`` of the rows this batch updated that lacked some field:
        the batch's own rows hold nulls there, which the lake must not copy."""
        table, key = contract.table, contract.key[0]
        cur.execute(
            f"SELECT t.{key}, t.ts, {', '.join(f't.{f}' for f in fields)}"
            f" FROM changed_{table} c JOIN {table} t ON t.{key} = c.id AND t.ts = c.ts"
            f" JOIN {stage} s ON s.{key} = c.id AND s.ts = c.ts"
            f" WHERE NOT c.inserted AND coalesce(s.{ABSENT}, 0) <> 0"
        )
        schema = {c: contract.schema[c] for c in [key, "ts", *fields]}
        return pl.DataFrame(cur.fetchall(), schema=schema, orient="row")

    def _staged_by_id(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        contract: Contract,
        stage: str,
        unknowns: dict[str, int],
        copied: pl.DataFrame | None,
    ) -> pl.DataFrame:
        """Per-id counts of a staged upsert (the stage holds what was not
        quarantined; the changed-keys table, what was inserted or updated), added to
        those of the rows copied before it."""
        key = contract.key[0]
        cur.execute(
            f"""
            SELECT s.{key}, count(c.id) FILTER (WHERE c.inserted),
                   count(c.id) FILTER (WHERE NOT c.inserted), count(*) - count(c.id)
            FROM {stage} s LEFT JOIN changed_{contract.table} c ON c.id = s.{key} AND c.ts = s.ts
            GROUP BY s.{key}
            """
        )
        staged = pl.DataFrame(
            [(*row, 0) for row in cur.fetchall()], schema=BY_ID_SCHEMA, orient="row"
        )
        gone = pl.DataFrame(
            [(ident, 0, 0, 0, n) for ident, n in unknowns.items()],
            schema=BY_ID_SCHEMA,
            orient="row",
        )
        parts = [staged, gone] if copied is None else [copied, staged, gone]
        return pl.concat(parts).group_by("id").sum()

    def _unknown_ids(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        contract: Contract,
        stage: str,
        policy: UnknownMeterPolicy,
        declared: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, int]:
        """Register ids the reference table lacks, or move their rows to quarantine
        (how many, per id)."""
        ref = REFERENCE_FOR[contract.kind]
        key = contract.key[0]
        if policy is UnknownMeterPolicy.REGISTER:
            _register(cur, contract, f"SELECT DISTINCT {key} FROM {stage}", (), declared)
            return {}
        cur.execute(
            f"""
            WITH gone AS (
                DELETE FROM {stage} s
                WHERE NOT EXISTS (SELECT 1 FROM {ref.table} m WHERE m.{key} = s.{key})
                RETURNING {", ".join(f"s.{c}" for c in self._stored_columns[contract.table])}
            ), moved AS (
                INSERT INTO quarantine AS q (kind, source, raw, reason, times_seen)
                SELECT %s, source, raw, %s, count(*)
                FROM (SELECT source, row_to_json(gone)::text AS raw FROM gone) g
                GROUP BY source, raw
                ON CONFLICT (fingerprint) DO UPDATE
                SET times_seen = q.times_seen + excluded.times_seen, last_received_at = now()
            )
            SELECT {key}, count(*) FROM gone GROUP BY {key}
            """,
            (contract.kind, f"unknown {key}"),
        )
        return {str(ident): int(count) for ident, count in cur.fetchall()}  # type: ignore[call-overload]

    # --- history for VEE ----------------------------------------------------------------

    @tracing.db("load_context")
    def load_context(
        self, contract: Contract, ids: pl.Series, since: dt.datetime, until: dt.datetime
    ) -> pl.DataFrame:
        """Stored rows of these ids with ``since <= ts <= until`` (contract + version fields).

        Streamed out with COPY as CSV and parsed by Polars: history can be millions of
        rows, which row-by-row fetching would make the slowest part of a batch.
        """
        key = contract.key[0]
        cols = [*contract.fields, "quality", "status", "source"]
        schema = {
            **contract.schema,
            "quality": pl.Int32(),
            "status": pl.String(),
            "source": pl.String(),
        }
        # times travel as epoch microseconds: parsing zoned text cost more than the query
        out = [
            "(extract(epoch FROM t.ts) * 1000000)::bigint" if c == "ts" else f"t.{c}" for c in cols
        ]
        with self.conn.transaction(), self.conn.cursor() as cur:
            query = (
                f"SELECT {', '.join(out)} FROM {contract.table} t"
                f" WHERE t.{key} = ANY(%s) AND t.ts >= %s AND t.ts <= %s"
            )
            raw = copy_out(cur, query, cols, (id_list(ids), since, until))
        if raw is None:
            return pl.DataFrame(schema=schema)
        return raw.with_columns(
            pl.from_epoch(pl.col("ts").cast(pl.Int64), "us").dt.replace_time_zone("UTC"),
            *[pl.col(c).cast(t) for c, t in schema.items() if c != "ts" and t != pl.String],
        ).select(cols)

    @tracing.db("last_register_reads")
    def last_register_reads(self, firsts: pl.DataFrame) -> pl.DataFrame:
        """Each meter's last stored register read at or before a time: ``firsts`` has
        ``meter_id`` and ``until`` (a load's first read of the meter); the answer has
        ``meter_id``, ``t`` (the end of the stored interval, where its register was
        read) and ``reg`` (kWh), for the meters that have one. A load that derives
        interval energy from registers starts each meter from it, so the interval
        between two loads is derived too; asking only before the load's own first read
        keeps a repeated load deriving exactly what it derived the first time."""
        schema = {"meter_id": pl.String(), "t": pl.Datetime("us", "UTC"), "reg": pl.Float64()}
        if not firsts.height:
            return pl.DataFrame(schema=schema)
        rows = self.conn.execute(
            "SELECT q.meter_id, r.ts + make_interval(secs => r.interval_s), r.register_kwh"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS q(meter_id, until)"
            " CROSS JOIN LATERAL ("
            "   SELECT ts, interval_s, register_kwh FROM readings r"
            "   WHERE r.meter_id = q.meter_id AND r.ts < q.until"
            "     AND r.register_kwh IS NOT NULL AND r.status <> 'rejected'"
            "     AND r.ts + make_interval(secs => r.interval_s) <= q.until"
            "   ORDER BY r.ts DESC LIMIT 1) r",
            (firsts["meter_id"].to_list(), firsts["until"].to_list()),
        ).fetchall()
        return pl.DataFrame(rows, schema=schema, orient="row")

    @tracing.db("meter_attributes")
    def meter_attributes(self, ids: pl.Series) -> pl.DataFrame:
        """What VEE and the detectors need of these meters (absent meters: no row):
        limits, state, time zone, weather station, region, commodity and unit, gas
        conversion values, location, and ``has_pv`` (registered
        generation; true for a meter auto-registered from its readings, whose
        reference data nobody has described)."""
        names = ["meter_id", "status", "max_kw", "rated_current_a", "register_digits"]
        names += ["timezone", "nominal_voltage_v", "station_id", "region", "commodity", "unit"]
        names += ["calorific_value_mj_m3", "correction_factor", "latitude", "longitude"]
        names += ["has_pv"]
        schema = {c: METER.schema[c] for c in names}
        cols = [f"m.{c}" for c in list(schema)[:-1]]
        rows = self.conn.execute(
            f"SELECT {', '.join(cols)}, coalesce(m.has_pv, m.status = 'unregistered')"
            " FROM meters m WHERE m.meter_id = ANY(%s)",
            (id_list(ids),),
        ).fetchall()
        return pl.DataFrame(rows, schema=schema, orient="row")

    @tracing.db("refresh_quality_daily")
    def refresh_quality_daily(self) -> int:
        """Recompute the daily quality scores of every meter-day marked stale (see
        :mod:`metrify.stores.quality_daily`); how many daily rows were written."""
        return quality_daily.refresh(self.conn)

    # --- reference data ----------------------------------------------------------------

    @tracing.db("write_reference")
    def write_reference(
        self, contract: Contract, frame: pl.DataFrame, *, quarantine: pl.DataFrame | None = None
    ) -> WriteResult:
        """Upsert reference rows: the columns the file gave replace the stored ones."""
        result = WriteResult()
        key = contract.key[0]
        given = [c for c in frame.columns if c in contract.schema]
        with self.conn.transaction(), self.conn.cursor() as cur:
            if frame.height:
                stage = f"stage_{contract.table}"
                cur.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {contract.table}"
                    f" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                copy_frame(cur, stage, frame.select(given))
                rezoned = contract is METER and "timezone" in given
                if rezoned:
                    # Meters whose zone this write changes: their daily scores counted the
                    # old zone's local days and are derived again below.
                    cur.execute(
                        "CREATE TEMP TABLE IF NOT EXISTS rezoned_meters (meter_id text)"
                        " ON COMMIT DELETE ROWS"
                    )
                    cur.execute(
                        "INSERT INTO rezoned_meters SELECT s.meter_id"
                        f" FROM {stage} s JOIN meters m USING (meter_id)"
                        " WHERE m.timezone IS DISTINCT FROM s.timezone"
                    )
                sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in given if c != key)
                tgt = ", ".join(f"{contract.table}.{c}" for c in given if c != key)
                exc = ", ".join(f"EXCLUDED.{c}" for c in given if c != key)
                cols = ", ".join(given)
                if "status" not in given:
                    # A file that lists a meter registers it: 'unregistered' becomes 'active'.
                    promoted = (
                        f"CASE WHEN {contract.table}.status = 'unregistered'"
                        f" THEN 'active' ELSE {contract.table}.status END"
                    )
                    sets = f"{sets}, status = {promoted}" if sets else f"status = {promoted}"
                    tgt = f"{tgt}, {contract.table}.status" if tgt else f"{contract.table}.status"
                    exc = f"{exc}, {promoted}" if exc else promoted
                action = (
                    f"DO UPDATE SET {sets}, updated_at = now()"
                    f" WHERE ({tgt}) IS DISTINCT FROM ({exc})"
                )
                cur.execute(
                    f"""
                    WITH up AS (
                        INSERT INTO {contract.table} ({cols}) SELECT {cols} FROM {stage}
                        ON CONFLICT ({key}) {action}
                        RETURNING (xmax = 0) AS inserted
                    )
                    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
                    FROM up
                    """
                )
                row = cur.fetchone()
                assert row is not None
                result.inserted, result.updated = int(row[0]), int(row[1])  # type: ignore[call-overload]
                result.unchanged = frame.height - result.inserted - result.updated
                if rezoned:
                    quality_daily.rezone(cur, "SELECT meter_id FROM rezoned_meters")
            if quarantine is not None and quarantine.height:
                quarantine_rows(cur, quarantine)
        return result

    @tracing.db("write_quarantine")
    def write_quarantine(self, quarantine: pl.DataFrame) -> None:
        """Store rows that never became records (undecodable lines, missing keys)."""
        if not quarantine.height:
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            quarantine_rows(cur, quarantine)
