"""Glue between inputs (files, the simulator) and the one pipeline.

Every entry point opens the store the same way and feeds :class:`Pipeline`; nothing here
processes data itself.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import polars as pl
import psycopg

from metrify.contracts.records import READING, Contract
from metrify.contracts.summary import Summary
from metrify.ops import metrics, tracing
from metrify.pipeline import lakesync
from metrify.pipeline.stages import Pipeline
from metrify.settings import Settings
from metrify.sources.batches import RawBatch
from metrify.sources.decode import Decoded, SchemaMismatch
from metrify.sources.mapping import Mapping
from metrify.stores import database
from metrify.stores.lake import Lake
from metrify.stores.postgres import PostgresStore

if TYPE_CHECKING:
    from metrify.sources.filechecks import FileChecks

#: a file or simulator load saves the detectors' state once this many seconds have
#: passed since its last save (and at the end) rather than with each batch: a week of
#: 15-minute readings touches every hour-of-week slot of each meter, so one save of a
#: 1,800-meter fleet upserts 1.2M slots (3-4 s of the writer). After a crash a re-run
#: re-judges at most about this much work from the last saved state.
LOAD_STATE_SECONDS = 60.0
#: a file or simulator load writes the lake once this many rows of durable batches have
#: gathered (and at the end), not after each batch: see ``lake_rows`` of Pipeline. A
#: long batch is written in parts of whole weeks, and about two of them make this many
#: rows, so its lake commits overlap the writing and judging of the parts after them
#: (2M rows, a whole load of household files, left the year's lake write to the end:
#: the London load 9.3 -> 8.8 s, and a second less CPU) while each commit still covers
#: days no other commit touches.
LOAD_LAKE_ROWS = 400_000

Progress = Callable[[int], None]


@dataclass
class Session:
    """An open store (database connection + lake) shared by the pipelines of one command."""

    settings: Settings
    conn: psycopg.Connection[tuple[object, ...]]
    store: PostgresStore
    lake: Lake | None
    _writers: list[PostgresStore] = field(default_factory=list)

    def pipeline(
        self,
        contract: Contract,
        *,
        overlap: bool = False,
        by_source: bool = False,
        state_every_s: float = 0.0,
        scores_apart: bool = False,
        defer_lake: bool = False,
        lake_rows: int = 0,
    ) -> Pipeline:
        """A pipeline on this session's store. ``overlap`` (long loads: files, the
        simulator, a stream worker) gives it a second connection, so writing batch N
        overlaps processing batch N+1; ``scores_apart`` (a load) a third for readings'
        daily scores. ``by_source``, ``state_every_s``, ``defer_lake``, ``lake_rows``:
        see :class:`Pipeline`."""
        writer = self.writer() if overlap and contract.time_series else None
        refresher = (
            self.writer() if scores_apart and writer is not None and contract is READING else None
        )
        return Pipeline(
            contract,
            self.settings,
            self.store,
            self.lake,
            writer=writer,
            refresher=refresher,
            by_source=by_source,
            state_every_s=state_every_s,
            defer_lake=defer_lake,
            lake_rows=lake_rows,
        )

    def writer(self) -> PostgresStore:
        """A store on a second connection of this session (closed with the session)."""
        store = PostgresStore(database.connect(self.settings, migrate=False))
        self._writers.append(store)
        return store

    def close(self) -> None:
        for store in self._writers:
            store.conn.close()
        self._writers.clear()
        self.conn.close()


@contextlib.contextmanager
def open_session(settings: Settings) -> Iterator[Session]:
    """Connect (starting the embedded server and migrating if needed) and open the lake."""
    conn = database.connect(settings)
    session: Session | None = None
    try:
        lake = Lake(settings.lake) if settings.lake_enabled else None
        session = Session(settings, conn, PostgresStore(conn), lake)
        yield session
    finally:
        if session is not None:
            session.close()
        else:
            conn.close()


def catch_up_lake(session: Session) -> None:
    """Bring into the lake the days a crash kept from it (the lake outbox), before a
    load adds to it: the lake can lag behind the store, never stay behind."""
    if session.lake is not None:
        lakesync.catch_up(session.conn, session.lake)


@tracing.traced("load files")
def ingest_files(
    session: Session,
    contract: Contract,
    paths: Sequence[Path],
    mapping: Mapping,
    *,
    progress: Progress | None = None,
    file_done: Callable[[Path], None] | None = None,
    intervals: dict[str, int] | None = None,
) -> Summary:
    """Stream files through the pipeline. A bad file is reported and skipped, never fatal.

    The files are read and decoded on threads a few batches ahead of the pipeline
    (:class:`_Ahead`), so the reading overlaps the judging and writing of the batches
    before; the pipeline takes them in the files' order, as if read here.

    ``progress`` hears of every batch's bytes, ``file_done`` of every file read to its
    end (or given up on). ``intervals``: meters' intervals already detected (by the
    command's checks of the files), taken as decided."""
    from metrify.sources import ReaderError
    from metrify.sources.filechecks import FileChecks

    checks = FileChecks(contract, mapping, intervals)
    catch_up_lake(session)
    pipeline = session.pipeline(
        contract,
        overlap=True,
        state_every_s=LOAD_STATE_SECONDS,
        scores_apart=True,
        lake_rows=LOAD_LAKE_ROWS,
    )
    counter = metrics.LoadCounter(contract.kind)
    batch_rows = max(1, min(session.settings.batch_size, 200_000))
    ahead_rows = AHEAD_BATCHES * session.settings.batch_size
    with _Ahead(pipeline, checks, paths, mapping, batch_rows, ahead_rows) as ahead:
        for path in paths:
            pipeline.summary.files += 1
            consumed = 0
            ok = True
            rows = 0  # rows and bad rows the file gave
            with tracing.span("load file", {"metrify.kind": contract.kind, "file.name": path.name}):
                for item in ahead.file(path):
                    if isinstance(item, Exception):
                        ok = False
                        text = str(item)
                        pipeline.error(f"{path.name}: {text}" if path.name not in text else text)
                        break
                    batch, used, decoded = item
                    rows += batch.data.height + len(batch.bad)
                    try:
                        pipeline.submit(
                            batch.data,
                            source=batch.source,
                            mapping=used,
                            first_line=batch.first_line,
                            lines=batch.lines,
                            bad=batch.bad,
                            decoded=decoded,
                        )
                    except (ReaderError, SchemaMismatch) as exc:
                        ok = False
                        text = str(exc)
                        pipeline.error(f"{path.name}: {text}" if path.name not in text else text)
                        break
                    if progress is not None:
                        progress(batch.bytes_read - consumed)
                    consumed = batch.bytes_read
            if ok and not rows:  # not silence: the user expected data from it
                pipeline.summary.warnings.append(
                    f"{path.name}: no rows (the file is empty or holds only a header)"
                )
            # the rows of the batches that have landed so far (the rest count at the end)
            counter.update(pipeline.summary)
            counter.file_done(ok)
            if progress is not None:
                with contextlib.suppress(OSError):
                    progress(max(0, path.stat().st_size - consumed))
            if file_done is not None:
                file_done(path)
    summary = pipeline.close()
    checks.report(summary)
    counter.update(summary)
    return summary


