"""The detect stage of the pipeline: flag rows before the write, record and alert after.

``detect`` runs between VEE and the write: it sets the ``anomaly`` quality bit on the rows
it finds and returns the incidents and new detector state without touching the store.
``commit`` runs once the batch is durable: it persists the state (kept in memory since
``detect``), records the incidents and sends alerts. A crash in between re-delivers the
batch (Kafka) and the same rows give the same incidents, which extend the stored ones
instead of duplicating them.

Rows the stage has already seen (at or before a subject's ``last_ts``: a re-delivery or a
correction) are not judged again; their bit comes from the stored incident spans, so a
re-sent batch stores exactly what it stored the first time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
import psycopg

from metrify.anomaly.alerts import Alerter, sinks_from
from metrify.anomaly.grid import detect_grid
from metrify.anomaly.meters import Detected, detect_readings
from metrify.anomaly.state import HOURS_OF_WEEK, StateCache, StateStore
from metrify.anomaly.store import AnomalyStore
from metrify.anomaly.temperature import TemperatureCache, window
from metrify.anomaly.weather import detect_weather
from metrify.contracts.records import GRID, READING, TS, WEATHER, Contract, Quality
from metrify.settings.anomaly import AnomalyConfig
from metrify.stores.postgres import PostgresStore

log = logging.getLogger(__name__)

SUBJECT_TYPE = {READING.kind: "meter", GRID.kind: "node", WEATHER.kind: "station"}


@dataclass
class Pending:
    """What ``detect`` found, waiting for the batch to be durable."""

    detected: Detected
    #: the profile slots whose values the batch changed (what the store needs)
    changed: pl.DataFrame


@dataclass
class StageStats:
    flagged: int = 0
    incidents: int = 0
    alerts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class DetectStage:
    """Streaming detectors of one contract kind with their state cache."""

    def __init__(
        self,
        contract: Contract,
        cfg: AnomalyConfig,
        conn: psycopg.Connection[tuple[object, ...]],
        *,
        alerter: Alerter | None = None,
        meters: Callable[[pl.Series], pl.DataFrame] | None = None,
    ) -> None:
        """``meters``: the meters' reference rows by id (``meter_id, has_pv, timezone,
        station_id``, as :meth:`PostgresStore.meter_attributes`, the default, reads them
        from ``conn`` for every batch)."""
        if contract.kind not in SUBJECT_TYPE:
            raise ValueError(f"no detectors for {contract.kind}")
        self.contract = contract
        self.cfg = cfg
        self.conn = conn
        self.subject_type = SUBJECT_TYPE[contract.kind]
        self.key = contract.key[0]
        self.state = StateCache(StateStore(conn, self.subject_type))
        #: state of batches whose saving was deferred (see save_state): (profile, scalars)
        self._deferred: tuple[pl.DataFrame, pl.DataFrame] | None = None
        self.store = AnomalyStore(conn)
        self._meters = meters if meters is not None else PostgresStore(conn).meter_attributes
        self.alerter = alerter if alerter is not None else Alerter(sinks_from(cfg.alerts))
        self.stats = StageStats()
        #: hourly temperatures of the meters' stations (read once per span, not per batch)
        self.temps = TemperatureCache(self._load_weather)

    def detect(self, assessed: pl.DataFrame) -> tuple[pl.DataFrame, Pending]:
        """Rows with the anomaly bit set where found, and the findings to commit later."""
        ids = assessed[self.key]
        profile, scalars = self.state.get(ids)
        if self.contract is READING:
            meters = self._meters(ids)
            detected = detect_readings(
                assessed,
                meters,
                profile,
                scalars,
                self.cfg,
                weather=self._weather(assessed, meters),
            )
        elif self.contract is GRID:
            detected = detect_grid(assessed, self._nodes(ids), profile, scalars, self.cfg)
        else:
            detected = detect_weather(assessed, scalars, self.cfg)
        flags = self._old_rows_from_spans(assessed, scalars, detected.flags)
        marked = (
            assessed.join(flags, on=[self.key, "ts"], how="left")
            .with_columns(
                quality=pl.when(pl.col("anomaly").fill_null(False))
                .then(pl.col("quality") | int(Quality.ANOMALY))
                .otherwise(pl.col("quality"))
            )
            .drop("anomaly")
        )
        # The next batch builds on this state at once (the pipeline may detect it while
        # this one is still being written); the store gets it in commit().
        self.state.keep(detected.profile, detected.scalars)
        # What the store needs: the slots whose values this batch changed. The hours of
        # the week come back only where the batch learnt them; the slots beyond come for
        # every subject judged, most of them as they were.
        slots = detected.profile
        extra = slots.filter(pl.col("how") >= HOURS_OF_WEEK)
        if extra.height:
            unchanged = extra.join(
                profile.filter(pl.col("how") >= HOURS_OF_WEEK).select(slots.columns),
                on=slots.columns,
                how="semi",
                nulls_equal=True,
            )
            if unchanged.height:
                keys = ["subject_id", "how"]
                slots = slots.join(unchanged.select(keys), on=keys, how="anti")
        # A never-learnt hour (weight 0, all zeros) is what a reader takes for an absent
        # row, so it is not stored.
        changed = slots.filter((pl.col("how") >= HOURS_OF_WEEK) | (pl.col("weight") != 0))
        return marked, Pending(detected, changed)

    def save_state(
        self,
        pending: Pending,
        conn: psycopg.Connection[tuple[object, ...]] | None = None,
        *,
        defer: bool = False,
    ) -> None:
        """Persist the state ``detect`` produced (on ``conn``: a background writer's).

        ``defer``: keep it instead, merged with what earlier deferred batches left (the
        latest value of each slot wins); the next call without ``defer`` saves it all.
        A long load saves every few batches: a slot changed by each of them is then
        written once, not once per batch (a week of 15-minute readings changes every
        hour-of-week slot of each meter). Verdicts do not change, since the next batch
        is judged against the state kept in memory; if the load dies, a re-run judges
        the undurable stretch again from the last saved state and its incidents merge
        with those already recorded.
        """
        changed, scalars = pending.changed, pending.detected.scalars
        if self._deferred is not None:
            old_changed, old_scalars = self._deferred
            changed = pl.concat([old_changed, changed]).unique(
                subset=["subject_id", "how"], keep="last"
            )
            scalars = pl.concat([old_scalars, scalars]).unique(subset=["subject_id"], keep="last")
        if defer:
            self._deferred = (changed, scalars)
            return
        self._deferred = None
        self._save(changed, scalars, conn)

    def save_deferred(self, conn: psycopg.Connection[tuple[object, ...]] | None = None) -> None:
        """Save what deferred calls of :meth:`save_state` kept, if anything (on ``conn``:
        a background writer's)."""
        if self._deferred is not None:
            changed, scalars = self._deferred
            self._deferred = None
            self._save(changed, scalars, conn)

    def _save(
        self,
        changed: pl.DataFrame,
        scalars: pl.DataFrame,
        conn: psycopg.Connection[tuple[object, ...]] | None,
    ) -> None:
        store = self.state.store if conn is None else StateStore(conn, self.subject_type)
        store.save(changed, scalars, self.state.fresh())
        self.state.saved(scalars)

    def commit(self, pending: Pending, *, state_saved: bool = False) -> list[int]:
        """Persist state (unless ``state_saved``), record incidents, alert; returns the
        ids of anomalies touched."""
        d = pending.detected
        if not state_saved:
            self.save_state(pending)
        ids = self.store.record(d.incidents, merge_gap_s=self.cfg.merge_gap_s)
        self.stats.incidents += d.incidents.height
        for kind, count in d.incidents.group_by("kind").len().iter_rows():
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + count
        due = self.store.due_alerts(ids, self.cfg.alerts.min_severity)
        if due:
            self.alerter.send(due)
            self.store.mark_alerted([int(r["id"]) for r in due])
            self.stats.alerts += len(due)
        return ids

    def forget(self) -> None:
        """Drop cached state (partitions reassigned)."""
        self.state.forget()

    # --- helpers ---------------------------------------------------------------------

    def _old_rows_from_spans(
        self, assessed: pl.DataFrame, scalars: pl.DataFrame, flags: pl.DataFrame
    ) -> pl.DataFrame:
        """Flags of already-seen rows come from stored incidents, not a second judgement."""
        rows = assessed.select(self.key, "ts").join(
            scalars.select(pl.col("subject_id").alias(self.key), "last_ts"), on=self.key, how="left"
        )
        old = rows.filter(pl.col("last_ts").is_not_null() & (pl.col("ts") <= pl.col("last_ts")))
        if not old.height:
            self.stats.flagged += int(flags["anomaly"].sum())
            return flags
        first = old["ts"].min()
        assert isinstance(first, dt.datetime)
        spans = self.store.spans(self.subject_type, old[self.key], first)
        covered = (
            old.join(spans.rename({"subject_id": self.key}), on=self.key)
            .filter((pl.col("ts") >= pl.col("ts_start")) & (pl.col("ts") < pl.col("ts_end")))
            .select(self.key, "ts")
            .unique()
            .with_columns(span=pl.lit(True))
        )
        out = (
            flags.join(
                old.select(self.key, "ts", old=pl.lit(True)), on=[self.key, "ts"], how="left"
            )
            .join(covered, on=[self.key, "ts"], how="left")
            .select(
                self.key,
                "ts",
                anomaly=pl.when(pl.col("old").fill_null(False))
                .then(pl.col("span").fill_null(False))
                .otherwise(pl.col("anomaly")),
            )
        )
        self.stats.flagged += int(out["anomaly"].sum())
        return out

    def _weather(self, assessed: pl.DataFrame, meters: pl.DataFrame) -> pl.DataFrame | None:
        """Hourly temperatures the batch's weather-referenced meters need (cached)."""
        stations = meters["station_id"].drop_nulls().unique().sort().to_list()
        first, last = assessed["ts"].min(), assessed["ts"].max()
        if not stations or not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
            return None
        return self.temps.get(stations, *window(first, last, self.cfg))

    def _load_weather(
        self, stations: list[str], start: dt.datetime, end: dt.datetime
    ) -> pl.DataFrame:
        rows = self.conn.execute(
            "SELECT station_id, ts, temperature_c FROM weather_observations"
            " WHERE station_id = ANY(%s) AND ts >= %s AND ts < %s"
            " AND temperature_c IS NOT NULL AND status <> 'rejected'",
            (stations, start, end),
        ).fetchall()
        return pl.DataFrame(
            rows,
            schema={"station_id": pl.String(), "ts": TS, "temperature_c": pl.Float64()},
            orient="row",
        )

    def _nodes(self, ids: pl.Series) -> pl.DataFrame:
        rows = self.conn.execute(
            "SELECT node_id, capacity_mw, nominal_kv FROM grid_nodes WHERE node_id = ANY(%s)",
            (ids.unique().to_list(),),
        ).fetchall()
        return pl.DataFrame(
            rows,
            schema={
                "node_id": pl.String(),
                "capacity_mw": pl.Float64(),
                "nominal_kv": pl.Float64(),
            },
            orient="row",
        )
