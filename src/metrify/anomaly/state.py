"""Per-subject detector state, kept in PostgreSQL and cached in memory.

The baselines (a robust level and spread per hour of the week) and the running levels
(EWMAs, when a drop or shift began, the last value of a sensor) are what makes a detector
judge a reading against the meter's own past. They must survive a restart or a Kafka
rebalance, so they live in PostgreSQL: ``anomaly_state``, one narrow row of running values
per subject, and ``anomaly_profile``, one row per subject and slot (the 168 hours of the
week, then the slots detectors keep beyond them). A batch upserts the subjects' running
values and only the profile slots it changed (usually the hour or two it covered), so a
stream worker's save after every micro-batch stays small. A process loads the state of
the subjects in its batch once and then keeps it up to date itself: one process owns a
meter at a time (Kafka partitioning), and a worker builds fresh pipelines, and so fresh
caches, when its partitions are reassigned.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final

import polars as pl
import psycopg
from psycopg import errors

from metrify.contracts.localtime import hour_of_week, local_us
from metrify.contracts.records import TS
from metrify.stores.postgres import copy_binary, copy_out, id_list

HOURS_OF_WEEK: Final = 168

PROFILE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "subject_id": pl.String(),
    "how": pl.Int16(),
    "level": pl.Float64(),
    "spread": pl.Float64(),
    "weight": pl.Float64(),
}
SCALAR_SCHEMA: Final[dict[str, pl.DataType]] = {
    "subject_id": pl.String(),
    "last_ts": TS,
    "ewm_obs": pl.Float64(),
    "ewm_exp": pl.Float64(),
    "drop_since": TS,
    "shift_since": TS,
    "last_value": pl.Float64(),
    "run_since": TS,
    "peak_kw": pl.Float64(),
    "peak_days": pl.Float64(),
}
_SCALARS: Final = [c for c in SCALAR_SCHEMA if c != "subject_id"]


def local_hour_of_week(frame: pl.DataFrame) -> pl.Expr:
    """Hour of the week on each subject's own clock (a ``tz`` column; else UTC).

    Households live by the local clock: after the switch to summer time the evening peak
    comes an hour earlier in UTC, and a UTC baseline would judge every evening against
    the wrong hour for seven months. A missing or unknown zone counts as UTC, as in VEE.
    """
    if "tz" not in frame.columns:
        return hour_of_week(local_us(frame, None, [])).cast(pl.Int16).alias("how")
    zones = frame.get_column("tz").drop_nulls().unique().to_list()
    local = local_us(frame, "tz", zones)
    return hour_of_week(local).cast(pl.Int16).alias("how")


#: what a slot row holds; a detector's running sums beyond the hours go three to a slot
SLOT_VALUES: Final = ("level", "spread", "weight")


def pack_slots(frame: pl.DataFrame, slots: Sequence[int], columns: Sequence[str]) -> pl.DataFrame:
    """Profile rows keeping ``columns`` of each subject in ``frame``, three to a slot
    (stored as level, spread, weight): how sums a detector carries from batch to batch
    (a temperature fit, an open drop run) live in the one profile table."""
    return pl.concat(
        [
            frame.select(
                "subject_id",
                how=pl.lit(slot, pl.Int16),
                **{v: columns[3 * i + k] for k, v in enumerate(SLOT_VALUES)},
            )
            for i, slot in enumerate(slots)
        ]
    )


def unpack_slots(
    profile: pl.DataFrame, slots: Sequence[int], columns: Sequence[str]
) -> pl.DataFrame:
    """The inverse of :func:`pack_slots`: one row per subject holding all ``slots``."""
    held = profile.filter(pl.col("how").is_in(slots))  # one pass over the whole profile
    parts = [
        held.filter(pl.col("how") == slot).select(
            "subject_id", **{columns[3 * i + k]: pl.col(v) for k, v in enumerate(SLOT_VALUES)}
        )
        for i, slot in enumerate(slots)
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.join(part, on="subject_id", how="inner")
    return out


def merge_slots(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """``old`` profile rows with the (subject, slot) pairs of ``new`` replaced by them."""
    if not new.height:
        return old
    keys = ["subject_id", "how"]
    return pl.concat([old.join(new.select(keys), on=keys, how="anti"), new.select(old.columns)])


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


class StateCache:
    """The state of the subjects this process works on, loaded once, then kept in memory."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.profile = pl.DataFrame(schema=PROFILE_SCHEMA)
        self.scalars = pl.DataFrame(schema=SCALAR_SCHEMA)
        #: subjects whose state was looked up (stored or not): a frame, so the per-batch
        #: check is one anti-join, not a Python set turned into a list every batch
        self._known = pl.DataFrame(schema={"subject_id": pl.String()})
        #: subjects looked up with nothing stored and not saved since (see StateStore.save);
        #: saves may run on a background writer, hence the lock
        self._fresh = self._known.clear()
        self._fresh_lock = threading.Lock()

    def get(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(profile, scalars) of ``ids``, reading subjects not seen before from PostgreSQL."""
        frame = ids.unique().to_frame("subject_id")
        missing = frame.join(self._known, on="subject_id", how="anti")
        if missing.height:
            profile, scalars = self.store.load(missing["subject_id"])
            self.profile = pl.concat([self.profile, profile])
            self.scalars = pl.concat([self.scalars, scalars])
            self._known = pl.concat([self._known, missing])
            absent = missing.join(scalars.select("subject_id"), on="subject_id", how="anti").join(
                profile.select("subject_id"), on="subject_id", how="anti"
            )
            with self._fresh_lock:
                self._fresh = pl.concat([self._fresh, absent])
        if frame.height == self._known.height:
            # every subject held is in the batch (a live fleet's micro-batch): no copy
            return self.profile, self.scalars
        return (
            self.profile.join(frame, on="subject_id", how="semi"),
            self.scalars.join(frame, on="subject_id", how="semi"),
        )

    def keep(self, profile: pl.DataFrame, scalars: pl.DataFrame) -> None:
        """Make new state of some subjects theirs in memory (persisted later by
        :meth:`StateStore.save`, once the batch that produced it is durable), so the next
        batch is judged against it even while this one is still being written.

        ``profile``: the slots that were set (others stay as they are); ``scalars``:
        whole rows."""
        ids = scalars.select("subject_id")
        self.profile = merge_slots(self.profile, profile)
        self.scalars = pl.concat(
            [
                self.scalars.join(ids, on="subject_id", how="anti"),
                scalars.select(list(SCALAR_SCHEMA)),
            ]
        )
        fresh = ids.join(self._known, on="subject_id", how="anti")
        if fresh.height:
            self._known = pl.concat([self._known, fresh])

    def fresh(self) -> pl.DataFrame:
        """Subjects known to have nothing stored (see :meth:`StateStore.save`)."""
        return self._fresh

    def saved(self, scalars: pl.DataFrame) -> None:
        """The subjects of ``scalars`` have state stored now (or soon: a save that fails
        after this only sends them down the upsert next time)."""
        with self._fresh_lock:
            ids = scalars.select("subject_id")
            self._fresh = self._fresh.join(ids, on="subject_id", how="anti")

    def forget(self) -> None:
        """Drop the cache (another process may have written these subjects)."""
        self.profile = self.profile.clear()
        self.scalars = self.scalars.clear()
        self._known = self._known.clear()
        with self._fresh_lock:
            self._fresh = self._fresh.clear()
