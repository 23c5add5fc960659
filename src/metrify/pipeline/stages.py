"""The one processing path every source shares.

decode -> validate -> estimate -> detect -> store + lake, then anomaly records and alerts.
Files, HTTP, Kafka and the simulator all hand raw batches to :class:`Pipeline` and get
the same :class:`Summary` back. Decoded records are buffered across small inputs (one file per
meter is common) and written in large batches, because each write costs a transaction
and a set of lake files.

A long load (a file, the simulator) gives the pipeline a second store on its own
connection: then batch N is written by PostgreSQL while batch N+1 is decoded, validated
and judged here, so the two cores work at once. The next batch is judged against batch
N's rows and detector state as soon as they are computed; everything that must wait for
durability (counts, the lake, anomaly records, alerts) still waits for the write.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import polars as pl

from metrify.anomaly.stage import Pending
from metrify.contracts.records import (
    EVENT,
    METER,
    READING,
    Commodity,
    Contract,
    MeterEvent,
    MeterStatus,
    Quality,
    Status,
)
from metrify.contracts.summary import Summary
from metrify.ops import tracing
from metrify.pipeline import lakesync
from metrify.pipeline.detect import DetectStage
from metrify.pipeline.registers import RegisterStage, apply_flags, split_flags
from metrify.quality import dedupe_batch
from metrify.quality.commodities import (
    CONVERTED_FIELDS,
    commodity_checks,
    to_contract_units,
    zero_outage_gaps,
)
from metrify.quality.context import reach_of
from metrify.quality.engine import assess_plain, run_vee
from metrify.quality.history import HistoryCache
from metrify.settings import Settings
from metrify.settings.masking import mask_url
from metrify.sources import BadRow
from metrify.sources.decode import REJECT_SCHEMA, Decoded, decode
from metrify.sources.dlms import REASON as DLMS_REASON
from metrify.sources.dlms import decode_codes
from metrify.sources.mapping import REGISTER_FIELD, Mapping
from metrify.stores import events, lake_outbox
from metrify.stores.lake import Lake
from metrify.stores.meter_cache import MeterCache
from metrify.stores.partitions import partition_start
from metrify.stores.postgres import ABSENT, DECLARED, PostgresStore, WriteResult, absent_mask

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

#: an event's line and raw row in its input, carried to the batch for its quarantine
_ORIGIN: Final = ("_line", "_raw")
#: the fields a reading derived from register reads has
_DERIVED_FIELDS = frozenset({"meter_id", "ts", "interval_s", "import_kwh", REGISTER_FIELD})
#: how far past ``batch_size`` a buffer spanning several weeks may grow before it is
#: flushed (see :meth:`Pipeline._full`)
STRETCH: Final = 4
#: the span (in days) past which a buffer counts as spanning several weeks
STRETCH_DAYS: Final = 14
#: how many parts a full batch is detected and written in (see :func:`_week_slices`)
SLICES: Final = 2
#: how many smaller parts (halving back from a full one) a batch in parts starts with
FIRST_SLICES: Final = 3
#: with ``lake_rows``, the lake work gathered is also handed over once it spans this
#: many days: a lake commit writes a file per day, so a long history of a few meters
#: is the lake's work by its days, not its rows (a home's five years of hourly reads
#: were 1,827 files written after the load's last write, 1.1 s)
LAKE_DAYS: Final = 182
#: the most weeks a part of a batch spans (see :func:`_week_slices`)
PART_WEEKS: Final = 52
#: how many parts of one batch may be with the writer at once (one written, the next
#: queued): a part judged faster than the one before it is written does not wait
WRITES_AHEAD: Final = 2


@dataclass(frozen=True)
class _LakeWork:
    """What a durable batch owes the lake: its new and changed rows, the outbox entries
    its write added, and the days it found rows unchanged on."""

    frame: pl.DataFrame
    outbox: list[int]
    unchanged_days: list[dt.date]


@dataclass
class _InFlight:
    """A batch being written by the background writer, and what waits for it."""

    write: Future[WriteResult]
    versions: pl.DataFrame
    rejects: pl.DataFrame
    #: the detectors' verdicts on rows this write completes, in order
    pendings: list[Pending]
    #: the batch's number (see :attr:`Pipeline.handed`)
    number: int
    #: whether its detector state is left to a later save (merged into the deferred
    #: state first thing in the job, which then sets :attr:`merged`)
    defers_state: bool = False
    merged: threading.Event = field(default_factory=threading.Event)


class Pipeline:
    """Decode, validate and store batches of one contract kind."""

    def __init__(
        self,
        contract: Contract,
        settings: Settings,
        store: PostgresStore,
        lake: Lake | None = None,
        *,
        writer: PostgresStore | None = None,
        refresher: PostgresStore | None = None,
        by_source: bool = False,
        state_every_s: float = 0.0,
        defer_lake: bool = False,
        lake_rows: int = 0,
    ) -> None:
        """``writer``: a store on a second connection; given, time-series batches are
        written in the background while the next one is processed. ``refresher``: a
        store on a third, on which due daily quality scores are refreshed in the
        background once a batch is durable, instead of after it on the writer (whose
        next batch waited for it).

        ``by_source``: also keep a summary per source (:attr:`sources`), for a run that
        gathers several inputs and answers each (the API groups concurrent requests).
        Each ``submit`` then takes one source for its whole batch, and no id may come
        from two sources: the rows VEE adds (gaps, estimates) belong to their meter's
        source.

        ``state_every_s``: with a ``writer``, save the detectors' state with the first
        batch written this many seconds after the last save, and at close, rather than
        with each batch (a long load; see :meth:`DetectStage.save_state`). A stream
        worker saves it with each batch (0), so the offsets it commits never run ahead
        of the state.

        ``defer_lake``: the caller runs the pipeline inside a transaction of its own (an
        API request: all or nothing), so the lake, which a rollback cannot undo, is
        written only when the caller calls :meth:`publish_lake` after its commit.

        ``lake_rows``: gather the lake work of durable batches until it holds this many
        rows or spans ``LAKE_DAYS`` (or the pipeline settles or closes) and write it in
        one commit. Each lake commit writes at least a file per day it touches, so a
        load of year-long files wrote a file per day per batch (1,460 small files for
        100 households): one commit per few batches writes fewer, larger files for less
        work. Until then the days wait in the lake outbox, as after a crash (a long
        load; 0: every batch).
        """
        self.contract = contract
        self._state_every_s = state_every_s
        #: when the detectors' state was last handed to the writer to be saved
        self._state_saved = time.monotonic()
        self.settings = settings
        self.store = store
        self.lake = lake
        self.summary = Summary(kind=contract.kind)
        #: with ``by_source``: each source's part of :attr:`summary` (the run-wide
        #: lake files, errors and seconds stay in :attr:`summary`)
        self.sources: dict[str, Summary] | None = {} if by_source else None
        self._owners: dict[str, str] = {}  # with by_source: id -> the source it came from
        if by_source and not contract.time_series:
            raise ValueError("per-source summaries are kept for time series only")
        self._buffer: list[pl.DataFrame] = []
        self._rejects: list[pl.DataFrame] = []
        #: bad rows kept for quarantine per source since the last settle, and those not
        #: kept over ``max_rejects`` (for the life of the pipeline, for its warning)
        self._kept: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._buffered = 0
        #: the earliest and latest ``ts`` buffered (for :meth:`_full`)
        self._span: tuple[dt.datetime, dt.datetime] | None = None
        self._present: set[str] = set()
        self._started = time.perf_counter()
        self._quality_refreshed = time.monotonic()
        # The lake is written on a background thread (pyarrow releases the GIL), so the
        # next batch's database write overlaps it. At most one lake write is in flight.
        self._lake_pool: ThreadPoolExecutor | None = None
        self._lake_pending: tuple[Future[int], _LakeWork] | None = None
        self._defer_lake = defer_lake
        self._held: list[_LakeWork] = []  # with defer_lake: the lake work of the run
        self._lake_rows = lake_rows
        #: with lake_rows: durable batches' lake work not yet handed to the lake thread
        self._gathered: list[_LakeWork] = []
        #: days with rows found unchanged, compared with the store at close, and the
        #: outbox entries that wait for that
        self._to_sync: set[dt.date] = set()
        self._sync_ids: list[int] = []
        self._writer = writer if contract.time_series else None
        self._refresher = refresher if contract is READING and writer is not None else None
        self._refresh_pool: ThreadPoolExecutor | None = None
        self._refresh_pending: Future[int] | None = None
        self._write_pool: ThreadPoolExecutor | None = None
        #: batches handed to the background writer and not yet accounted, oldest first
        self._flights: collections.deque[_InFlight] = collections.deque()
        #: how many writes have gone to the background writer (the last one's number): a
        #: batch spanning weeks goes in parts (see :func:`_week_slices`)
        self.handed = 0
        #: how many batches of records have been judged (flushed)
        self.batches = 0
        #: set by close(): the batch being flushed is the last
        self._closing = False
        self.history: HistoryCache | None = None
        #: meters' reference attributes (VEE limits, detectors' PV and zone), kept for
        #: ``reference_cache_s`` so a micro-batch does not read them again
        self.meters: MeterCache | None = None
        if contract is READING:
            self.meters = MeterCache(store.meter_attributes, settings.reference_cache_s)
            self.history = HistoryCache(
                lambda ids, since, until: store.load_context(READING, ids, since, until),
                settings.vee.context_days,
            )
        #: the detect stage (metrify.anomaly): its per-subject state is cached for the life
        #: of the pipeline, like VEE's history; a worker drops both caches on rebalance.
        #: meter -> what the load declared of it (its zone by ``--tz``, its commodity and
        #: unit: :mod:`metrify.sources.attributes`), for meters this run may register;
        #: replaced, never changed in place, so the writer thread can read it while the
        #: next batch is decoded
        self._declared: dict[str, dict[str, str]] = {}
        #: described meters whose reference data differs from what the load declared:
        #: meter -> what was kept (told once in the summary's warnings)
        self._overruled: dict[str, str] = {}
        #: register reads turned into intervals (a load that maps only a register)
        self.registers: RegisterStage | None = None
        self.detector: DetectStage | None = None
        if contract.time_series and settings.anomaly.enabled:
            self.detector = DetectStage(
                contract,
                settings.anomaly,
                store.conn,
                meters=self._meter_attributes if self.meters is not None else None,
            )

    # --- input -----------------------------------------------------------------------

    def submit(
        self,
        raw: pl.DataFrame,
        *,
        source: str | pl.Series,
        mapping: Mapping | None = None,
        first_line: int = 0,
        lines: npt.NDArray[np.int64] | None = None,
        bad: Iterable[BadRow] = (),
        decoded: Decoded | None = None,
    ) -> None:
        """Decode one raw batch and buffer it; writes happen in ``batch_size`` chunks.

        ``source``: where the batch came from, or, for a batch gathered from several
        sources (a stream worker's partitions, decoded in one go), one per row of ``raw``.
        ``lines``: each row's line in its file or body, where rows are not consecutive
        lines from ``first_line`` (the reader's :attr:`RawBatch.lines`).
        ``decoded``: ``raw`` already decoded by :meth:`decode` with the same arguments
        (a file load decodes the next batches on a thread while this one is judged).
        """
        bad_rows = list(bad)
        if isinstance(source, pl.Series) and (
            source.len() != raw.height or bad_rows or self.sources is not None
        ):
            raise ValueError("per-row sources need one per raw row, no bad rows, no by_source")
        if decoded is None:
            decoded = self.decode(raw, mapping, first_line=first_line, lines=lines)
        summaries = [self.summary]
        if self.sources is not None:
            summaries.append(self._source(str(source)))
            self._own(decoded.records, str(source))
        for summary in summaries:
            summary.read += raw.height + len(bad_rows)
            for column in decoded.ignored_columns:
                note = (
                    f"ignored column {column!r} "
                    f"(not a field of {self.contract.kind}; map it with --map)"
                )
                if note not in summary.warnings:
                    summary.warnings.append(note)
        self._present.update(decoded.present)
        if self.contract is READING:
            self._declare(decoded, mapping.zone_name if mapping is not None else None)
        if self.contract is EVENT:
            decoded = _name_events(decoded, raw, first_line, lines)
        rejects = _with_source(decoded.rejects, source, decoded.reject_rows)
        carried = decoded.present
        if (
            self.contract is READING
            and mapping is not None
            and isinstance(source, str)
            and mapping.derives_energy(READING, raw.columns)
        ):
            # a derived interval carries its energy and span, and nothing read beside
            carried = [*(f for f in carried if f in _DERIVED_FIELDS), "import_kwh", "interval_s"]
            decoded = self._derive(decoded, mapping, source, first_line, lines)
            derived_rejects = decoded.rejects.with_columns(source=pl.lit(source))
            rejects = pl.concat([rejects, derived_rejects.select(rejects.columns)])
        if bad_rows:
            rejects = pl.concat(
                [
                    rejects,
                    pl.DataFrame(
                        {
                            "raw": [b.raw for b in bad_rows],
                            "reason": [b.reason for b in bad_rows],
                            "line": [b.line for b in bad_rows],
                            "source": [str(source)] * len(bad_rows),
                        },
                        schema={**REJECT_SCHEMA, "source": pl.String()},
                    ),
                ]
            )
        if rejects.height:
            rejects = self._cap(rejects)
        if rejects.height:
            self._rejects.append(rejects)
        if decoded.records.height:
            decoded.records = _mark_absent(self.contract, decoded.records, carried)
            self._buffer.append(_with_source(decoded.records, source, decoded.rows))
            self._buffered += decoded.records.height
            self._widen(decoded.records)
        if self._full():
            self.flush()

    def decode(
        self,
        raw: pl.DataFrame,
        mapping: Mapping | None = None,
        *,
        first_line: int = 0,
        lines: npt.NDArray[np.int64] | None = None,
    ) -> Decoded:
        """``raw`` in the contract's schema, and its rejects: what :meth:`submit` buffers.

        Reads nothing of the pipeline's state but its settings, so a loader may call it
        on another thread, ahead of the batch being judged (Polars releases the GIL)."""
        with tracing.span(
            "decode", {"metrify.kind": self.contract.kind, "metrify.rows": raw.height}
        ):
            return decode(
                self.contract,
                raw,
                mapping or Mapping(),
                first_line=first_line,
                lines=lines,
                check_ranges=not (self.contract is READING and self.settings.vee.enabled),
            )

    def _widen(self, records: pl.DataFrame) -> None:
        """Take the time span of newly buffered rows into :attr:`_span`."""
        if self.detector is None or "ts" not in records.columns:
            return
        first, last = records["ts"].min(), records["ts"].max()
        if not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
            return
        if self._span is not None:
            first, last = min(first, self._span[0]), max(last, self._span[1])
        self._span = (first, last)

    def _full(self) -> bool:
        """Whether the buffer is a batch: ``batch_size`` rows, or up to ``STRETCH`` times
        that when its rows span several weeks.

        The detectors judge a batch week by week (vectorised over the meters of each
        week), so a batch costs a fixed amount per week it spans besides its rows. Files
        that each hold one meter's year (a household export) fill ``batch_size`` with a
        few dozen meters over 53 weeks: judged in small weekly slices, the detectors
        spent most of a load on that fixed part. A longer batch shares each week's pass
        among more meters (a quarter of the passes at four times the size; the verdicts
        do not change, the state carries from batch to batch as from week to week), and
        is written in parts as it is judged (:func:`_week_slices`), so its size does not
        hold the database back. Batches of a fleet's day or a stream's minutes span a
        day or two and keep ``batch_size``."""
        size = self.settings.batch_size
        if self._buffered < size:
            return False
        span = self._span
        if span is None or span[1] - span[0] <= dt.timedelta(days=STRETCH_DAYS):
            return True
        return self._buffered >= STRETCH * size

    def _derive(
        self,
        decoded: Decoded,
        mapping: Mapping,
        source: str,
        first_line: int,
        lines: npt.NDArray[np.int64] | None,
    ) -> Decoded:
        """Register reads into intervals (see :mod:`metrify.pipeline.registers`): the
        decoded reads are replaced by the derived intervals, and the reads that could not
        be used (out of order, conflicting) become rejects."""
        if self.registers is None:
            self.registers = RegisterStage(
                self.store.last_register_reads,
                self._meter_attributes if self.meters is not None else None,
            )
        derived = self.registers.derive(decoded, mapping, first_line=first_line, lines=lines)
        self.summary.duplicates += derived.repeats
        # (the source's estimate marks on reads are carried to the intervals they bound)
        dropped = [f for f in decoded.present if f not in _DERIVED_FIELDS]
        if dropped:
            # Values read beside a register belong to the read's instant, not to an
            # interval: they are not derived, and the user hears so.
            ignored = (
                f"not derived from register reads, so not stored: {', '.join(dropped)} "
                f"(only {REGISTER_FIELD} and the energy derived from it are)"
            )
            if ignored not in self.summary.warnings:
                self.summary.warnings.append(ignored)
        note = (
            f"interval energy derived from {REGISTER_FIELD}: "
            f"{self.registers.reads:,} reads, {self.registers.intervals:,} intervals"
        )
        self.summary.warnings[:] = [
            w for w in self.summary.warnings if not w.startswith(note.split(":")[0])
        ]
        self.summary.warnings.append(note)
        return Decoded(
            records=derived.records,
            rejects=derived.rejects,
            rows=pl.Series("rows", [], dtype=pl.Int32),
        )

    def _cap(self, rejects: pl.DataFrame) -> pl.DataFrame:
        """At most ``max_rejects`` bad rows per source go to quarantine: a small body of
        a million bad elements must not become a million stored rows. The rest are not
        stored but counted (read, rejected, by reason) and named in a warning, so the
        totals still add up and the user knows exactly how many were not kept."""
        cap = self.settings.max_rejects
        counts = list(rejects.group_by("source").len().iter_rows())
        if all(self._kept.get(src, 0) + n <= cap for src, n in counts):
            for src, n in counts:
                self._kept[src] = self._kept.get(src, 0) + n
            return rejects
        kept = []
        for (src,), part in rejects.partition_by(
            "source", as_dict=True, maintain_order=True
        ).items():
            room = max(0, cap - self._kept.get(src, 0))
            self._kept[src] = self._kept.get(src, 0) + min(room, part.height)
            kept.append(part.head(room))
            if part.height > room:
                self._drop(str(src), part.slice(room))
        return pl.concat(kept)

    def _drop(self, source: str, over: pl.DataFrame) -> None:
        """Count bad rows not kept over the cap, and say so once per source."""
        self._dropped[source] = dropped = self._dropped.get(source, 0) + over.height
        prefix = f"quarantine cap reached for {source}: "
        note = (
            f"{prefix}{dropped} more bad row{'s' if dropped != 1 else ''} not kept (at most "
            f"{self.settings.max_rejects} are, METRIFY_MAX_REJECTS); they count as rejected"
        )
        tallies = list(over.group_by("reason").len().iter_rows())
        summaries = [self.summary]
        if self.sources is not None:
            summaries.append(self._source(source))
        for summary in summaries:
            summary.rejected += over.height
            summary.not_kept += over.height
            for reason, count in tallies:
                summary.reasons[reason] += count
            summary.warnings[:] = [w for w in summary.warnings if not w.startswith(prefix)]
            summary.warnings.append(note)

    def error(self, message: str) -> None:
        """Record a problem with a whole input (unreadable file); the run goes on."""
        self.summary.errors.append(message)

    # --- output ----------------------------------------------------------------------

    def flush(self) -> None:
        """Validate and durably write everything buffered."""
        if not tracing.enabled():
            self._flush()
            return
        with tracing.span(
            "pipeline batch", {"metrify.kind": self.contract.kind, "metrify.rows": self._buffered}
        ):
            self._flush()

    def _flush(self) -> None:
        rejects = _quarantine_frame(self.contract.kind, self._rejects)
        self._rejects = []
        records = pl.concat(self._buffer, how="diagonal") if self._buffer else None
        self._buffer, self._buffered, self._span = [], 0, None
        if records is None:
            if rejects.height:
                self.store.write_quarantine(rejects)
                self._count_rejects(rejects)
            return
        self.batches += 1
        dedup = dedupe_batch(self.contract, records, ignore=(ABSENT, *_ORIGIN))
        self.summary.duplicates += dedup.identical
        if self.sources is not None and dedup.identical:
            self._add_counts(
                dedup.repeats.group_by("source").agg(duplicates=pl.len().cast(pl.Int64))
            )
        if dedup.superseded.height:
            carried = _ORIGIN[1] in dedup.superseded.columns  # the input's own line and row
            superseded = dedup.superseded.select(
                raw=pl.col(_ORIGIN[1])
                if carried
                else pl.struct(pl.exclude("source", ABSENT)).struct.json_encode(),
                reason=pl.lit("conflicting duplicate in batch (later row kept)"),
                line=pl.col(_ORIGIN[0]) if carried else pl.lit(None, dtype=pl.Int32),
                kind=pl.lit(self.contract.kind),
                source=pl.col("source"),
            )
            rejects = pl.concat([rejects, superseded.select(rejects.columns)])
        if self.contract.time_series:
            unmarked, lacking = _split_absent(self.contract, dedup.records)
            judged, flags = split_flags(unmarked)
            assessed = self._quality(judged).with_columns(
                ingested_at=pl.lit(dt.datetime.now(dt.UTC)).dt.cast_time_unit("us")
            )
            if flags is not None:
                assessed = apply_flags(assessed, flags)
            if self._writer is not None:
                # Judged and handed to the writer a few weeks at a time: the database
                # writes the first weeks while the detectors judge the next. VEE's
                # history takes the parts once all are handed over: no VEE runs in
                # between, and a part's rows all follow the part before's, so the rows
                # each part may find stored are the same either way.
                written: list[pl.DataFrame] = []
                parts = _week_slices(assessed, self._slice_rows())
                held: pl.DataFrame | None = None
                # A part's verdicts go with the write that takes the last of its rows:
                # its own, or the next when some are held (held rows are only ever the
                # latest part's: each write takes all rows held before it).
                waiting: list[Pending] = []
                for number, part in enumerate(parts):
                    part, pending = self._detect(part)
                    if lacking is not None:
                        part = _rejoin_absent(self.contract, part, lacking)
                    upto = parts[number + 1]["ts"].min() if number + 1 < len(parts) else None
                    assert upto is None or isinstance(upto, dt.datetime)
                    part, held = _whole_months(held, part, upto, self.contract.key[0])
                    verdicts = [] if pending is None else [pending]
                    if held is None:
                        released, waiting = [*waiting, *verdicts], []
                    else:
                        released, waiting = waiting, verdicts
                    # Earlier parts, written meanwhile: the writer takes them in order
                    # (a write starts only once the one before it succeeded), and this
                    # part queues behind at most one: the next part is judged while
                    # two are written, so the writer never waits for the detectors
                    # after a part that was quick to write. The first part of a batch
                    # waits for every earlier batch, as a batch always has. Their
                    # counting, lake hand-over and anomaly records follow this start.
                    previous = self._take_ahead(WRITES_AHEAD if number else 1)
                    try:
                        written.append(
                            self._start_write(
                                part, rejects if not written else rejects.clear(), released
                            )
                        )
                    finally:
                        for finished in previous:
                            self._account(finished)
                assert held is None and not waiting
                # while the batch is being written; a last batch teaches no one (a
                # year's load spent 0.3 s here beside its last write)
                if self.history is not None and not self._closing:
                    self.history.remember(pl.concat(written) if len(written) > 1 else written[0])
                return
            assessed, pending = self._detect(assessed)
            if lacking is not None:  # after the quality stage and detectors: unseen by them
                assessed = _rejoin_absent(self.contract, assessed, lacking)
            result = self.write_versions(assessed, quarantine=rejects)
            if pending is not None and self.detector is not None:
                # The batch is durable: now its anomalies are recorded and alerted.
                self.detector.commit(pending)
        elif self.contract is EVENT:
            records = dedup.records.drop(_ORIGIN, strict=False).with_columns(
                ingested_at=pl.lit(dt.datetime.now(dt.UTC)).dt.cast_time_unit("us")
            )
            result = events.write(
                self.store.conn, records, quarantine=rejects, outbox=self.lake is not None
            )
            records = _stored_values(EVENT, records, result)
            self.summary.accepted += records.height
            if self.lake is not None and records.height:
                # the same hand-over as a time series: the lake gets what changed, and
                # the days of unchanged events are compared before their entries go
                assert result.changed_keys is not None
                changed = records.join(result.changed_keys, on=list(EVENT.key), how="semi")
                self._write_lake(_LakeWork(changed, result.outbox, result.unchanged_days))
        else:
            # Reference rows carry no quality flags; their own 'status' is lifecycle.
            columns = [c for c in self.contract.fields if c in self._present]
            records, rejects = _known_commodities(dedup.records, rejects, self.contract.kind)
            result = self.store.write_reference(
                self.contract, records.select(columns), quarantine=rejects
            )
            self.summary.accepted += records.height
        self._count_write(result, rejects)

    def _detect(self, assessed: pl.DataFrame) -> tuple[pl.DataFrame, Pending | None]:
        """The detectors' verdicts on judged rows (none without detectors)."""
        if self.detector is None:
            return assessed, None
        with tracing.span("detect", {"metrify.kind": self.contract.kind}):
            return self.detector.detect(assessed)

    def _slice_rows(self) -> int:
        """Rows per part a batch is detected and written in (see :func:`_week_slices`)."""
        return max(1, self.settings.batch_size // SLICES)

    def _count_write(self, result: WriteResult, rejects: pl.DataFrame) -> None:
        self.summary.inserted += result.inserted
        self.summary.updated += result.updated
        self.summary.unchanged += result.unchanged
        if result.by_id is not None:
            owned = self._owned(result.by_id, "id").drop("id", "unknown")
            self._add_counts(owned.group_by("source").sum())
        self._count_rejects(rejects)

    def _own(self, records: pl.DataFrame, source: str) -> None:
        """Note ``source`` as the owner of the records' ids (see ``by_source``)."""
        for ident in records.get_column(self.contract.key[0]).unique().to_list():
            if self._owners.setdefault(ident, source) != source:
                raise ValueError(f"{ident!r} comes from two sources of a by-source run")

    def _owned(self, frame: pl.DataFrame, key: str) -> pl.DataFrame:
        """``frame`` with ``source`` set to the owner of each row's id ``key``."""
        owners = self._owners
        return frame.with_columns(
            source=pl.col(key).replace_strict(
                list(owners), list(owners.values()), default=None, return_dtype=pl.String
            )
        ).filter(pl.col("source").is_not_null())

    def _source(self, source: str) -> Summary:
        assert self.sources is not None
        summary = self.sources.get(source)
        if summary is None:
            summary = self.sources[source] = Summary(kind=self.contract.kind)
        return summary

    def _add_counts(self, counts: pl.DataFrame) -> None:
        """Add per-source counts (a ``source`` column, then Summary fields) to each
        source's summary."""
        for row in counts.iter_rows(named=True):
            summary = self._source(row.pop("source"))
            for name, value in row.items():
                setattr(summary, name, getattr(summary, name) + value)

    def _add_tallies(self, frame: pl.DataFrame, attribute: str, column: str) -> None:
        """Count ``frame``'s rows per source and ``column`` value into each source's
        ``attribute`` Counter (statuses, reasons)."""
        for source, value, count in frame.group_by("source", column).len().iter_rows():
            getattr(self._source(source), attribute)[value] += count

    def write_versions(
        self,
        assessed: pl.DataFrame,
        *,
        quarantine: pl.DataFrame | None = None,
        reason: str = "corrected",
    ) -> WriteResult:
        """Store judged rows (the database, daily quality scores, the lake) and count them.

        The one write path for time series: batches from any source and operators' edits
        (which carry their own ``reason``) both end here, directly or, for a long load,
        through :meth:`_start_write` on the background writer.
        """
        versions = self._versions(assessed)
        likely_stored = self.history.seen(versions) if self.history is not None else None
        result = self._write_series(self.store, versions, quarantine, likely_stored, reason)
        self._stored(versions, result, background=False)
        return result

    @tracing.traced("write")
    def _write_series(
        self,
        store: PostgresStore,
        versions: pl.DataFrame,
        quarantine: pl.DataFrame | None,
        likely_stored: pl.DataFrame | None,
        reason: str = "corrected",
    ) -> WriteResult:
        return store.write_series(
            self.contract,
            versions,
            unknown=self.settings.unknown_meters,
            quarantine=quarantine,
            reason=reason,
            likely_stored=likely_stored,
            by_id=self.sources is not None,
            declared=self._declared or None,
            outbox=self.lake is not None,
        )

    def _meter_attributes(self, ids: pl.Series) -> pl.DataFrame:
        """The meters' reference attributes with what the load declared of them
        (:func:`_with_declared`): what VEE, the register derivation and the detectors
        judge a meter by (its clock, its commodity, its unit)."""
        assert self.meters is not None
        return _with_declared(self.meters.get(ids), ids, self._declared)

    def _note_overruled(self, overruled: dict[str, str]) -> None:
        """Say, in the summary's warnings, which described meters kept their reference
        data over what the load declared: the load is judged by the reference row,
        which is right, but the user asked otherwise and must hear why."""
        if not overruled:
            return
        self._overruled.update(overruled)
        marker = " reference data over what the load declared"
        self.summary.warnings[:] = [w for w in self.summary.warnings if marker not in w]
        count = len(self._overruled)
        first = min(self._overruled)
        whose = "1 meter kept its" if count == 1 else f"{count} meters kept their"
        self.summary.warnings.append(
            f"{whose}{marker} (e.g. {first}: {self._overruled[first]}); a meters file"
            " changes reference data"
        )

    def _declare(self, decoded: Decoded, zone: str | None) -> None:
        """Remember what a batch declares of its meters, where not declared before: the
        zone ``--tz`` names (UTC, every meter's default, is no declaration) and the
        attributes the source declares (:attr:`Decoded.declared`)."""
        new: dict[str, dict[str, str]] = {}
        known = self._declared
        if zone is not None and zone != "UTC":
            for meter in decoded.records.get_column("meter_id").unique().to_list():
                if "timezone" not in known.get(meter, {}):
                    new.setdefault(meter, {})["timezone"] = zone
        if decoded.declared is not None:
            for row in decoded.declared.iter_rows(named=True):
                meter = row.pop("meter_id")
                for name, value in row.items():
                    if value is not None and name not in known.get(meter, {}):
                        new.setdefault(meter, {})[name] = value
        if new:
            self._declared = {
                **known,
                **{m: {**known.get(m, {}), **given} for m, given in new.items()},
            }
            if self.meters is not None:  # (each declaration weighed once, when first made)
                self._note_overruled(_overruled(self.meters.get(pl.Series(list(new))), new))

    def _versions(self, assessed: pl.DataFrame) -> pl.DataFrame:
        columns = [*self.contract.fields, "quality", "status", "source", "ingested_at"]
        if ABSENT in assessed.columns:
            columns.append(ABSENT)
        if "ingested_at" not in assessed.columns:
            assessed = assessed.with_columns(
                ingested_at=pl.lit(dt.datetime.now(dt.UTC)).dt.cast_time_unit("us")
            )
        return assessed.select(columns)

    def _stored(self, versions: pl.DataFrame, result: WriteResult, *, background: bool) -> None:
        """Count a durable batch, keep VEE's history, refresh scores, send it to the lake.

        ``background``: written by the background writer, which has refreshed the scores
        if due, and whose history was remembered when the write began."""
        versions = _stored_values(self.contract, versions, result)
        gaps = versions.filter((pl.col("quality") & int(Quality.MISSING)) != 0)
        self.summary.gaps += gaps.height
        self.summary.estimated += gaps.filter(pl.col("status") == Status.ESTIMATED.value).height
        self.summary.accepted += versions.height - gaps.height - result.unknown_quarantined
        for status, count in versions.group_by("status").len().iter_rows():
            self.summary.statuses[status] += count
        rejected_rows = versions.filter(pl.col("status") == Status.REJECTED.value).height
        self.summary.rejected += rejected_rows + result.unknown_quarantined
        self.summary.quarantined += result.unknown_quarantined
        unknown = f"unknown {self.contract.key[0]}"
        if result.unknown_quarantined:
            self.summary.reasons[unknown] += result.unknown_quarantined
        if self.sources is not None:
            self._count_sources(versions, result, unknown)
        if self.history is not None:
            if result.unknown_quarantined or result.kept is not None:
                # some rows were not stored after all, or were updated keeping stored
                # values of fields this batch did not carry
                self.history.forget()
            elif not background and not self._closing:  # a last batch teaches no one
                self.history.remember(versions)
        if self.contract is READING and not background:
            self._refresh_quality(force=False)
        if self.lake is not None:
            changed = versions
            if result.changed_keys is not None:
                changed = versions.join(result.changed_keys, on=list(self.contract.key), how="semi")
            self._write_lake(_LakeWork(changed, result.outbox, result.unchanged_days))

    def _count_sources(self, versions: pl.DataFrame, result: WriteResult, unknown: str) -> None:
        """:meth:`_stored`'s counts per source (each row's, by its id's owner)."""
        missing = (pl.col("quality") & int(Quality.MISSING)) != 0
        status = pl.col("status")
        versions = self._owned(versions, self.contract.key[0])
        counts = versions.group_by("source").agg(
            gaps=missing.sum(),
            estimated=(missing & (status == Status.ESTIMATED.value)).sum(),
            accepted=(~missing).sum(),
            rejected=(status == Status.REJECTED.value).sum(),
        )
        if result.by_id is not None:
            gone = self._owned(result.by_id.filter(pl.col("unknown") > 0), "id")
            gone = gone.group_by("source").agg(pl.col("unknown").sum())
            counts = counts.join(gone.select("source", "unknown"), on="source", how="left")
            counts = counts.with_columns(pl.col("unknown").fill_null(0))
            counts = counts.with_columns(
                accepted=pl.col("accepted") - pl.col("unknown"),
                rejected=pl.col("rejected") + pl.col("unknown"),
                quarantined=pl.col("unknown"),
            ).drop("unknown")
            for source, count in gone.select("source", "unknown").iter_rows():
                self._source(source).reasons[unknown] += count
        self._add_counts(counts)
        self._add_tallies(versions, "statuses", "status")

    def _start_write(
        self, assessed: pl.DataFrame, rejects: pl.DataFrame, pendings: list[Pending]
    ) -> pl.DataFrame:
        """Hand a judged batch to the background writer; returns its versions for VEE's
        history (the caller gives them to it), so the next batch is validated against
        them while they are being written."""
        assert self._writer is not None
        versions = self._versions(assessed)
        likely_stored = None
        if self.history is not None:
            likely_stored = self.history.seen(versions)  # before this batch is remembered
        if self._write_pool is None:
            self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write")
        refresh = self.contract is READING and self._refresher is None and self._quality_due()
        self.handed += 1
        now = time.monotonic()
        # A closing batch defers too: close() saves the state while it is written.
        defer = (self._state_every_s > 0 and self._closing) or (
            now - self._state_saved < self._state_every_s
        )
        if not defer:
            self._state_saved = now
        merged = threading.Event()
        write = self._write_pool.submit(
            tracing.carry(self._write_job),
            self._flights[-1].write if self._flights else None,
            versions,
            rejects,
            pendings,
            refresh,
            likely_stored,
            defer,
            merged,
        )
        self._flights.append(
            _InFlight(
                write, versions, rejects, pendings, self.handed, defer and bool(pendings), merged
            )
        )
        return versions

    def _write_job(
        self,
        after: Future[WriteResult] | None,
        versions: pl.DataFrame,
        rejects: pl.DataFrame,
        pendings: list[Pending],
        refresh: bool,
        likely_stored: pl.DataFrame | None,
        defer_state: bool = False,
        merged: threading.Event | None = None,
    ) -> WriteResult:
        """On the writer thread and connection: the batch, then what only needs the
        database once it is durable (detector state, unless deferred; due daily scores).

        Deferred state is merged before the batch is written (it is memory only), so that
        :meth:`close` can save it while the batch is still being written.

        ``after``: the write queued before this one (done: the writer has one thread). A
        batch is never written after one that failed: its rows would be stored past a
        hole, and the detectors' state past rows never stored."""
        assert self._writer is not None
        if after is not None and after.exception() is not None:
            raise RuntimeError("an earlier batch's write failed") from after.exception()
        try:
            if defer_state and self.detector is not None:
                for pending in pendings:
                    self.detector.save_state(pending, defer=True)
        finally:
            if merged is not None:
                merged.set()
        result = self._write_series(self._writer, versions, rejects, likely_stored)
        if not defer_state and self.detector is not None:
            for pending in pendings:
                self.detector.save_state(pending, self._writer.conn)
        if refresh:
            self._writer.refresh_quality_daily()
        return result

    def _finish_write(self, upto: int | None = None) -> None:
        """Wait for the batches in flight (``upto``: those numbered up to it); once each
        is durable, count it and record its anomalies, in order."""
        while self._flights and (upto is None or self._flights[0].number <= upto):
            self._account(self._take_finished())

    def _take_ahead(self, limit: int) -> list[tuple[_InFlight, WriteResult]]:
        """Wait for the oldest batches in flight until fewer than ``limit`` are."""
        done = []
        while len(self._flights) >= limit:
            finished = self._take_finished()
            assert finished is not None
            done.append(finished)
        return done

    def _take_finished(self) -> tuple[_InFlight, WriteResult] | None:
        """Wait for the oldest batch in flight to be durable (a failed write raises here,
        and nothing is counted); it is then no longer in flight."""
        if not self._flights:
            return None
        in_flight = self._flights.popleft()
        return in_flight, in_flight.write.result()

    def _account(self, finished: tuple[_InFlight, WriteResult] | None) -> None:
        """Count a durable batch, hand it to the lake, record its anomalies."""
        if finished is None:
            return
        in_flight, result = finished
        self._stored(in_flight.versions, result, background=True)
        if self.detector is not None:
            for pending in in_flight.pendings:
                self.detector.commit(pending, state_saved=True)
        self._count_write(result, in_flight.rejects)
        if self._refresher is not None:
            self._refresh_in_background()

    def _refresh_in_background(self) -> None:
        """Start the due refresh of daily scores on the refresher's connection, unless the
        last one still runs. It reads committed rows only, so it overlaps the next
        batches' writes; the stale marks are durable, so a refresh that fails loses
        nothing (logged; the next one takes the marks again)."""
        pending = self._refresh_pending
        if pending is not None and not pending.done():
            return
        self._collect_refresh()
        if not self._quality_due():
            return
        assert self._refresher is not None
        if self._refresh_pool is None:
            self._refresh_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scores")
        self._refresh_pending = self._refresh_pool.submit(
            tracing.carry(self._refresher.refresh_quality_daily)
        )

    def _collect_refresh(self) -> None:
        """Wait for the background refresh, if any; log its failure."""
        pending, self._refresh_pending = self._refresh_pending, None
        if pending is None:
            return
        try:
            pending.result()
        except Exception as exc:  # the marks stay for the next refresh
            log.error("daily quality score refresh failed: %s", exc)

    def _quality(self, records: pl.DataFrame) -> pl.DataFrame:
        """The quality stage: full VEE for readings (with stored history), flags for the rest.

        Readings are first turned from their meter's unit into the contract's (a gas
        volume into energy, MWh or GJ into kWh), and after VEE judged on what only the
        commodity and the meter's place tell (:mod:`metrify.quality.commodities`)."""
        if self.contract is not READING or self.meters is None:
            with tracing.span("validate", {"metrify.kind": self.contract.kind}):
                return assess_plain(records)
        ids = records["meter_id"]
        meters = self._meter_attributes(ids)
        if self.registers is not None:
            meters = self.registers.vee_meters(meters, ids)
        records = to_contract_units(records, meters, self.settings.commodities)
        if not self.settings.vee.enabled:
            with tracing.span("validate", {"metrify.kind": self.contract.kind}):
                return assess_plain(records)
        assessed = self._vee(records, meters)
        assessed = self._outage_gaps(assessed)
        assessed, reasons = commodity_checks(assessed, meters)
        for reason, count in reasons.items():
            key = f"vee: {reason}"
            self.summary.reasons[key] += count
            total = self.summary.reasons[key]
            suffix = f" judged: {reason}"
            self.summary.warnings[:] = [w for w in self.summary.warnings if not w.endswith(suffix)]
            self.summary.warnings.append(f"{total} reading{'s' if total != 1 else ''}{suffix}")
        return assessed

    def _outage_gaps(self, assessed: pl.DataFrame) -> pl.DataFrame:
        """Gap rows inside a power outage the meters reported, estimated as zero."""
        gaps = assessed.filter((pl.col("quality") & int(Quality.MISSING)) != 0)
        if not gaps.height:
            return assessed
        first, last = gaps["ts"].min(), gaps["ts"].max()
        assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
        ids = gaps["meter_id"].unique().to_list()
        found = events.outages(self.store.conn, ids, first, last + dt.timedelta(days=1))
        return zero_outage_gaps(assessed, found)[0]

    def _vee(self, records: pl.DataFrame, meters: pl.DataFrame) -> pl.DataFrame:
        """VEE of a batch of readings against the stored history it needs."""
        cfg = self.settings.vee
        last = records["ts"].max()
        assert isinstance(last, dt.datetime)
        assert self.history is not None
        reach = None
        if cfg.lean_context:
            first = records["ts"].min()
            assert isinstance(first, dt.datetime)
            oldest = first - dt.timedelta(days=cfg.context_days)
            reach = reach_of(records, meters, cfg, oldest)
        context = self.history.get(records.select("meter_id", "ts"), last, reach)
        return run_vee(records, context, meters, cfg, dt.datetime.now(dt.UTC), lean=True)

    def _count_rejects(self, rejects: pl.DataFrame) -> None:
        self.summary.rejected += rejects.height
        self.summary.quarantined += rejects.height
        for reason, count in rejects.group_by("reason").len().iter_rows():
            self.summary.reasons[reason] += count
        if self.sources is not None and rejects.height:
            self._add_counts(
                rejects.group_by("source").agg(
                    rejected=pl.len().cast(pl.Int64), quarantined=pl.len().cast(pl.Int64)
                )
            )
            self._add_tallies(rejects, "reasons", "reason")

    def _write_lake(self, work: _LakeWork) -> None:
        """Append a durable batch's new and changed rows to the lake (on the lake thread);
        with ``defer_lake``, keep it for :meth:`publish_lake`."""
        assert self.lake is not None
        if self._defer_lake:
            self._held.append(work)
            return
        if self._lake_rows > 0:
            self._gathered.append(work)
            if sum(w.frame.height for w in self._gathered) >= self._lake_rows or (
                _span(self._gathered) >= dt.timedelta(days=LAKE_DAYS)
            ):
                self._send_gathered()
            return
        self._send_lake(work)

    def _send_lake(self, work: _LakeWork) -> None:
        """Start writing ``work`` on the lake thread, once the write before it is done."""
        assert self.lake is not None
        self._wait_lake()
        if self._lake_pool is None:
            self._lake_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake")
        future = self._lake_pool.submit(
            tracing.carry(self.lake.write), self.contract.kind, work.frame
        )
        self._lake_pending = (future, work)

    def _take_gathered(self) -> _LakeWork:
        """The gathered lake work as one (their rows, outbox entries and days)."""
        works, self._gathered = self._gathered, []
        if len(works) == 1:
            return works[0]
        return _LakeWork(
            pl.concat([w.frame for w in works], how="diagonal_relaxed"),
            [i for w in works for i in w.outbox],
            sorted({d for w in works for d in w.unchanged_days}),
        )

    def _send_gathered(self) -> None:
        """Hand the gathered lake work (if any) to the lake thread."""
        if self._gathered:
            self._send_lake(self._take_gathered())

    def _wait_lake(self) -> None:
        """Wait for the lake write in flight. Done, its outbox entries are cleared, or,
        if it had unchanged rows, left for :meth:`_sync_lake`; failed, they stay for the
        next catch-up."""
        pending, self._lake_pending = self._lake_pending, None
        if pending is None:
            return
        future, work = pending
        try:
            self.summary.lake_files += future.result()
        except Exception as exc:  # the database already holds the batch durably
            self._lake_failed("lake write failed", exc)
            return
        if work.unchanged_days:
            self._to_sync.update(work.unchanged_days)
            self._sync_ids += work.outbox
        else:
            lake_outbox.clear(self.store.conn, work.outbox)

    def _lake_failed(self, what: str, exc: Exception) -> None:
        log.error("%s: %s", what, exc)
        self.summary.errors.append(
            # masked: an s3:// lake URL may carry its access key and secret
            f"{what} ({mask_url(self.lake.url) if self.lake else ''}): {exc}"
        )

    def _sync_lake(self) -> None:
        """Compare the days that had unchanged rows with the store, rewrite those the lake
        lacks rows of, then clear their entries (a failure leaves them to a catch-up)."""
        days, ids = sorted(self._to_sync), self._sync_ids
        self._to_sync, self._sync_ids = set(), []
        if self.lake is None or not days:
            return
        try:
            lakesync.sync_days(self.store.conn, self.lake, self.contract, days)
        except Exception as exc:
            self._lake_failed("lake catch-up failed", exc)
            return
        lake_outbox.clear(self.store.conn, ids)

    def publish_lake(self) -> None:
        """With ``defer_lake``: write the run's lake work now that the caller committed
        it, and clear its outbox entries. Failures are logged and in :attr:`summary`;
        the entries then stay for the next catch-up."""
        held, self._held = self._held, []
        self._defer_lake = False
        for work in held:
            self._write_lake(work)
        self._send_gathered()
        self._wait_lake()
        self._sync_lake()
        if self._lake_pool is not None:
            self._lake_pool.shutdown()
            self._lake_pool = None

    def _refresh_quality(self, *, force: bool) -> None:
        """Recompute the daily quality scores the writes marked stale, at most every
        ``quality_refresh_s`` (the marks are durable, so waiting loses nothing)."""
        if force or self._quality_due():
            self.store.refresh_quality_daily()

    def _quality_due(self) -> bool:
        """Whether the refresh period has passed (and if so, start the next one)."""
        now = time.monotonic()
        if now - self._quality_refreshed < self.settings.quality_refresh_s:
            return False
        self._quality_refreshed = now
        return True

    def settle(self, upto: int | None = None) -> Summary:
        """Wait until everything flushed so far is durable (database and lake); the
        pipeline goes on. A stream worker calls this before committing offsets.

        ``upto``: wait only for the batches up to that number (:attr:`handed` when they
        were flushed). A worker lands one batch while the next is being written: had it
        waited for that one too, writing would never overlap the next batch's work.
        """
        self._finish_write(upto)
        # A stream's sources (its partitions) never end: each settled micro-batch starts
        # a new quarantine cap, as each file or request does.
        self._kept = {}
        # Batches before the one in flight were finished by the flush that started it,
        # which also handed them to the lake: the lake is one batch behind at most.
        self._send_gathered()
        self._wait_lake()
        return self.summary

    def abandon(self) -> None:
        """Stop background work without waiting (the session failed; nothing counts).

        A running score refresh is waited for: the session closes its connection next,
        and a connection closed under a thread still using it is not safe to reuse."""
        if self._refresh_pool is not None:
            self._refresh_pool.shutdown(wait=True, cancel_futures=True)
        for pool in (self._write_pool, self._lake_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._write_pool = self._lake_pool = self._refresh_pool = None
        self._flights.clear()
        self._lake_pending = self._refresh_pending = None
        self._gathered = []  # their days stay in the lake outbox for the catch-up

    def close(self, *, final: bool = True) -> Summary:
        """Flush and return the summary of everything submitted.

        The batch is durable on return. ``final=False`` (a stream worker, which closes
        after every micro-batch and goes on) leaves the daily quality scores to their
        refresh period; otherwise they are brought up to date.
        """
        self._closing = True
        try:
            self.flush()
            # all but the last write accounted first: their lake work goes with what
            # is gathered, while the last is being written
            for finished in self._take_ahead(2):
                self._account(finished)
            if self._flights:
                # The lake work gathered from batches already durable is written while
                # the last batch is: left for after that write, the two ran one after
                # the other at the end of the load, with a core idle during each.
                self._send_gathered()
            in_flight = self._flights[-1] if self._flights else None
            if in_flight is not None and in_flight.defers_state:
                assert self.detector is not None
                # The deferred state, the last batch's included, is upserted on this
                # connection while the writer stores that batch, and commits only once
                # the batch is durable: never ahead of it, and the two overlap.
                in_flight.merged.wait()
                with self.store.conn.transaction():
                    self.detector.save_deferred()
                    self._finish_write()
            else:
                self._finish_write()
                if self.detector is not None:  # the last flush may have had no batch
                    self.detector.save_deferred()
            self._collect_refresh()
            # A meters file that changes a zone marks that meter's days (see rezone).
            if final and self.contract in (READING, METER):
                self._refresh_quality(force=True)
        finally:
            for pool in (self._write_pool, self._refresh_pool):
                if pool is not None:
                    pool.shutdown()
            self._write_pool = self._refresh_pool = None
        self._send_gathered()
        self._wait_lake()
        if not self._defer_lake:
            self._sync_lake()
        if self._lake_pool is not None:
            self._lake_pool.shutdown()
            self._lake_pool = None
        self.summary.seconds = time.perf_counter() - self._started
        return self.summary


def _span(works: list[_LakeWork]) -> dt.timedelta:
    """The time the rows of ``works`` span (none: zero)."""
    firsts = [w.frame["ts"].min() for w in works if w.frame.height]
    lasts = [w.frame["ts"].max() for w in works if w.frame.height]
    times = [t for t in (*firsts, *lasts) if isinstance(t, dt.datetime)]
    return max(times) - min(times) if times else dt.timedelta(0)


def _quarantine_frame(kind: str, parts: list[pl.DataFrame]) -> pl.DataFrame:
    schema = {**REJECT_SCHEMA, "source": pl.String()}
    frames = [p.select(list(schema)) for p in parts]
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return frame.with_columns(kind=pl.lit(kind)).select(["kind", "source", "raw", "reason", "line"])


def _with_source(frame: pl.DataFrame, source: str | pl.Series, rows: pl.Series) -> pl.DataFrame:
    """``frame`` with its ``source`` column: one for all, or each row's (at ``rows`` of
    the per-row sources)."""
    if isinstance(source, str):
        return frame.with_columns(source=pl.lit(source))
    return frame.with_columns(source=source.gather(rows))


def _mark_absent(contract: Contract, records: pl.DataFrame, carried: list[str]) -> pl.DataFrame:
    """Time-series ``records`` with their :data:`ABSENT` mask when their input did not
    carry some value field (unchanged when it carried all, the usual case).

    Absence is judged per input batch (a file's chunk, an HTTP body, a stream poll):
    a field no record of it carries. A JSON record that lacks a key others of its batch
    have gives null there, as an empty cell does."""
    if not contract.time_series and contract is not EVENT:
        return records
    mask = absent_mask(contract, carried)
    return records.with_columns(pl.lit(mask, dtype=pl.Int32).alias(ABSENT)) if mask else records


def _split_absent(
    contract: Contract, records: pl.DataFrame
) -> tuple[pl.DataFrame, int | pl.DataFrame | None]:
    """``records`` without their :data:`ABSENT` mask, so the quality stage and detectors
    see what they did, and the mask: one for all rows (the usual case: a batch of one
    file or one stream), by key when the rows' inputs differ, None when nothing lacks."""
    if ABSENT not in records.columns:
        return records, None
    masks = records.get_column(ABSENT)
    if not masks.null_count() and masks.n_unique() == 1:
        return records.drop(ABSENT), int(masks[0])
    key = list(contract.key)
    lacking = records.filter(pl.col(ABSENT).fill_null(0) != 0).select(*key, ABSENT)
    return records.drop(ABSENT), lacking if lacking.height else None


def _rejoin_absent(
    contract: Contract, assessed: pl.DataFrame, lacking: int | pl.DataFrame
) -> pl.DataFrame:
    """Judged rows with the :data:`ABSENT` mask :func:`_split_absent` took off. One mask
    for all also covers the rows the quality stage added (gaps, estimates): they carry
    no more than their batch.

    A field the unit conversion fills (:data:`CONVERTED_FIELDS`: a gas meter's volume,
    from the ``import_kwh`` its input carried) is carried where it was filled, or a
    correction of a stored reading would keep the old volume beside the new energy."""
    if isinstance(lacking, int):
        out = assessed.with_columns(pl.lit(lacking, dtype=pl.Int32).alias(ABSENT))
    else:
        key = list(contract.key)
        out = assessed.join(lacking, on=key, how="left", maintain_order="left")
    for name in CONVERTED_FIELDS:
        if name not in out.columns or out.get_column(name).null_count() == out.height:
            continue
        carried = ~absent_mask(contract, [f for f in contract.value_fields if f != name])
        out = out.with_columns(
            pl.when(pl.col(name).is_not_null())
            .then(pl.col(ABSENT) & carried)
            .otherwise(pl.col(ABSENT))
            .alias(ABSENT)
        )
    return out


def _stored_values(contract: Contract, versions: pl.DataFrame, result: WriteResult) -> pl.DataFrame:
    """The written ``versions`` as the store now holds them, for the lake and VEE's
    history: without the :data:`ABSENT` mask, and with the stored values of the fields
    an updated row did not carry (:attr:`WriteResult.kept`)."""
    if ABSENT not in versions.columns:
        return versions
    versions = versions.drop(ABSENT)
    if result.kept is None or not result.kept.height:
        return versions
    return versions.update(result.kept, on=list(contract.key), how="left", include_nulls=True)


def _with_declared(
    meters: pl.DataFrame, ids: pl.Series, declared: dict[str, dict[str, str]]
) -> pl.DataFrame:
    """The meters' attributes with what the load declared of them (``--tz``, a commodity,
    a unit): a meter this run registers gets them (see
    :meth:`PostgresStore.write_series`), and its first batch is judged as the next will
    be (its local hours and days, its commodity's rules, its unit). A meter an earlier
    load registered (status unregistered: what it holds is that load's word or the
    defaults) takes them over what it holds, as its row will; a described meter keeps
    its reference data and takes a declaration only where it has none."""
    given = {m: declared[m] for m in ids.unique().to_list() if m in declared}
    if not given:
        return meters
    frame, names = _declared_frame(given)
    absent = frame.join(meters.select("meter_id"), on="meter_id", how="anti")
    if absent.height:
        meters = pl.concat([meters, absent.select("meter_id")], how="diagonal_relaxed")
    missing = [c for c in names if c not in meters.columns]
    if missing:
        meters = meters.with_columns(pl.lit(None, dtype=pl.String()).alias(c) for c in missing)
    loaded = (
        pl.col("status").is_null() | (pl.col("status") == MeterStatus.UNREGISTERED.value)
        if "status" in meters.columns
        else pl.lit(True)
    )
    return (
        meters.join(frame, on="meter_id", how="left", maintain_order="left")
        .with_columns(
            pl.when(loaded)
            .then(pl.coalesce(f"_d_{c}", c))
            .otherwise(pl.coalesce(c, f"_d_{c}"))
            .alias(c)
            for c in names
        )
        .drop(f"_d_{c}" for c in names)
    )


def _declared_frame(declared: dict[str, dict[str, str]]) -> tuple[pl.DataFrame, list[str]]:
    """What a load declared of its meters as a frame (``meter_id``, ``_d_<attribute>``
    for each attribute any of them declares), and those attributes' names."""
    names = [c for c in DECLARED if any(c in attrs for attrs in declared.values())]
    frame = pl.DataFrame(
        {
            "meter_id": list(declared),
            **{f"_d_{c}": [a.get(c) for a in declared.values()] for c in names},
        },
        schema={"meter_id": pl.String(), **{f"_d_{c}": pl.String() for c in names}},
    )
    return frame, names


def _overruled(meters: pl.DataFrame, declared: dict[str, dict[str, str]]) -> dict[str, str]:
    """The described meters (a status other than unregistered) whose reference data
    holds another value than the load declared: meter -> ``commodity electricity, not
    gas``. A value the reference row lacks is no conflict (the declaration fills it)."""
    if "status" not in meters.columns or not declared:
        return {}
    frame, names = _declared_frame(declared)
    described = meters.filter(
        pl.col("status").is_not_null() & (pl.col("status") != MeterStatus.UNREGISTERED.value)
    ).join(frame, on="meter_id")
    out: dict[str, list[str]] = {}
    for name in names:
        if name not in described.columns:
            continue
        stored, given = pl.col(name).cast(pl.String), pl.col(f"_d_{name}")
        clash = described.filter(stored.is_not_null() & given.is_not_null() & (stored != given))
        for meter, held, wanted in clash.select("meter_id", stored, given).iter_rows():
            out.setdefault(meter, []).append(f"{name} {held}, not {wanted}")
    return {meter: "; ".join(kept) for meter, kept in out.items()}


def _known_commodities(
    records: pl.DataFrame, rejects: pl.DataFrame, kind: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Meter rows naming a commodity Metrify does not know go to quarantine (the table's
    check would otherwise refuse the whole batch)."""
    if "commodity" not in records.columns:
        return records, rejects
    known = [c.value for c in Commodity]
    bad = pl.col("commodity").is_not_null() & ~pl.col("commodity").is_in(known)
    odd = records.filter(bad)
    if not odd.height:
        return records, rejects
    refused = odd.select(
        raw=pl.struct(pl.exclude("source")).struct.json_encode(),
        reason=pl.lit(f"unknown commodity (expected one of {', '.join(known)})"),
        line=pl.lit(None, dtype=pl.Int32),
        kind=pl.lit(kind),
        source=pl.col("source"),
    )
    return records.filter(~bad), pl.concat([rejects, refused.select(rejects.columns)])


#: what head-ends call the event families (lower case, words joined by "_")
_EVENT_NAMES: Final[dict[str, MeterEvent]] = {
    **{e.value: e for e in MeterEvent},
    **dict.fromkeys(
        ("power_off", "power_down", "power_outage", "outage", "power_fail", "power_lost"),
        MeterEvent.POWER_FAILURE,
    ),
    **dict.fromkeys(
        ("power_on", "power_up", "power_restored", "power_return"), MeterEvent.POWER_RESTORE
    ),
    **dict.fromkeys(("tampering", "tamper_detected", "fraud"), MeterEvent.TAMPER),
    **dict.fromkeys(
        ("terminal_cover_open", "meter_cover_open", "cover_removed", "terminal_cover_removed"),
        MeterEvent.COVER_OPEN,
    ),
    **dict.fromkeys(("cover_closed", "terminal_cover_closed"), MeterEvent.COVER_CLOSE),
    **dict.fromkeys(
        ("clock_adjusted", "clock_change", "time_set", "time_sync", "clock_sync"),
        MeterEvent.CLOCK_SET,
    ),
    **dict.fromkeys(
        ("reverse_flow", "reverse_energy", "reverse_rotation", "reversed"),
        MeterEvent.REVERSE_RUNNING,
    ),
    **dict.fromkeys(("magnetic_tamper", "strong_dc_field"), MeterEvent.MAGNETIC_FIELD),
}


def _name_events(
    decoded: Decoded,
    raw: pl.DataFrame,
    first_line: int,
    lines: npt.NDArray[np.int64] | None,
) -> Decoded:
    """Decoded events with their names made the contract's (``Power Off`` is
    ``power_failure``, DLMS/COSEM code ``40`` is ``cover_open``:
    :mod:`metrify.sources.dlms`); events no name or code fits become rejects saying
    which names are known, with their line and raw row, as decoding's own rejects
    (judged here, where the raw batch is still at hand). The events keep their line and
    raw row (:data:`_ORIGIN`) for a conflicting duplicate found in the batch later."""
    text = raw.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    every = pl.Series(values=lines, dtype=pl.Int32) if lines is not None else None
    at = decoded.rows
    records = decoded.records.with_columns(
        _pos=at,
        _line=at + first_line if every is None else every.gather(at),
        _raw=text.gather(at),
    )
    named, refused = _known_events(records)
    if not refused.height:
        return Decoded(
            records=named.drop("_pos"),
            rejects=decoded.rejects,
            ignored_columns=decoded.ignored_columns,
            present=decoded.present,
            rows=named.get_column("_pos").rename("rows"),
            reject_rows=decoded.reject_rows,
        )
    rejects = refused.select(
        raw=pl.col("_raw"), reason=pl.col("reason"), line=pl.col("_line").cast(pl.Int32)
    )
    return Decoded(
        records=named.drop("_pos"),
        rejects=pl.concat([decoded.rejects, rejects]),
        ignored_columns=decoded.ignored_columns,
        present=decoded.present,
        rows=named.get_column("_pos").rename("rows"),
        reject_rows=pl.concat([decoded.reject_rows, refused.get_column("_pos").rename("rows")]),
    )


def _known_events(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Events with their names made the contract's, and those no name or code fits
    (their fields and a ``reason`` saying which names are known)."""
    records, coded = decode_codes(records, _EVENT_NAMES)
    words = (
        pl.col("event")
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace_all(r"[^a-z0-9]+", "_")
        .str.strip_chars("_")
    )
    named = records.with_columns(
        event=words.replace_strict(
            list(_EVENT_NAMES),
            [e.value for e in _EVENT_NAMES.values()],
            default=None,
            return_dtype=pl.String,
        ),
    )
    bad = pl.col("event").is_null()
    odd = named.filter(bad)
    named = named.filter(~bad)
    reason = f"unknown event (expected one of {', '.join(e.value for e in MeterEvent)})"
    refused = pl.concat(
        [
            odd.with_columns(reason=pl.lit(reason)),
            coded.rename({DLMS_REASON: "reason"}),
        ],
        how="diagonal_relaxed",
    )
    return named, refused


def _whole_months(
    held: pl.DataFrame | None, part: pl.DataFrame, upto: dt.datetime | None, key: str
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(rows to write now, rows to hold for the next write): ``held`` and ``part``, less
    the rows of the month (the store's partition) that ``upto``, the next part's first
    time, falls in; all of them when ``upto`` is None or nothing would be left to write.

    Parts are cut at week starts for the detectors, but the store's partitions are
    months: a month written over several parts took each later part's rows into the
    middle of every meter's range in its index (:func:`partition_start`). Held back, a
    month goes in one write, in key order; the first weeks of a batch, before any
    month is whole, still go as they are judged, so the database starts at once."""
    rows = part if held is None else pl.concat([held, part]).sort(key, "ts")
    if upto is None:
        return rows, None
    before = pl.col("ts") < partition_start(upto)
    ready = rows.filter(before)
    if not ready.height or ready.height == rows.height:
        return rows, None
    return ready, rows.filter(~before)


def _week_slices(assessed: pl.DataFrame, rows: int) -> list[pl.DataFrame]:
    """``assessed`` cut at week starts into parts of about ``rows`` rows (the first few
    smaller) and at most ``PART_WEEKS`` weeks, in time order.

    The detectors judge week by week with the state each week leaves (a batch is a
    stream of weeks to them), so a batch judged part by part in time order gets the
    same verdicts; the writer then stores the first part while the next is judged.
    A week costs the detectors about the same whatever its rows (a pass of about 150
    small queries), so a long history of a few meters is cut by its weeks: judged
    whole, its years were judged before a row of it was written (a home's five years of
    hourly reads: 9.6 s of judging, then the writes and the lake, 1.6 s, after them).
    A batch within ``rows`` and ``PART_WEEKS``, or spanning no more than
    ``STRETCH_DAYS`` (a fleet's day: its batches already overlap one another), stays
    whole."""
    first, last = assessed["ts"].min(), assessed["ts"].max()
    if not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
        return [assessed]
    if last - first <= dt.timedelta(days=STRETCH_DAYS):
        return [assessed]
    if assessed.height <= rows and last - first < dt.timedelta(weeks=PART_WEEKS):
        return [assessed]
    weeks = assessed.group_by(week=pl.col("ts").dt.truncate("1w")).len().sort("week")
    parts: list[int] = []
    number, held, span = 0, 0, 0
    for count in weeks["len"].to_list():
        # The first parts are smaller (an eighth, a quarter, half of ``rows``): the
        # database has nothing to write until the first part is judged.
        target = rows >> max(0, FIRST_SLICES - number)
        if held and (held + count > target or span == PART_WEEKS):
            number, held, span = number + 1, 0, 0
        parts.append(number)
        held += count
        span += 1
    if number == 0:
        return [assessed]
    weeks = weeks.with_columns(part=pl.Series(parts, dtype=pl.Int32))
    part = assessed.select(pl.col("ts").dt.truncate("1w").alias("week")).join(
        weeks.select("week", "part"), on="week", how="left", maintain_order="left"
    )["part"]
    groups = assessed.with_columns(_part=part).partition_by(
        "_part", as_dict=True, include_key=False
    )
    return [groups[key] for key in sorted(groups)]
