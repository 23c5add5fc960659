"""The detect stage of the pipeline: flag rows before the write, record and alert after.

``detect`` runs between VEE and the write: it sets the ``anomaly`` quality bit on the rows
it finds and returns the incidents and new detector state without writing anything.
``commit`` runs once the batch is durable: it persists the state (kept in memory since
``detect``), records the incidents and sends alerts. A crash in between re-delivers the
batch (Kafka) and the same rows give the same incidents, which extend the stored ones
instead of duplicating them.

This module is the wiring: what the detectors need comes from the stores (their state
once per subject, the meters' and nodes' reference rows, temperatures, the stored spans
of rows seen before), what they find goes back to them. The judging itself is
:mod:`metrify.anomaly`'s.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import polars as pl
import psycopg

from metrify.anomaly.alerts import Alerter, sinks_from
from metrify.anomaly.grid import detect_grid
from metrify.anomaly.meters import TAMPER_EVENTS, detect_readings, tamper_raised
from metrify.anomaly.stage import (
    SUBJECT_TYPE,
    Pending,
    StageStats,
    changed_slots,
    flags_from_spans,
    mark,
    seen_rows,
    unseen_incidents,
    weather_span,
)
from metrify.anomaly.state import StateCache
from metrify.anomaly.temperature import TemperatureCache
from metrify.anomaly.weather import detect_weather
from metrify.contracts.anomalies import Kind
from metrify.contracts.records import GRID, READING, Contract
from metrify.settings.anomaly import AnomalyConfig
from metrify.stores import events
from metrify.stores.anomalies import AnomalyStore
from metrify.stores.detector_inputs import node_ratings, temperatures
from metrify.stores.detector_state import StateStore
from metrify.stores.postgres import PostgresStore

__all__ = ["DetectStage", "Pending", "record_incidents"]


def record_incidents(
    store: AnomalyStore, incidents: pl.DataFrame, cfg: AnomalyConfig, alerter: Alerter | None
) -> tuple[list[int], int]:
    """Record ``incidents`` (new ones added, running ones extended) and alert on those
    now due; (ids of the anomalies touched, alerts sent).

    The streaming detectors and the daily job both end here, so an incident alerts once
    whichever found it first. ``alerter``: None for the configured sinks, set up only
    when something is due (a Kafka sink opens a producer).
    """
    ids = store.record(incidents, merge_gap_s=cfg.merge_gap_s)
    due = store.due_alerts(ids, cfg.alerts.min_severity)
    if due:
        (alerter or Alerter(sinks_from(cfg.alerts))).send(due)
        store.mark_alerted([int(r["id"]) for r in due])
    return ids, len(due)


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
        self.states = StateStore(conn, self.subject_type)
        self.state = StateCache(self.states)
        #: state of batches whose saving was deferred (see save_state): (profile, scalars)
        self._deferred: tuple[pl.DataFrame, pl.DataFrame] | None = None
        self.store = AnomalyStore(conn)
        self._meters = meters if meters is not None else PostgresStore(conn).meter_attributes
        self.alerter = alerter if alerter is not None else Alerter(sinks_from(cfg.alerts))
        self.stats = StageStats()
        #: hourly temperatures of the meters' stations (read once per span, not per batch)
        self.temps = TemperatureCache(functools.partial(temperatures, conn))

    def detect(self, assessed: pl.DataFrame) -> tuple[pl.DataFrame, Pending]:
        """Rows with the anomaly bit set where found, and the findings to commit later."""
        # (each id once: the state, the meters and the nodes are looked up by id, and a
        # part of a year's load repeats each of its ids a few thousand times)
        ids = assessed[self.key].unique()
        profile, scalars = self.state.get(ids)
        if self.contract is READING:
            meters = self._meters(ids)
            span = weather_span(assessed, meters, self.cfg)
            detected = detect_readings(
                assessed,
                meters,
                profile,
                scalars,
                self.cfg,
                weather=None if span is None else self.temps.get(*span),
            )
            detected.incidents = self._tamper(detected.incidents)
        elif self.contract is GRID:
            nodes = node_ratings(self.conn, ids)
            detected = detect_grid(assessed, nodes, profile, scalars, self.cfg)
        else:
            detected = detect_weather(assessed, scalars, self.cfg)
        seen = seen_rows(assessed, scalars, self.key)
        flags = self._judged_once(seen, detected.flags)
        detected.incidents = unseen_incidents(
            detected.incidents, assessed, seen, self.key, self.subject_type
        )
        self.stats.flagged += int(flags["anomaly"].sum())
        marked = mark(assessed, flags, self.key)
        # The next batch builds on this state at once (the pipeline may detect it while
        # this one is still being written); the store gets it in commit().
        self.state.keep(detected.profile, detected.scalars)
        return marked, Pending(detected, changed_slots(detected.profile, profile))

    def _tamper(self, incidents: pl.DataFrame) -> pl.DataFrame:
        """Sustained drops made urgent where the meter reported tampering near them."""
        drops = incidents.filter(pl.col("kind") == Kind.SUSTAINED_DROP.value)
        if not drops.height:
            return incidents
        window = dt.timedelta(hours=self.cfg.tamper_window_hours)
        first, last = drops["ts_start"].min(), drops["ts_end"].max()
        assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
        ids = drops["subject_id"].unique().to_list()
        found = events.of_kinds(self.conn, ids, TAMPER_EVENTS, first - window, last)
        return tamper_raised(incidents, found, window)

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
        store = self.states if conn is None else StateStore(conn, self.subject_type)
        store.save(changed, scalars, self.state.fresh())
        self.state.saved(scalars)

    def commit(self, pending: Pending, *, state_saved: bool = False) -> list[int]:
        """Persist state (unless ``state_saved``), record incidents, alert; returns the
        ids of anomalies touched."""
        d = pending.detected
        if not state_saved:
            self.save_state(pending)
        ids, alerts = record_incidents(self.store, d.incidents, self.cfg, self.alerter)
        self.stats.incidents += d.incidents.height
        for kind, count in d.incidents.group_by("kind").len().iter_rows():
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + count
        self.stats.alerts += alerts
        return ids

    def forget(self) -> None:
        """Drop cached state (partitions reassigned)."""
        self.state.forget()

    def _judged_once(self, seen: pl.DataFrame, flags: pl.DataFrame) -> pl.DataFrame:
        """Flags of already-seen rows come from stored incidents, not a second judgement."""
        if not seen.height:
            return flags
        first = seen["ts"].min()
        assert isinstance(first, dt.datetime)
        spans = self.store.spans(self.subject_type, seen[self.key], first)
        return flags_from_spans(flags, seen, spans, self.key)