#: how many batches' worth of rows (``batch_size``) the reading thread may hold
#: decoded ahead of the pipeline: a whole batch, so that it can read the next one while
#: the pipeline judges this one (it holds at least one raw batch whatever its size)
AHEAD_BATCHES = 1
#: threads decoding read batches, each a group at a time (see :meth:`_Ahead._emit`)
DECODERS = 2
#: threads reading small files whole ahead of the one being handed on, and what is
#: small: its bytes on disk (see :meth:`_Ahead._read`)
READERS = 2
SMALL_FILE_BYTES = 4 << 20


def _small(path: Path) -> bool:
    """Whether ``path`` is read whole ahead (an unreadable one is not: it fails where
    it is read, in order)."""
    try:
        return path.is_file() and path.stat().st_size <= SMALL_FILE_BYTES
    except OSError:
        return False


_Item = tuple[RawBatch, Mapping, Decoded] | Exception


class _Ahead:
    """Files read and decoded on threads, up to a batch ahead of the pipeline.

    Reading (gzip, CSV parsing) and decoding (Polars) mostly release the GIL, so they
    run on the second core while the pipeline judges the batch before (VEE, the
    detectors), which left it idle; each on two threads (:meth:`_read`,
    :meth:`_emit`). Each file's batches arrive in order, then ``None``;
    a file that cannot be read or decoded ends with the exception instead (what the
    loader reports for it), as the loop that read it here did. Anything else raised on
    the thread is raised again in the loader."""

    def __init__(
        self,
        pipeline: Pipeline,
        checks: FileChecks,
        paths: Sequence[Path],
        mapping: Mapping,
        batch_rows: int,
        ahead_rows: int,
    ) -> None:
        self._pipeline = pipeline
        self._checks = checks
        self._paths = list(paths)
        self._mapping = mapping
        self._batch_rows = batch_rows
        #: (the file's place in ``paths``, a batch | its exception | None at its end):
        #: rows decoded and not yet taken by the loader, at most ``ahead_rows`` (past one)
        self._queue: _RowQueue[tuple[int, _Item | None] | BaseException] = _RowQueue(ahead_rows)
        #: the file (its place in ``paths``) the loader gave up on: no more of it is read
        self._abandoned: int | None = None
        #: the place of the next file the loader takes
        self._next = 0
        #: batches read and not yet decoded: up to a batch's rows (a group to decode)
        self._raw: _RowQueue[_RawEvent] = _RowQueue(batch_rows)
        #: groups being decoded, oldest first (see :meth:`_emit`)
        self._decoding: collections.deque[tuple[list[_Read], Future[list[Decoded | Exception]]]] = (
            collections.deque()
        )
        self._decoders = ThreadPoolExecutor(DECODERS, thread_name_prefix="decode")
        self._thread = threading.Thread(
            target=tracing.carry(self._run), name="read-ahead", daemon=True
        )

    def __enter__(self) -> _Ahead:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.stop()  # threads waiting for room see the stop
        self._raw.stop()
        self._thread.join()

    def file(self, path: Path) -> Iterator[_Item]:
        """The next file's batches (it must be ``path``), in order. Left before its end
        (the loader gave the file up), the rest of the file is not read."""
        number, self._next = self._next, self._next + 1
        assert self._paths[number] == path, f"read ahead {self._paths[number]}, expected {path}"
        ended = False
        try:
            while True:
                read, item = self._get()
                assert read == number, f"read ahead file {read}, expected {number}"
                if item is None or isinstance(item, Exception):
                    ended = True
                if item is None:
                    return
                yield item
                if ended:
                    return
        finally:
            if not ended:
                self._abandoned = number
                while True:  # up to the end of the file the thread marks
                    rest = self._get()[1]
                    if rest is None or isinstance(rest, Exception):
                        break
                self._abandoned = None

    def _get(self) -> tuple[int, _Item | None]:
        got = self._queue.get()
        if got is None:  # only after __exit__, which the loader's own loop precedes
            raise RuntimeError("files read ahead after the load stopped")
        if isinstance(got, BaseException):
            raise got
        return got

    def _put(self, item: tuple[int, _Item | None] | BaseException) -> bool:
        """Hand ``item`` to the loader once there is room for its rows; False when the
        loader has stopped."""
        rows = (
            item[1][0].data.height if isinstance(item, tuple) and isinstance(item[1], tuple) else 0
        )
        return self._queue.put(item, rows)

    def _run(self) -> None:
        """Decode what the reading thread read (see :meth:`_read`), in order."""
        reader = threading.Thread(target=tracing.carry(self._read), name="read-files", daemon=True)
        reader.start()
        group = _Group(self._batch_rows)  # read, not yet decoded (see _emit)
        try:
            while True:
                event = self._raw.get()
                if event is None:  # every file read
                    break
                if isinstance(event, BaseException):
                    raise event
                number, read = event
                if isinstance(read, Exception):  # the reader's ReaderError, SchemaMismatch
                    # (after every group before it: the loader takes items in order)
                    if not self._emit(group) or not self._hand_over(0):
                        return
                    if not self._put((number, read)):
                        return
                    continue
                if read is not None:
                    batch, used = read
                    if not group.joins(batch, used) and not self._emit(group):
                        return
                    group.add(number, batch, used)
                else:
                    group.entries.append((number, None, None))  # the file's end
            if self._emit(group):
                self._hand_over(0)
        except BaseException as exc:  # the loader raises it
            self._put(exc)
        finally:
            self._raw.stop()
            self._decoders.shutdown(wait=True, cancel_futures=True)
            reader.join()

    def _read(self) -> None:
        """On a thread of its own: the files' batches, read and checked, for the decoding
        threads (reading a file, gzip and CSV, overlaps decoding the ones before).

        Small files (a household's year, a day's export) are read whole on
        ``READERS`` threads a few files ahead, and handed on in order: read one after
        the other, they held a load of many such files back. A large file is read
        batch by batch here, its memory bounded by the queue."""
        from metrify.sources import ReaderError, read_batches

        def whole(path: Path) -> tuple[list[RawBatch], Exception | None]:
            """A small file's batches, and the error that ended it early if any."""
            got: list[RawBatch] = []
            try:
                got.extend(read_batches(path, self._batch_rows, **self._mapping.file_options))
            except (ReaderError, SchemaMismatch) as exc:
                return got, exc
            return got, None

        readers = ThreadPoolExecutor(READERS, thread_name_prefix="read-file")
        read: dict[int, Future[tuple[list[RawBatch], Exception | None]]] = {}
        try:
            for number, path in enumerate(self._paths):
                for ahead in range(number, min(number + READERS + 1, len(self._paths))):
                    if ahead not in read and _small(self._paths[ahead]):
                        read[ahead] = readers.submit(tracing.carry(whole), self._paths[ahead])
                try:
                    ended: Exception | None = None
                    if number in read:
                        got, ended = read.pop(number).result()
                        batches: Iterable[RawBatch] = got
                    else:
                        batches = read_batches(path, self._batch_rows, **self._mapping.file_options)
                    for batch, used in self._checks.batches(batches):
                        if self._abandoned == number:
                            break
                        if not self._raw.put((number, (batch, used)), batch.data.height):
                            return
                    if ended is not None and self._abandoned != number:
                        raise ended
                except (ReaderError, SchemaMismatch) as exc:
                    if not self._raw.put((number, exc), 0):
                        return
                    continue
                if not self._raw.put((number, None), 0):
                    return
            self._raw.put(None, 0)
        except BaseException as exc:  # the decoding thread raises it
            self._raw.put(exc, 0)
        finally:
            readers.shutdown(wait=True, cancel_futures=True)

    def _emit(self, group: _Group) -> bool:
        """Start decoding the batches read so far, and hand the groups decoded before
        them, with the ends of their files, to the loader in order; False when the
        loader has stopped.

        Consecutive batches of the same columns and mapping, up to a batch's rows, are
        decoded in one call and split again by file: a decode costs milliseconds of
        fixed work whatever its size, most of a small file's (a household's year).
        Groups are decoded on ``DECODERS`` threads (Polars releases the GIL): one
        decoding thread was what held a load of many small files back while the
        machine had a core to spare. A file whose batch cannot be decoded ends with the
        error, as when read alone."""
        if group.entries:
            entries = list(group.entries)
            reads = [(n, b, u) for n, b, u in entries if b is not None and u is not None]
            decoding = self._decoders.submit(tracing.carry(self._decode), reads)
            self._decoding.append((entries, decoding))
            group.clear()
        return self._hand_over(DECODERS - 1)

    def _hand_over(self, left: int) -> bool:
        """Hand the loader the oldest groups being decoded, in order, until ``left``
        are; False when the loader has stopped."""
        while len(self._decoding) > left:
            entries, decoding = self._decoding.popleft()
            if not self._put_decoded(entries, decoding.result()):
                return False
        return True

    def _put_decoded(self, entries: list[_Read], decoded: list[Decoded | Exception]) -> bool:
        """One group's batches (decoded, or the error that ends their file) and file
        ends to the loader, in order; False when the loader has stopped."""
        failed: set[int] = set()
        at = 0
        for number, batch, used in entries:
            if number in failed:
                continue
            if batch is None or used is None:
                item: tuple[int, _Item | None] = (number, None)
            else:
                result = decoded[at]
                at += 1
                if isinstance(result, Exception):
                    failed.add(number)
                    item = (number, result)
                else:
                    item = (number, (batch, used, result))
            if not self._put(item):
                return False
        return True

    def _decode(self, reads: list[tuple[int, RawBatch, Mapping]]) -> list[Decoded | Exception]:
        """Each read batch decoded (or the error its decoding raised): in one call where
        there are several, each alone if that one call fails."""
        from metrify.sources import ReaderError

        if len(reads) > 1:
            with contextlib.suppress(ReaderError, SchemaMismatch):
                return list(self._decode_together([b for _, b, _ in reads], reads[0][2]))
        out: list[Decoded | Exception] = []
        for _, batch, used in reads:
            try:
                out.append(
                    self._pipeline.decode(
                        batch.data, used, first_line=batch.first_line, lines=batch.lines
                    )
                )
            except (ReaderError, SchemaMismatch) as exc:
                out.append(exc)
        return out

    def _decode_together(self, batches: list[RawBatch], mapping: Mapping) -> list[Decoded]:
        """Batches of the same columns decoded as one, then split by batch again (each
        record and reject keeps its own batch's row number and line)."""
        lines = np.concatenate(
            [
                b.lines
                if b.lines is not None
                else b.first_line + np.arange(b.data.height, dtype=np.int64)
                for b in batches
            ]
        )
        whole = self._pipeline.decode(pl.concat([b.data for b in batches]), mapping, lines=lines)
        parts: list[Decoded] = []
        start = 0
        for batch in batches:
            end = start + batch.data.height
            parts.append(
                Decoded(
                    records=_rows_of(whole.records, whole.rows, start, end),
                    rejects=_rows_of(whole.rejects, whole.reject_rows, start, end),
                    ignored_columns=whole.ignored_columns,
                    present=whole.present,
                    rows=_rows_of(whole.rows, whole.rows, start, end) - start,
                    reject_rows=_rows_of(whole.reject_rows, whole.reject_rows, start, end) - start,
                    # (per meter: each part declares its meters' with the others')
                    declared=whole.declared,
                )
            )
            start = end
        return parts


