"""Per-subject detector state, cached in memory (stored by ``metrify.stores.detector_state``).

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

This module holds the shape of that state and the in-memory cache over it; reading and
writing the tables is the store's, handed in as a :class:`StateSource`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final, Protocol

import polars as pl

from metrify.contracts.anomalies import PROFILE_SCHEMA, SCALAR_SCHEMA
from metrify.contracts.localtime import hour_of_week, local_us

__all__ = [
    "HOURS_OF_WEEK",
    "PROFILE_SCHEMA",
    "SCALAR_SCHEMA",
    "SLOT_VALUES",
    "StateCache",
    "StateSource",
    "local_hour_of_week",
    "merge_slots",
    "pack_slots",
    "replace_state",
    "unpack_slots",
]

HOURS_OF_WEEK: Final = 168


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
    return pl.concat([old.join(new[keys], on=keys, how="anti"), new[old.columns]])


def replace_state(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """``old`` with the subjects of ``new`` replaced by their rows in ``new``."""
    if not new.height:
        return old
    keep = old.join(new[["subject_id"]], on="subject_id", how="anti")
    return pl.concat([keep, new[old.columns]])


class StateSource(Protocol):
    """Where a cache reads the state of subjects it has not seen (the state store)."""

    def load(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(profile rows, scalar rows) stored for ``ids``; absent subjects have no rows."""
        ...


class StateCache:
    """The state of the subjects this process works on, loaded once, then kept in memory."""

    def __init__(self, store: StateSource) -> None:
        self.store = store
        self.profile = pl.DataFrame(schema=PROFILE_SCHEMA)
        self.scalars = pl.DataFrame(schema=SCALAR_SCHEMA)
        #: subjects whose state was looked up (stored or not): a frame, so the per-batch
        #: check is one anti-join, not a Python set turned into a list every batch
        self._known = pl.DataFrame(schema={"subject_id": pl.String()})
        #: subjects looked up with nothing stored and not saved since (see ``StateStore.save``);
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
        ``StateStore.save``, once the batch that produced it is durable), so the next
        batch is judged against it even while this one is still being written.

        ``profile``: the slots that were set (others stay as they are); ``scalars``:
        whole rows."""
        ids = scalars.select("subject_id")
        self.profile = merge_slots(self.profile, profile)
        self.scalars = replace_state(self.scalars, scalars)
        fresh = ids.join(self._known, on="subject_id", how="anti")
        if fresh.height:
            self._known = pl.concat([self._known, fresh])

    def fresh(self) -> pl.DataFrame:
        """Subjects known to have nothing stored (see ``StateStore.save``)."""
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
