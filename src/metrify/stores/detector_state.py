"""Detector state in PostgreSQL: ``anomaly_state`` (one narrow row of running values per
subject) and ``anomaly_profile`` (one row per subject and slot).

The anomaly stage keeps the state of its subjects in memory
(:class:`metrify.anomaly.state.StateCache`) and reads here only the subjects it has not
seen; the pipeline saves here what a batch changed once the batch is durable. Both sides
stream through COPY (binary in, CSV out): row-by-row fetching or inserting would be the
slowest part of a micro-batch.
"""

from __future__ import annotations

from typing import Final

import polars as pl
import psycopg
from psycopg import errors

from metrify.contracts.anomalies import PROFILE_SCHEMA, SCALAR_SCHEMA
from metrify.contracts.records import TS
from metrify.stores.postgres import copy_binary, copy_out, id_list

__all__ = ["StateStore"]

_SCALARS: Final = [c for c in SCALAR_SCHEMA if c != "subject_id"]


class StateStore:
    """Reads and writes ``anomaly_state`` rows of one subject type (meter, node, station)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], subject_type: str) -> None:
        self.conn = conn
        self.subject_type = subject_type

    def load(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(profile rows, scalar rows) stored for ``ids``; absent subjects have no rows."""
        kind = self.subject_type
        wanted = (kind, id_list(ids))
        with self.conn.transaction(), self.conn.cursor() as cur:
            raw = copy_out(
                cur,
                f"SELECT s.subject_id, {', '.join('s.' + c for c in _SCALARS)}"
                " FROM anomaly_state s WHERE s.subject_type = %s AND s.subject_id = ANY(%s)",
                ["subject_id", *_SCALARS],
                wanted,
            )
            slots = copy_out(
                cur,
                "SELECT p.subject_id, p.how, p.level, p.spread, p.weight FROM anomaly_profile p"
                " WHERE p.subject_type = %s AND p.subject_id = ANY(%s)",
                list(PROFILE_SCHEMA),
                wanted,
            )
        if raw is None:
            return pl.DataFrame(schema=PROFILE_SCHEMA), pl.DataFrame(schema=SCALAR_SCHEMA)
        scalars = raw.select(
            "subject_id",
            *[
                pl.col(c).str.to_datetime(
                    "%Y-%m-%d %H:%M:%S%.f%#z", time_zone="UTC", time_unit="us"
                )
                if SCALAR_SCHEMA[c] == TS
                else pl.col(c).cast(pl.Float64)
                for c in _SCALARS
            ],
        )
        if slots is None:
            return pl.DataFrame(schema=PROFILE_SCHEMA), scalars
        profile = slots.select(pl.col(c).cast(t) for c, t in PROFILE_SCHEMA.items())
        return profile, scalars

    def save(
        self, profile: pl.DataFrame, scalars: pl.DataFrame, fresh: pl.DataFrame | None = None
    ) -> None:
        """Upsert the running values of the subjects in ``scalars`` and the profile slots
        in ``profile`` (the ones that changed; any subset).

        ``fresh``: subjects (``subject_id``) known to have nothing stored yet. Their rows
        are copied straight into the tables, half the work of the staged upsert, which
        on a fleet's first load (173 slots of every meter) is the last thing it waits
        for. Should one have been stored meanwhile (another process), the copy is rolled
        back and every row takes the upsert.
        """
        if not scalars.height and not profile.height:
            return
        kind = pl.lit(self.subject_type).alias("subject_type")
        values = scalars.select(
            kind, "subject_id", *[pl.col(c).cast(SCALAR_SCHEMA[c]) for c in _SCALARS]
        )
        slots = profile.select(kind, *[pl.col(c).cast(t) for c, t in PROFILE_SCHEMA.items()])
        with self.conn.transaction(), self.conn.cursor() as cur:
            if fresh is not None and fresh.height:
                try:
                    with self.conn.transaction():  # a savepoint
                        for table, rows in (("anomaly_state", values), ("anomaly_profile", slots)):
                            new = rows.join(fresh, on="subject_id", how="semi")
                            if new.height:
                                copy_binary(cur, table, new)
                    values = values.join(fresh, on="subject_id", how="anti")
                    slots = slots.join(fresh, on="subject_id", how="anti")
                except errors.UniqueViolation:
                    pass  # stored meanwhile: all take the upsert
            for table, rows, key in (
                ("anomaly_state", values, "subject_type, subject_id"),
                ("anomaly_profile", slots, "subject_type, subject_id, how"),
            ):
                if not rows.height:
                    continue
                cur.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS stage_{table}"
                    f" (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                copy_binary(cur, f"stage_{table}", rows)
                cols = ", ".join(rows.columns)
                updates = ", ".join(
                    f"{c} = EXCLUDED.{c}" for c in rows.columns if c not in key.split(", ")
                )
                touched = ", updated_at = now()" if table == "anomaly_state" else ""
                cur.execute(
                    f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stage_{table}"
                    f" ON CONFLICT ({key}) DO UPDATE SET {updates}{touched}"
                )
