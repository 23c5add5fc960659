"""The lake: every accepted version of a record, one Delta Lake table per kind.

Layout: ``<lake>/<kind>/`` is a Delta table (``_delta_log/`` plus Parquet, zstd),
partitioned by a ``date`` column (the UTC day of ``ts``). Every change is one atomic
commit: a reader sees a batch whole or not at all, and an earlier version stays readable
(time travel) until :meth:`Lake.vacuum` removes its files.

What the lake holds is every version the store committed (its current rows and their
history): a version is identified by the record's natural key and its ``ingested_at``,
so :meth:`Lake.write` is an upsert (``MERGE``) on those columns. Writing the same batch
twice leaves one copy; a version re-written with other values replaces the old row.
What the lake may lack of a committed write (a crash before the lake write) is named by
the lake outbox (:mod:`metrify.stores.lake_outbox`); whole days are then replaced from
the store in one commit (:meth:`Lake.replace_day`, driven by
:mod:`metrify.pipeline.lakesync`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from metrify.contracts.records import CONTRACTS, Contract
from metrify.ops import tracing
from metrify.stores.lake import legacy
from metrify.stores.lake.location import locate
from metrify.stores.postgres import VERSION_TYPES

log = logging.getLogger(__name__)

#: how often a commit beaten by a concurrent writer is re-tried against the new snapshot
ATTEMPTS = 8
#: a version's identity besides the natural key
VERSION_ID = "ingested_at"

Version = int | dt.datetime
T = TypeVar("T")


class LakeConflict(RuntimeError):
    """A concurrent commit added data that a day replacement had not read: the caller
    reads the store and the lake again and retries."""


class LegacyLayoutError(ValueError):
    """The lake folder holds the plain-Parquet layout of earlier releases."""


@dataclass(frozen=True)
class Commit:
    """One version of a table, as ``metrify lake history`` shows it."""

    version: int
    timestamp: dt.datetime
    operation: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "timestamp": self.timestamp.isoformat(),
            "operation": self.operation,
            "parameters": self.parameters,
            "metrics": self.metrics,
        }


def versioned(contract: Contract | None) -> bool:
    """Whether the lake keeps every version of the kind's records (time series, whose
    replaced versions the store keeps in a history table), rather than the current one
    (meter events: a re-sent event with other details replaces it, and the store keeps
    no history of events)."""
    return contract is None or contract.time_series


def lake_schema(contract: Contract) -> dict[str, pl.DataType]:
    """A kind's columns in the lake: the record, its version columns, the day. Meter
    events are not judged, so they have no quality or status."""
    versions = (
        VERSION_TYPES
        if contract.time_series
        else {c: VERSION_TYPES[c] for c in ("source", VERSION_ID)}
    )
    return {**contract.schema, **versions, "date": pl.Date()}


def _day_predicate(day: dt.date) -> str:
    return f"date = '{day.isoformat()}'"


def _files_if_older(table: DeltaTable, first: object) -> int | None:
    """How many data files ``table`` has, if every version it holds was ingested before
    ``first`` (by the files' statistics; a file without them counts as not older);
    None otherwise."""
    if not isinstance(first, dt.datetime):
        return None
    actions = pa.table(table.get_add_actions(flatten=True))
    if not actions.num_rows:
        return 0
    column = f"max.{VERSION_ID}"
    if column not in actions.column_names:
        return None
    stamps = pl.from_arrow(actions.column(column))
    assert isinstance(stamps, pl.Series)
    latest = stamps.max()
    if stamps.null_count() or not isinstance(latest, dt.datetime):
        return None
    utc = [t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC) for t in (latest, first)]
    return actions.num_rows if utc[0] < utc[1] else None


def _retry(what: str, action: Callable[[], T]) -> T:
    """Run a commit, re-trying it when a concurrent writer committed first (delta-rs
    re-checks its conflicts against the new snapshot on each try)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except CommitFailedError as exc:
            if attempt == ATTEMPTS:
                raise
            pause = min(2.0, 0.02 * 2**attempt) * (0.5 + random.random())
            log.info("lake %s: concurrent commit (%s), retrying in %.2f s", what, exc, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


class Lake:
    """One Delta table per kind under one lake root (a folder or an ``s3://`` URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = locate(url)
        # Latest-version handles, one set per thread (the pipeline writes on its lake
        # thread while the main thread compares days): brought up to date from the log
        # before each use rather than replaying the whole log on every batch.
        self._handles = threading.local()

    # --- where and what -----------------------------------------------------------

    def uri(self, kind: str) -> str:
        """The table URI of ``kind`` (no credentials: those are in the options)."""
        return self.location.table(kind)

    @property
    def storage_options(self) -> dict[str, str] | None:
        """The options a Delta reader needs for this lake (dbt's delta plugin, Polars)."""
        return dict(self.location.options) or None

    def _contract(self, kind: str) -> Contract | None:
        return CONTRACTS.get(kind)

    def table(
        self, kind: str, version: Version | None = None, *, refuse_legacy: bool = True
    ) -> DeltaTable | None:
        """The kind's table, at its latest version or as of ``version`` (a number or a
        time); None when there is none yet. A folder in the old layout raises
        :class:`LegacyLayoutError` with what to do."""
        if isinstance(version, dt.datetime):
            version = self._version_at(kind, version)
        if version is None:
            cached: DeltaTable | None = getattr(self._handles, kind, None)
            if cached is not None:
                cached.update_incremental()
                return cached
        try:
            table = DeltaTable(
                self.uri(kind),
                storage_options=self.storage_options,
                version=version,
            )
        except TableNotFoundError:
            if refuse_legacy and legacy.holds_files(self.url, kind):
                raise LegacyLayoutError(
                    f"the lake's {kind} folder holds the plain-Parquet layout of earlier"
                    " releases; run `metrify lake convert` once to make it a Delta table"
                ) from None
            return None
        if version is None:
            setattr(self._handles, kind, table)
        return table

    def _version_at(self, kind: str, when: dt.datetime) -> int:
        """The newest version committed at or before ``when``, by the commit times that
        :meth:`history` shows (delta-rs's own lookup goes by log files' modification
        times, which trail them and would make a time copied from the history miss its
        version)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        table = self.table(kind)
        if table is None:
            raise ValueError(f"the lake has no {kind} table")
        for commit in self.history(kind):
            if commit.timestamp <= when:
                return commit.version
        raise ValueError(f"the {kind} table has no version as early as {when.isoformat()}")

    def _prepare(self, kind: str, frame: pl.DataFrame) -> pa.Table:
        """The batch in the lake's columns and types, with its ``date``."""
        contract = self._contract(kind)
        frame = frame.with_columns(date=pl.col("ts").dt.date())
        if contract is not None:
            schema = lake_schema(contract)
            frame = frame.select(
                pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                for c, t in schema.items()
            )
        return frame.to_arrow()

    def _ensure(self, kind: str, schema: pa.Schema, *, converting: bool = False) -> DeltaTable:
        """The kind's table, created empty (partitioned by day) if there is none."""
        table = self.table(kind, refuse_legacy=not converting)
        if table is not None:
            return _with_new_columns(table, schema)
        DeltaTable.create(
            self.uri(kind),
            schema=schema,
            partition_by=["date"],
            mode="ignore",  # a concurrent creator may have won: its table is the same
            storage_options=self.storage_options,
        )
        created = self.table(kind, refuse_legacy=False)
        assert created is not None
        return created

    def _merge_predicate(self, kind: str, columns: list[str]) -> tuple[str, str]:
        """(match, differs): a version matches on key + ``ingested_at`` (+ the day, so
        only that day's files are read); a matched row is rewritten only if it differs.
        A kind kept in its current version only (:func:`versioned`) matches on the key."""
        contract = self._contract(kind)
        key = list(contract.key) if contract is not None else ["ts"]
        identity = [*key, VERSION_ID] if versioned(contract) else key
        match = " AND ".join(f"t.{c} = s.{c}" for c in [*identity, "date"])
        rest = [c for c in columns if c not in (*identity, "date")]
        differs = " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in rest) or "false"
        return match, differs

    # --- writing ------------------------------------------------------------------

    @tracing.traced("lake write", {"db.system.name": "deltalake"})
    def write(self, kind: str, frame: pl.DataFrame) -> int:
        """Upsert one batch of versions in one commit; the number of files it added.

        Called on the pipeline's lake thread: delta-rs releases the GIL while it writes.
        """
        if not frame.height:
            return 0
        data = self._prepare(kind, frame)
        match, differs = self._merge_predicate(kind, data.column_names)
        # The batch's own ingested_at span as literals: redundant with the match, but it
        # lets delta-rs skip every file whose statistics lie outside it (all older
        # files, for a new batch), so a write reads little more than an append would.
        stamps = pl.from_arrow(data.column(VERSION_ID))
        assert isinstance(stamps, pl.Series)
        lo, hi = stamps.min(), stamps.max()
        current_only = not versioned(self._contract(kind))  # an older version must match
        if isinstance(lo, dt.datetime) and isinstance(hi, dt.datetime) and not current_only:
            match += (
                f" AND t.{VERSION_ID} >= '{lo.isoformat()}'"
                f" AND t.{VERSION_ID} <= '{hi.isoformat()}'"
            )

        def merge() -> int:
            table = self._ensure(kind, data.schema)
            held = _files_if_older(table, lo) if not current_only else None
            if held is not None:
                return self._append(table, data, held)
            metrics = (
                table.merge(data, predicate=match, source_alias="s", target_alias="t")
                .when_matched_update_all(predicate=differs)
                .when_not_matched_insert_all()
                .execute()
            )
            return int(metrics.get("num_target_files_added", 0))

        return _retry(f"write {kind}", merge)

    def _append(self, table: DeltaTable, data: pa.Table, held: int) -> int:
        """Append a batch none of whose versions the table held (``held``: its files
        then); the number of files it added.

        No version in the table could match one of the batch's, so the merge would
        insert them all: an append writes the same rows without the join, about half
        the lake's work in a load. Like the merge, it is refused (and retried, as a
        merge then) when a day it adds to was replaced since the version it read: a
        catch-up elsewhere whose store read may already have held this batch."""
        write_deltalake(table, data, mode="append", storage_options=self.storage_options)
        table.update_incremental()
        return max(0, len(table.file_uris()) - held)

    def version(self, kind: str) -> int | None:
        """The table's latest version (None: no table yet)."""
        table = self.table(kind)
        return None if table is None else table.version()

    def replace_day(
        self, kind: str, day: dt.date, frame: pl.DataFrame, version: int | None = None
    ) -> None:
        """Make ``frame`` the day's content, in one commit (an overwrite of the day's
        partition). ``version``: the table version the caller read before it read the
        store; if another writer committed to the day since, :class:`LakeConflict` is
        raised rather than losing its rows, and the caller starts over."""
        data = self._prepare(kind, frame)
        table = self.table(kind, version) if version is not None else self.table(kind)
        if table is None:
            if not frame.height:
                return
            table = self._ensure(kind, data.schema)
        try:
            write_deltalake(
                table,
                data,
                mode="overwrite",
                predicate=_day_predicate(day),
                storage_options=self.storage_options,
            )
        except CommitFailedError as exc:
            raise LakeConflict(f"{kind} {day}: {exc}") from exc

    # --- reading ------------------------------------------------------------------

    def days(self, kind: str, version: Version | None = None) -> list[dt.date]:
        """The days the table holds rows of, sorted."""
        table = self.table(kind, version)
        if table is None:
            return []
        return sorted(dt.date.fromisoformat(str(p["date"])) for p in table.partitions())

    def day_files(self, kind: str, day: dt.date) -> list[str]:
        """The data files the latest version reads for one day (full URIs or paths)."""
        table = self.table(kind)
        if table is None:
            return []
        return sorted(table.file_uris(file_pruning_predicate=_day_predicate(day)))

    def file_counts(self, kind: str) -> dict[dt.date, int]:
        """How many data files the latest version reads per day."""
        table = self.table(kind)
        if table is None:
            return {}
        actions = pl.DataFrame(pa.table(table.get_add_actions(flatten=True)))
        if not actions.height:
            return {}
        counts = actions.group_by("partition.date").len()
        return {day: int(n) for day, n in counts.iter_rows()}

    def read_day(
        self, kind: str, day: dt.date, version: Version | None = None
    ) -> pl.DataFrame | None:
        """Every row the table holds for one day (None: no such day), as of ``version``.

        A data file that is gone from storage (deleted by hand, a bucket rule) is left
        out with a warning instead of failing the read, so that ``metrify lake verify``
        reports the day as short and ``repair`` replaces it."""
        return self.read_days(kind, [day], version)

    def read_days(
        self, kind: str, days: list[dt.date], version: Version | None = None
    ) -> pl.DataFrame | None:
        """Every row the table holds for the ``days`` (None: none of them), as of
        ``version``, in one read: comparing a year of days one table read each cost a
        log refresh and a dataset per day (see :meth:`read_day`)."""
        table = self.table(kind, version)
        if table is None or not days:
            return None
        part = (
            _day_predicate(days[0])
            if len(days) == 1
            else [("date", "in", sorted(d.isoformat() for d in days))]
        )
        if not table.file_uris(file_pruning_predicate=part):
            return None
        dataset = table.to_pyarrow_dataset(file_pruning_predicate=part)
        try:
            data = dataset.to_table()
        except OSError as exc:
            what = days[0].isoformat() + (f"..{days[-1].isoformat()}" if len(days) > 1 else "")
            log.warning("lake %s %s: a data file is unreadable (%s)", kind, what, exc)
            tables = []
            for fragment in dataset.get_fragments():
                try:
                    tables.append(fragment.to_table(schema=dataset.schema))
                except OSError:
                    continue
            data = pa.concat_tables(tables) if tables else dataset.schema.empty_table()
        return pl.from_arrow(data)  # type: ignore[return-value]

    def read(self, kind: str, version: Version | None = None) -> pl.DataFrame:
        """The whole table, as of ``version`` (for tests, checks and small exports)."""
        table = self.table(kind, version)
        if table is None:
            contract = self._contract(kind)
            return pl.DataFrame(schema=lake_schema(contract) if contract else {})
        return pl.from_arrow(table.to_pyarrow_table())  # type: ignore[return-value]

    def arrow(self, kind: str, version: Version | None = None) -> pads.Dataset:
        """The table as a pyarrow dataset (partition pruning and column projection
        intact): what DuckDB, dbt and the warehouse code read the lake through."""
        table = self.table(kind, version)
        if table is None:
            contract = self._contract(kind)
            schema = pl.DataFrame(schema=lake_schema(contract) if contract else {}).to_arrow()
            return pads.dataset(schema.schema.empty_table())
        return table.to_pyarrow_dataset()

    def plain_files(self, kind: str) -> list[str] | None:
        """The local Parquet files of the table's current version when a plain Parquet
        reader gets it right (a local folder; no deletion vectors, column mapping or
        other reader features), else None.

        Why: DuckDB's own Parquet reader scans these about twice as fast as the Arrow
        dataset of :meth:`arrow`, which matters when the warehouse reads the whole lake.
        The list comes from the Delta log, never from the folder: files that compaction
        replaced stay on disk until vacuum and would count twice. The partition values
        are in the file paths (``date=YYYY-MM-DD/``), as delta-rs writes them.
        """
        if not self.location.local:
            return None
        table = self.table(kind)
        if table is None:
            return None
        protocol = table.protocol()
        if protocol.min_reader_version > 1 or protocol.reader_features:
            return None
        if table.metadata().configuration.get("delta.columnMapping.mode", "none") != "none":
            return None
        return list(table.file_uris())

    def scan(self, kind: str, version: Version | None = None) -> pl.LazyFrame:
        """The table as a lazy Polars frame (``pl.scan_delta``: predicates and columns
        pushed down to the files)."""
        table = self.table(kind, version)
        if table is None:
            contract = self._contract(kind)
            return pl.LazyFrame(schema=lake_schema(contract) if contract else {})
        return pl.scan_delta(
            self.uri(kind),
            version=None if version is None else table.version(),
            storage_options=self.storage_options,
        )

    def history(self, kind: str, limit: int | None = None) -> list[Commit]:
        """The table's versions, newest first."""
        table = self.table(kind)
        if table is None:
            return []
        out = []
        for entry in table.history(limit):
            out.append(
                Commit(
                    int(entry.get("version", -1)),
                    dt.datetime.fromtimestamp(int(entry["timestamp"]) / 1000, dt.UTC),
                    str(entry.get("operation", "")),
                    dict(entry.get("operationParameters") or {}),
                    dict(entry.get("operationMetrics") or {}),
                )
            )
        return out

    def convert_day(self, kind: str, day: dt.date, paths: list[str]) -> int:
        """Move one day of the old layout (``paths``) into the table, then delete those
        files; the rows moved. An upsert: a conversion cut short is run again."""
        frame = legacy.read(self.url, paths)
        rows = 0 if frame is None else frame.height
        if frame is not None and rows:
            self._ensure(kind, self._prepare(kind, frame.head(0)).schema, converting=True)
            self.write(kind, frame)
        legacy.remove(self.url, paths)
        return rows

    # --- upkeep -------------------------------------------------------------------

    def compact_day(self, kind: str, day: dt.date, target_size: int | None = None) -> int:
        """Rewrite one day's small files into as few as the target size allows, in one
        commit (readers of older versions are unaffected); the files removed."""
        table = self.table(kind)
        if table is None:
            return 0

        def compact() -> int:
            current = self.table(kind)
            assert current is not None
            metrics = current.optimize.compact(
                partition_filters=[("date", "=", day.isoformat())], target_size=target_size
            )
            return int(metrics.get("numFilesRemoved", 0))

        return _retry(f"compact {kind} {day}", compact)

    def vacuum(self, kind: str, retain_hours: float, dry_run: bool) -> list[str]:
        """Delete (or, ``dry_run``, list) the files no version newer than
        ``retain_hours`` reads: replaced by compaction or repair, or left by a failed
        write. The minimum is the caller's to enforce (see
        :mod:`metrify.pipeline.lake_upkeep`)."""
        table = self.table(kind)
        if table is None:
            return []
        return list(
            table.vacuum(
                retention_hours=int(retain_hours),
                dry_run=dry_run,
                enforce_retention_duration=False,
                full=True,
            )
        )


def _with_new_columns(table: DeltaTable, schema: pa.Schema) -> DeltaTable:
    """``table`` with the columns of ``schema`` it lacks added (nullable), so that a
    field added to a contract (``generation_kwh``, ``volume_m3``) reaches a lake written
    before it: older files read those columns as null, as the database does."""
    have = set(table.schema().to_arrow().names)
    new = [f for f in schema if f.name not in have]
    if not new:
        return table
    from deltalake.schema import Field, Schema

    fields = Schema.from_arrow(pa.schema(new)).fields
    table.alter.add_columns([Field(f.name, f.type, nullable=True) for f in fields])
    return table