#: what the reading thread hands the decoding one: a file's batch, the error that ended
#: it or its end (None), by file number; None when every file is read; an exception the
#: reading raised
_RawEvent = tuple[int, "tuple[RawBatch, Mapping] | Exception | None"] | BaseException | None

_Item_T = TypeVar("_Item_T")


class _RowQueue(Generic[_Item_T]):
    """A FIFO holding at most ``limit`` rows (at least one item whatever its rows)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: collections.deque[tuple[_Item_T, int]] = collections.deque()
        self._held = 0
        self._stopped = False
        self._changed = threading.Condition()

    def put(self, item: _Item_T, rows: int) -> bool:
        """Add ``item`` once there is room for its rows; False once stopped."""
        with self._changed:
            while rows and self._held and self._held + rows > self._limit:
                if self._stopped:
                    return False
                self._changed.wait(timeout=0.5)
            if self._stopped:
                return False
            self._items.append((item, rows))
            self._held += rows
            self._changed.notify_all()
        return True

    def get(self) -> _Item_T | None:
        """The next item (None once stopped)."""
        with self._changed:
            while not self._items:
                if self._stopped:
                    return None
                self._changed.wait(timeout=0.5)
            item, rows = self._items.popleft()
            self._held -= rows
            self._changed.notify_all()
            return item

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()


#: a batch read by the read-ahead thread (file number, batch, mapping), or a file's end
#: (file number, None, None)
_Read = tuple[int, RawBatch | None, Mapping | None]


@dataclass
class _Group:
    """Batches read and not yet decoded, with the ends of their files, in order: what
    :meth:`_Ahead._emit` decodes in one call."""

    #: at most this many rows of batches
    limit: int
    entries: list[_Read] = field(default_factory=list)
    rows: int = 0

    def joins(self, batch: RawBatch, used: Mapping) -> bool:
        """Whether ``batch`` may be decoded with these: the same columns (and types) and
        mapping, and no more than ``limit`` rows together."""
        first = next(((b, u) for _, b, u in self.entries if b is not None), None)
        if first is None:
            return True
        same = first[0].data.schema == batch.data.schema and first[1] == used
        return same and self.rows + batch.data.height <= self.limit

    def add(self, number: int, batch: RawBatch, used: Mapping) -> None:
        self.entries.append((number, batch, used))
        self.rows += batch.data.height

    def clear(self) -> None:
        self.entries.clear()
        self.rows = 0


_Rows = TypeVar("_Rows", pl.DataFrame, pl.Series)


def _rows_of(frame: _Rows, positions: pl.Series, start: int, end: int) -> _Rows:
    """The part of ``frame`` whose ``positions`` (ascending) lie in ``[start, end)``."""
    low = int(positions.search_sorted(start, side="left"))
    high = int(positions.search_sorted(end, side="left"))
    return frame.slice(low, high - low)


@tracing.traced("load frames")
def ingest_frames(
    session: Session,
    contract: Contract,
    frames: Iterator[pl.DataFrame] | Sequence[pl.DataFrame],
    *,
    source: str,
    progress: Progress | None = None,
) -> Summary:
    """Feed typed frames (already in the contract schema) through the same pipeline."""
    catch_up_lake(session)
    pipeline = session.pipeline(
        contract,
        overlap=True,
        state_every_s=LOAD_STATE_SECONDS,
        scores_apart=True,
        lake_rows=LOAD_LAKE_ROWS,
    )
    counter = metrics.LoadCounter(contract.kind)
    for frame in frames:
        pipeline.submit(frame, source=source)
        counter.update(pipeline.summary)
        if progress is not None:
            progress(frame.height)
    summary = pipeline.close()
    counter.update(summary)
    return summary
