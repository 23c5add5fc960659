"""Bulk, idempotent writes of contract batches into PostgreSQL.

One batch = one transaction: COPY into a temporary staging table, then one
``INSERT ... ON CONFLICT`` that inserts new keys, replaces changed values (the old
version goes to the history table, with when, where from and why) and leaves unchanged
re-deliveries untouched. Rejected records go to ``quarantine`` in the same transaction,
so a batch is durable all together or not at all.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import polars as pl
import psycopg

from metrify.config import UnknownMeterPolicy
from metrify.records import REFERENCE_FOR, Contract, MeterStatus
from metrify.stores.partitions import Partitions, months_of

#: columns every stored time-series version carries beyond the contract's own fields.
VERSION_COLUMNS = ("quality", "status", "source", "ingested_at")
QUARANTINE_COLUMNS = ("kind", "source", "raw", "reason", "line")

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


def _copy_frame(cur: psycopg.Cursor[tuple[object, ...]], table: str, frame: pl.DataFrame) -> None:
    """COPY a frame into ``table`` as CSV generated column-wise by Polars (no per-row Python)."""
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, null_value="", quote_style="necessary")
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv, NULL '')") as copy:
        copy.write(buffer.getbuffer())


class PostgresStore:
    """Writes contract batches to one PostgreSQL database over one connection."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self.partitions = Partitions()
        self._staged: set[str] = set()

    # --- time series -----------------------------------------------------------------

    def _stage(self, contract: Contract, columns: list[str]) -> str:
        name = f"stage_{contract.table}"
        if name not in self._staged:
            self.conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {name} "
                f"(LIKE {contract.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            self.conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS changed_{contract.table} "
                f"(id text, ts timestamptz, inserted boolean) ON COMMIT DELETE ROWS"
            )
            self._staged.add(name)
        return name

    def write_series(
        self,
        contract: Contract,
        frame: pl.DataFrame,
        *,
        unknown: UnknownMeterPolicy = UnknownMeterPolicy.REGISTER,
        reason: str = "corrected",
        quarantine: pl.DataFrame | None = None,
    ) -> WriteResult:
        """Upsert one batch of a time-series contract (plus its quarantine rows) atomically.

        ``frame`` holds the contract fields plus ``quality``, ``status``, ``source`` and
        ``ingested_at``, with at most one row per key (the pipeline deduplicates).
        """
        result = WriteResult()
        table, key_id = contract.table, contract.key[0]
        if frame.height:
            self.partitions.ensure(self.conn, table, months_of(frame["ts"]))
        stage = self._stage(contract, frame.columns)
        values = [c for c in contract.fields if c not in contract.key]
        compared = [*values, "quality", "status"]
        cols = [*contract.fields, *VERSION_COLUMNS]
        col_list = ", ".join(cols)
        old_tuple = ", ".join(f"r.{c}" for c in compared)
        new_tuple = ", ".join(f"s.{c}" for c in compared)
        tgt_tuple = ", ".join(f"{table}.{c}" for c in compared)
        updates = ", ".join(f"{c} = s.{c}" for c in cols if c not in contract.key)
        history = HISTORY_TABLE[table]
        with self.conn.transaction(), self.conn.cursor() as cur:
            if frame.height:
                _copy_frame(cur, stage, frame.select(cols))
                result.unknown_quarantined = self._unknown_ids(cur, contract, stage, unknown)
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
                            SELECT r.*, s.source AS new_source
                            FROM {table} r JOIN {stage} s ON r.{key_id} = s.{key_id} AND r.ts = s.ts
                            WHERE ({old_tuple}) IS DISTINCT FROM ({new_tuple})
                        ), hist AS (
                            INSERT INTO {history} ({col_list}, replaced_by, reason)
                            SELECT {col_list}, new_source, %s FROM old
                        ), upd AS (
                            UPDATE {table} SET {updates} FROM {stage} s
                            WHERE {table}.{key_id} = s.{key_id} AND {table}.ts = s.ts
                              AND ({tgt_tuple}) IS DISTINCT FROM ({new_tuple})
                            RETURNING {table}.{key_id}, {table}.ts
                        )
                        INSERT INTO changed_{table} SELECT {key_id}, ts, false FROM upd
                        """,
                        (reason,),
                    )
                    updated = max(cur.rowcount, 0)
                result.inserted, result.updated = inserted, updated
                result.unchanged = staged - inserted - updated
                if inserted + updated != frame.height:
                    cur.execute(f"SELECT id, ts FROM changed_{table}")
                    keys = cur.fetchall()
                    result.changed_keys = pl.DataFrame(
                        keys,
                        schema={key_id: pl.String(), "ts": contract.schema["ts"]},
                        orient="row",
                    )
            if quarantine is not None and quarantine.height:
                _copy_frame(cur, "quarantine", quarantine.select(QUARANTINE_COLUMNS))
        return result

    def _unknown_ids(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        contract: Contract,
        stage: str,
        policy: UnknownMeterPolicy,
    ) -> int:
        """Register ids the reference table lacks, or move their rows to quarantine."""
        ref = REFERENCE_FOR[contract.kind]
        key = contract.key[0]
        if policy is UnknownMeterPolicy.REGISTER:
            cur.execute(
                f"INSERT INTO {ref.table} ({key}, status) SELECT DISTINCT {key}, %s FROM {stage}"
                f" ON CONFLICT DO NOTHING",
                (MeterStatus.UNREGISTERED.value,),
            )
            return 0
        cur.execute(
            f"""
            WITH gone AS (
                DELETE FROM {stage} s
                WHERE NOT EXISTS (SELECT 1 FROM {ref.table} m WHERE m.{key} = s.{key})
                RETURNING s.*
            )
            INSERT INTO quarantine (kind, source, raw, reason)
            SELECT %s, source, row_to_json(gone)::text, %s FROM gone
            """,
            (contract.kind, f"unknown {key}"),
        )
        return cur.rowcount if cur.rowcount > 0 else 0

    # --- reference data ----------------------------------------------------------------

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
                _copy_frame(cur, stage, frame.select(given))
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
            if quarantine is not None and quarantine.height:
                _copy_frame(cur, "quarantine", quarantine.select(QUARANTINE_COLUMNS))
        return result

    def write_quarantine(self, quarantine: pl.DataFrame) -> None:
        """Store rows that never became records (undecodable lines, missing keys)."""
        if not quarantine.height:
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            _copy_frame(cur, "quarantine", quarantine.select(QUARANTINE_COLUMNS))


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
