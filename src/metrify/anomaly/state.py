"""Per-subject detector state, kept in PostgreSQL and cached in memory.

The baselines (a robust level and spread per hour of the week) and the running levels
(EWMAs, when a drop or shift began, the last value of a sensor) are what makes a detector
judge a reading against the meter's own past. They must survive a restart or a Kafka
rebalance, so they live in ``anomaly_state``, one row per subject with the 168 hour-of-week
values as arrays (one row per meter keeps the per-batch upsert small). A process loads the
rows of the subjects in its batch once and then keeps them up to date itself: one process
owns a meter at a time (Kafka partitioning), and a worker builds fresh pipelines, and so
fresh caches, when its partitions are reassigned.
"""

from __future__ import annotations

from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import psycopg

from metrify.records import TS
from metrify.stores.postgres import copy_binary, copy_out, ids_table

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
_ARRAYS: Final = ("level", "spread", "weight")
_SCALARS: Final = [c for c in SCALAR_SCHEMA if c != "subject_id"]


def hour_of_week(ts: pl.Expr) -> pl.Expr:
    """0 = Monday 00:00-01:00 ... 167 = Sunday 23:00, in the zone ``ts`` is in."""
    return ((ts.dt.weekday().cast(pl.Int16) - 1) * 24 + ts.dt.hour().cast(pl.Int16)).alias("how")


def local_hour_of_week(frame: pl.DataFrame) -> pl.Expr:
    """Hour of the week on each subject's own clock (a ``tz`` column; else UTC).

    Households live by the local clock: after the switch to summer time the evening peak
    comes an hour earlier in UTC, and a UTC baseline would judge every evening against
    the wrong hour for seven months. One conversion per distinct zone (a fleet has a
    handful); a missing or unknown zone counts as UTC, as in VEE.
    """
    utc = hour_of_week(pl.col("ts"))
    if "tz" not in frame.columns:
        return utc
    expr = utc
    for zone in frame.get_column("tz").drop_nulls().unique().sort().to_list():
        if zone == "UTC" or not _known_zone(zone):
            continue
        local = hour_of_week(pl.col("ts").dt.convert_time_zone(zone))
        expr = pl.when(pl.col("tz") == zone).then(local).otherwise(expr)
    return expr.alias("how")


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class StateStore:
    """Reads and writes ``anomaly_state`` rows of one subject type (meter, node, station)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], subject_type: str) -> None:
        self.conn = conn
        self.subject_type = subject_type

    def load(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(profile rows, scalar rows) stored for ``ids``; absent subjects have no rows."""
        cols = ["subject_id", *(f"{a}::text" for a in _ARRAYS), *_SCALARS]
        names = ["subject_id", *_ARRAYS, *_SCALARS]
        with self.conn.transaction(), self.conn.cursor() as cur:
            query = (
                f"SELECT {', '.join(cols)} FROM anomaly_state s JOIN {ids_table(cur, ids)} i"
                f" ON i.id = s.subject_id WHERE s.subject_type = "
                f"'{self.subject_type}'"
            )
            raw = copy_out(cur, query, names)
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
        with_profile = raw.filter(pl.col("level").is_not_null())
        profile = (
            with_profile.select(
                "subject_id",
                *[pl.col(a).str.strip_chars("{}").str.split(",") for a in _ARRAYS],
                # 168 hours of the week, then a meter's temperature fit (temperature.py)
                how=pl.int_ranges(0, pl.col("level").str.count_matches(",") + 1, dtype=pl.Int16),
            )
            .explode("how", *_ARRAYS)
            .with_columns(pl.col(a).cast(pl.Float64) for a in _ARRAYS)
            .select(list(PROFILE_SCHEMA))
        )
        return profile, scalars

    def save(self, profile: pl.DataFrame, scalars: pl.DataFrame) -> None:
        """Upsert the state of the subjects in ``scalars`` (``profile`` holds all 168 rows each)."""
        if not scalars.height:
            return
        # each subject's 168 values in hour-of-week order, as lists that go to PostgreSQL
        # arrays through a binary COPY (a stream worker saves every meter's state after
        # every micro-batch: formatting them as text was most of the cost); sorted within
        # each subject (cheap) rather than the whole frame by a string key
        arrays = profile.group_by("subject_id").agg(
            *[pl.col(a).sort_by("how").cast(pl.Float64) for a in _ARRAYS]
        )
        rows = scalars.join(arrays, on="subject_id", how="left").select(
            pl.lit(self.subject_type).alias("subject_type"),
            "subject_id",
            *_ARRAYS,
            *[pl.col(c).cast(SCALAR_SCHEMA[c]) for c in _SCALARS],
        )
        cols = ", ".join(rows.columns)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in rows.columns[2:])
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_anomaly_state"
                " (LIKE anomaly_state INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            copy_binary(cur, "stage_anomaly_state", rows)
            cur.execute(
                f"INSERT INTO anomaly_state ({cols}) SELECT {cols} FROM stage_anomaly_state"
                f" ON CONFLICT (subject_type, subject_id) DO UPDATE SET {updates},"
                f" updated_at = now()"
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

    def get(self, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(profile, scalars) of ``ids``, reading subjects not seen before from PostgreSQL."""
        frame = ids.unique().to_frame("subject_id")
        missing = frame.join(self._known, on="subject_id", how="anti")
        if missing.height:
            profile, scalars = self.store.load(missing["subject_id"])
            self.profile = pl.concat([self.profile, profile])
            self.scalars = pl.concat([self.scalars, scalars])
            self._known = pl.concat([self._known, missing])
        return (
            self.profile.join(frame, on="subject_id", how="semi"),
            self.scalars.join(frame, on="subject_id", how="semi"),
        )

    def put(self, profile: pl.DataFrame, scalars: pl.DataFrame) -> None:
        """Persist new state of some subjects and keep it as theirs in memory."""
        self.store.save(profile, scalars)
        self.keep(profile, scalars)

    def keep(self, profile: pl.DataFrame, scalars: pl.DataFrame) -> None:
        """Make new state of some subjects theirs in memory (persisted later by
        :meth:`StateStore.save`, once the batch that produced it is durable), so the next
        batch is judged against it even while this one is still being written."""
        ids = scalars.select("subject_id")
        if profile.height:
            self.profile = pl.concat(
                [
                    self.profile.join(
                        profile.select("subject_id").unique(), on="subject_id", how="anti"
                    ),
                    profile.select(list(PROFILE_SCHEMA)),
                ]
            )
        self.scalars = pl.concat(
            [
                self.scalars.join(ids, on="subject_id", how="anti"),
                scalars.select(list(SCALAR_SCHEMA)),
            ]
        )
        fresh = ids.join(self._known, on="subject_id", how="anti")
        if fresh.height:
            self._known = pl.concat([self._known, fresh])

    def forget(self) -> None:
        """Drop the cache (another process may have written these subjects)."""
        self.profile = self.profile.clear()
        self.scalars = self.scalars.clear()
        self._known = self._known.clear()
