"""File readers: CSV (optionally gzipped), JSON Lines (optionally gzipped) and Parquet.

A reader turns bytes into raw batches and nothing more. It does not map columns to a
contract, cast types or judge values: the pipeline does that, the same way for every
source. What a reader does own is the promise that *no row is lost*:

* files are streamed in bounded chunks cut at line ends, so memory stays flat whether the
  file holds a thousand rows or a billion;
* every non-blank line of a CSV or JSONL file ends up either as a row of
  :attr:`RawBatch.data` or as a :class:`BadRow` carrying its raw text, a reason and its
  line number, so the pipeline can quarantine it;
* a file that cannot be read at all (missing, not gzip, not Parquet...) raises
  :class:`ReaderError` with one line of text naming the file; rows yielded before a
  mid-file failure stay yielded.

CSV values stay exactly as found (strings, padding kept) because only the pipeline knows
which padding or null token is meaningful for which column.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = [
    "BadRow",
    "FileFormat",
    "RawBatch",
    "ReaderError",
    "count_bytes",
    "detect_format",
    "read_batches",
]

FileFormat = Literal["csv", "parquet", "jsonl"]
_T = TypeVar("_T")

#: suffix -> format; longest suffixes first so ``.csv.gz`` is not mistaken for ``.gz``.
_SUFFIXES: Final[tuple[tuple[str, FileFormat], ...]] = (
    (".csv.gz", "csv"),
    (".tsv.gz", "csv"),
    (".jsonl.gz", "jsonl"),
    (".ndjson.gz", "jsonl"),
    (".json.gz", "jsonl"),
    (".csv", "csv"),
    (".tsv", "csv"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".parquet", "parquet"),
    (".pq", "parquet"),
)

#: a chunk never grows past this many bytes (and no line may be longer): bounds memory.
_CHUNK_BYTES = 32 << 20
#: bytes asked of the (decompressed) stream per read; small enough that a gzip error
#: loses at most this much of what was decoded before it.
_READ_BLOCK = 1 << 20
#: when pyarrow rejects a whole chunk, retry it in pieces of this many lines so that only
#: the pieces holding the offending lines go through the slow per-line path.
_PIECE_LINES = 1000
#: how much of an over-long line a BadRow keeps.
_RAW_PREVIEW = 1000
#: pyarrow's own block size inside one chunk (its unit of parallelism).
_ARROW_BLOCK = 4 << 20

_BOM: Final = b"\xef\xbb\xbf"
_GZIP_MAGIC: Final = b"\x1f\x8b\x08"  # magic number and the deflate method
_DELIMITERS: Final = (",", ";", "\t")
#: JSON integers this long may not fit 64 bits; orjson would turn them into floats.
_LONG_DIGITS: Final = re.compile(rb"\d{19}")
_LEADING_BLANK_CSV: Final = re.compile(rb"(?:\r?\n)*")
_LEADING_BLANK_JSON: Final = re.compile(rb"[ \t\r\n]*")


class ReaderError(Exception):
    """A whole file cannot be read (missing, unreadable, corrupt compression, not the
    format it claims). The message is one line naming the file and the problem."""


@dataclass
class BadRow:
    """A line that could not be split into fields; kept so it can be quarantined."""

    raw: str  # the original text (undecodable bytes replaced by U+FFFD), never empty
    reason: str  # short and stable, so quarantine rows can be grouped by it
    line: int | None  # 1-based line number in the (decompressed) file, where known


@dataclass
class RawBatch:
    """One bounded stretch of a file, split into fields but not yet interpreted."""

    data: pl.DataFrame  # CSV/JSONL: every column pl.String, values as found; Parquet: typed
    bad: list[BadRow]  # lines of this stretch that could not be split into fields
    source: str  # 'file:<file name>'
    first_line: int  # line (Parquet: row) number of the first data row of this stretch
    bytes_read: int = 0  # bytes consumed from disk so far (compressed), for progress bars


def detect_format(path: Path) -> FileFormat:
    """The format a file claims by its suffix; sniffing content would hide naming mistakes."""
    name = path.name.lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    known = ", ".join(s for s, _ in sorted(_SUFFIXES, key=lambda item: item[1]))
    raise ReaderError(f"{path.name}: unknown file type (expected one of {known})")


def count_bytes(path: Path) -> int:
    """Size on disk: the total that :attr:`RawBatch.bytes_read` counts towards."""
    try:
        return path.stat().st_size
    except OSError as exc:
        raise _open_error(path, exc) from exc


def read_batches(
    path: Path, batch_rows: int = 200_000, *, delimiter: str | None = None
) -> Iterator[RawBatch]:
    """Stream ``path`` as raw batches of about ``batch_rows`` rows each.

    Problems found without reading (unknown suffix, missing file, a directory) raise
    :class:`ReaderError` at once; problems found while reading raise it from the iterator
    after the rows before them were yielded. ``delimiter`` applies to CSV only; when it is
    None it is guessed from the header line among ``,`` ``;`` and tab.
    """
    fmt = detect_format(path)
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ValueError(
            f"delimiter must be one character other than a quote or newline, got {delimiter!r}"
        )
    try:
        if path.is_dir():
            raise ReaderError(f"{path}: is a directory, not a file")
        path.stat()
    except OSError as exc:
        raise _open_error(path, exc) from exc
    if fmt == "parquet":
        return _read_parquet(path, batch_rows)
    if fmt == "jsonl":
        return _read_jsonl(path, batch_rows)
    return _read_csv(path, batch_rows, delimiter)


# --------------------------------------------------------------------------- helpers


def _one_line(exc: BaseException) -> str:
    """Library messages can span lines; ours must not (they end up in logs and tables)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _open_error(path: Path, exc: OSError) -> ReaderError:
    if isinstance(exc, FileNotFoundError):
        return ReaderError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return ReaderError(f"{path}: is a directory, not a file")
    if isinstance(exc, PermissionError):
        return ReaderError(f"{path}: permission denied")
    return ReaderError(f"{path}: cannot read ({exc.strerror or _one_line(exc)})")


def _open(path: Path) -> io.BufferedReader:
    try:
        return path.open("rb")
    except OSError as exc:
        raise _open_error(path, exc) from exc


def _as_frame(table: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - tables always give frames
        raise TypeError("expected a DataFrame from an Arrow table")
    return frame


def _text(raw: bytes) -> str:
    """Bytes as text for a BadRow: undecodable bytes become U+FFFD, never an exception."""
    return raw.decode("utf-8", errors="replace") or repr(raw)


class _ByteSource:
    """The file's (decompressed) bytes, plus how far into the file on disk we are."""

    def __init__(self, path: Path, *, gzipped: bool) -> None:
        self.name = path.name
        self.gzipped = gzipped
        self._raw = _open(path)
        self._stream: io.BufferedReader | gzip.GzipFile = (
            gzip.GzipFile(fileobj=self._raw, mode="rb") if gzipped else self._raw
        )
        self._first = True
        self._error: ReaderError | None = None

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end. On a failure the bytes decoded before it
        are returned first and the error is raised by the next call."""
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        got = 0
        while got < size:
            try:
                # read1 hands out what one step of decompression produced, so a corrupt
                # stretch costs only the data after the last good step.
                part = self._stream.read1(size - got)
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                self._error = ReaderError(f"{self.name}: not a valid gzip file ({_one_line(exc)})")
            except OSError as exc:
                self._error = ReaderError(
                    f"{self.name}: read failed ({exc.strerror or _one_line(exc)})"
                )
            if self._error is not None:
                if parts:
                    break
                raise self._error
            if not part:
                break
            parts.append(part)
            got += len(part)
        block = b"".join(parts)
        if self._first:
            self._first = False
            if not self.gzipped and _looks_gzipped(block):
                raise ReaderError(
                    f"{self.name}: the file is gzip-compressed but its name does not end in .gz"
                )
        return block

    @property
    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        self._raw.close()


def _looks_gzipped(block: bytes) -> bool:
    """True when a file's first bytes are gzip: a misnamed .csv.gz would otherwise turn
    into thousands of 'invalid UTF-8' rows instead of one clear error."""
    if not block.startswith(_GZIP_MAGIC):
        return False
    try:
        zlib.decompressobj(wbits=31).decompress(block[: 64 << 10])
    except zlib.error:
        return False
    return True


@dataclass
class _Chunk:
    """Whole lines of the file (always ending in a newline) and where they start."""

    data: bytes
    first_line: int
    bad: list[BadRow] = field(default_factory=list)
    newlines: npt.NDArray[np.int64] | None = None  # positions of b"\n" in data, if known


def _newlines(block: bytes | bytearray, offset: int = 0) -> npt.NDArray[np.int64]:
    positions = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    return positions.astype(np.int64) + offset


class _LineChunker:
    """Cuts a byte stream into chunks of whole lines: at most ``max_lines`` lines and
    about ``max_bytes`` bytes each, counting lines so every BadRow can name its line.

    A line longer than ``max_bytes`` is not buffered (that would break the memory bound):
    it becomes a BadRow with its beginning. If the stream fails mid-way (corrupt gzip),
    the complete lines before the failure are still handed out, the cut-off line becomes a
    BadRow, and then the error is raised.
    """

    def __init__(self, src: _ByteSource, max_bytes: int) -> None:
        self._src = src
        self._max_bytes = max_bytes
        self._buf = bytearray()
        self._nl: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._eof = False
        self._started = False
        self._error: ReaderError | None = None
        self._next_line = 1  # number of the first line in the buffer

    def _fill(self) -> None:
        try:
            block = self._src.read(_READ_BLOCK)
        except ReaderError as exc:
            self._error = exc
            self._eof = True
            return
        if not self._started:
            self._started = True
            if block.startswith(_BOM):
                block = block[len(_BOM) :]
        if not block:
            self._eof = True
            if self._buf and not self._buf.endswith(b"\n"):
                # The last line needs no newline to be a line.
                self._nl = np.append(self._nl, np.int64(len(self._buf)))
                self._buf += b"\n"
            return
        self._nl = np.concatenate((self._nl, _newlines(block, len(self._buf))))
        self._buf += block

    def _take(self, n_lines: int) -> _Chunk:
        cut = int(self._nl[n_lines - 1]) + 1
        chunk = _Chunk(bytes(self._buf[:cut]), self._next_line, newlines=self._nl[:n_lines])
        del self._buf[:cut]
        self._nl = self._nl[n_lines:] - cut
        self._next_line += n_lines
        return chunk

    def header(self) -> tuple[bytes, int] | None:
        """The first non-blank line (without its line end) and its number; None if none."""
        while True:
            while len(self._nl) == 0 and not self._eof:
                if len(self._buf) >= self._max_bytes:
                    raise ReaderError(
                        f"{self._src.name}: header line is longer than {self._max_bytes} bytes"
                    )
                self._fill()
            if len(self._nl) == 0:
                if self._error is not None:
                    raise self._error
                return None
            number = self._next_line
            line = self._take(1).data.rstrip(b"\n").removesuffix(b"\r")
            if line.strip():
                return line, number

    def chunks(self, max_lines: int) -> Iterator[_Chunk]:
        """Chunks of whole lines; raises the stream's error after the last good chunk."""
        cut_off: BadRow | None = None
        while True:
            while not self._eof and len(self._nl) < max_lines and len(self._buf) < self._max_bytes:
                self._fill()
            broken = self._eof and self._error is not None
            if broken and self._buf and not self._buf.endswith(b"\n"):
                # The line the failure cut in two: its start may look like a valid row
                # ("0.2" of "0.219"), so it must not be parsed as one.
                start = int(self._nl[-1]) + 1 if len(self._nl) else 0
                cut_off = BadRow(
                    _text(bytes(self._buf[start : start + _RAW_PREVIEW])),
                    "incomplete line: the file breaks off here",
                    self._next_line + len(self._nl),
                )
                del self._buf[start:]
            if len(self._nl) >= max_lines:
                yield self._take(max_lines)
            elif len(self._nl) > 0:
                yield self._take(len(self._nl))
            elif self._buf:  # no newline within max_bytes
                yield self._skip_long_line()
            else:
                if cut_off is not None:
                    yield _Chunk(b"", cut_off.line or self._next_line, [cut_off])
                if self._error is not None:
                    raise self._error
                return

    def _skip_long_line(self) -> _Chunk:
        number = self._next_line
        bad = BadRow(
            _text(bytes(self._buf[:_RAW_PREVIEW])) + "...",
            f"line longer than {self._max_bytes} bytes",
            number,
        )
        while len(self._nl) == 0:
            self._buf.clear()
            if self._eof:
                break
            self._fill()
        if len(self._nl):
            cut = int(self._nl[0]) + 1
            del self._buf[:cut]
            self._nl = self._nl[1:] - cut
        self._next_line = number + 1
        return _Chunk(b"", number, [bad])


def _first_content_line(data: bytes, first_line: int, blank: re.Pattern[bytes]) -> int:
    match = blank.match(data)
    return first_line + (data.count(b"\n", 0, match.end()) if match else 0)


# --------------------------------------------------------------------------- CSV


def _read_csv(path: Path, batch_rows: int, delimiter: str | None) -> Iterator[RawBatch]:
    src = _ByteSource(path, gzipped=path.name.lower().endswith(".gz"))
    try:
        chunker = _LineChunker(src, _CHUNK_BYTES)
        head = chunker.header()
        if head is None:
            return
        names, delim = _parse_header(path.name, *head, delimiter)
        parser = _CsvChunkParser(names, delim)
        source = f"file:{path.name}"
        for chunk in chunker.chunks(batch_rows):
            table, bad = parser.parse(chunk.data, chunk.first_line, chunk.newlines)
            if table.num_rows == 0 and not bad and not chunk.bad:
                continue  # only blank lines
            yield RawBatch(
                _as_frame(table),
                chunk.bad + bad,
                source,
                _first_content_line(chunk.data, chunk.first_line, _LEADING_BLANK_CSV),
                src.bytes_read,
            )
    finally:
        src.close()


def _parse_header(
    name: str, line: bytes, number: int, delimiter: str | None
) -> tuple[list[str], str]:
    """Column names and delimiter from the header line; bad names fail the whole file
    because every row would be mis-assigned otherwise."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ReaderError(f"{name}: header (line {number}) is not valid UTF-8") from None
    if "\r" in text:
        raise ReaderError(
            f"{name}: header (line {number}) contains a carriage return; "
            "lines must end in LF or CRLF, not CR alone"
        )

    def split(delim: str) -> list[str]:
        try:
            return next(csv.reader([text], delimiter=delim))
        except (csv.Error, StopIteration) as exc:
            raise ReaderError(f"{name}: cannot parse the header ({_one_line(exc)})") from exc

    if delimiter is None:
        # Most fields wins; ties go to the comma, the most common delimiter.
        delimiter = max(_DELIMITERS, key=lambda d: len(split(d)))
    names = split(delimiter)
    empty = [str(i) for i, n in enumerate(names, 1) if not n.strip()]
    if empty:
        raise ReaderError(f"{name}: empty column name in header (column {', '.join(empty)})")
    dups = sorted(n for n, count in Counter(names).items() if count > 1)
    if dups:
        raise ReaderError(
            f"{name}: duplicate column names in header: {', '.join(repr(d) for d in dups)}"
        )
    return names, delimiter


@dataclass
class _Invalid:
    number: int | None  # pyarrow's count of non-blank rows within the chunk, 1-based
    text: str
    expected: int
    actual: int


class _CsvChunkParser:
    """Parses chunks: pyarrow's multi-threaded C++ parser when it can vouch for every line,
    Python's csv module line by line for the pieces it cannot (bad UTF-8, stray carriage
    returns, quotes that would swallow line ends)."""

    def __init__(self, names: list[str], delimiter: str) -> None:
        self.names = names
        self.delimiter = delimiter
        self._convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False
        )

    def parse(
        self, data: bytes, first_line: int, newlines: npt.NDArray[np.int64] | None = None
    ) -> tuple[pa.Table, list[BadRow]]:
        """Rows and bad rows of a chunk of whole lines (``data`` ends in a newline)."""
        if not data:
            return self._empty(), []
        if newlines is None:
            newlines = _newlines(data)
        fast = self._fast(data, first_line, newlines, threads=True)
        if fast is not None:
            return fast
        if len(newlines) <= _PIECE_LINES:
            return self._slow(data, first_line)
        tables: list[pa.Table] = []
        bad: list[BadRow] = []
        for piece, start in _split_lines(data, first_line, newlines, _PIECE_LINES):
            fast = self._fast(piece, start, _newlines(piece), threads=False)
            table, piece_bad = fast or self._slow(piece, start)
            tables.append(table)
            bad.extend(piece_bad)
        return pa.concat_tables(tables), bad

    def _empty(self) -> pa.Table:
        return pa.table([pa.array([], pa.string()) for _ in self.names], names=self.names)

    def _arrow(self, data: bytes, threads: bool) -> tuple[pa.Table, list[_Invalid]]:
        invalid: list[_Invalid] = []

        def handler(row: Any) -> str:
            invalid.append(
                _Invalid(row.number, str(row.text), row.expected_columns, row.actual_columns)
            )
            return "skip"

        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                column_names=self.names, use_threads=threads, block_size=_ARROW_BLOCK
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=self.delimiter, newlines_in_values=False, invalid_row_handler=handler
            ),
            convert_options=self._convert,
        )
        return table, invalid

    def _fast(
        self, data: bytes, first_line: int, newlines: npt.NDArray[np.int64], *, threads: bool
    ) -> tuple[pa.Table, list[BadRow]] | None:
        """pyarrow's result, or None when it cannot be trusted line for line."""
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            return None  # pyarrow would split at a lone CR; we count lines at LF only
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return None  # pyarrow would reject the chunk (or choke on the bad row's text)
        try:
            table, invalid = self._arrow(data, threads)
        except (pa.ArrowException, ValueError, OverflowError):
            return None
        lines = _content_lines(data, first_line, newlines)
        if table.num_rows + len(invalid) != len(lines):
            return None  # a quote swallowed a line end: judge each line on its own instead
        if b'"' in data and (
            any('"' in row.text for row in invalid)
            or any(pc.any(pc.match_substring(col, "\n")).as_py() for col in table.columns)
        ):
            # An unclosed quote at the end of the chunk took in the line end: pyarrow
            # either calls the row ragged or keeps the newline in a value. The line-wise
            # parser names the real problem.
            return None
        if not invalid:
            return table, []
        if threads and any(i.number is None for i in invalid):
            # Row numbers are only known to the single-threaded parser; bad rows are rare.
            table, invalid = self._arrow(data, threads=False)
        bad = []
        for row in invalid:
            line = int(lines[row.number - 1]) if row.number and row.number <= len(lines) else None
            bad.append(
                BadRow(
                    row.text.removesuffix("\r") or "?",
                    f"ragged row: {row.actual} fields, expected {row.expected}",
                    line,
                )
            )
        return table, bad

    def _slow(self, data: bytes, first_line: int) -> tuple[pa.Table, list[BadRow]]:
        n = len(self.names)
        columns: list[list[str]] = [[] for _ in range(n)]
        bad: list[BadRow] = []
        for offset, raw in enumerate(data.split(b"\n")):
            raw = raw.removesuffix(b"\r")
            if not raw:
                continue
            number = first_line + offset
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(BadRow(_text(raw), "invalid UTF-8", number))
                continue
            fields, problem = self._split(text)
            if problem is not None:
                bad.append(BadRow(text, f"unparseable CSV: {problem}", number))
                continue
            if len(fields) != n:
                bad.append(BadRow(text, f"ragged row: {len(fields)} fields, expected {n}", number))
                continue
            for column, value in zip(columns, fields, strict=True):
                column.append(value)
        table = pa.table([pa.array(c, pa.string()) for c in columns], names=self.names)
        return table, bad

    def _split(self, text: str) -> tuple[list[str], str | None]:
        """Fields of one line, or the reason it has none."""
        try:
            fields = next(csv.reader([text], delimiter=self.delimiter))
        except csv.Error as exc:
            if "new-line character" in str(exc):
                return [], "carriage return inside an unquoted field"
            return [], _one_line(exc)
        if '"' in text:
            # Lenient parsing accepts an unclosed quote; strict parsing tells it apart
            # (it is usually the first half of a record whose value held a line break).
            try:
                next(csv.reader([text], delimiter=self.delimiter, strict=True))
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    return [], "unclosed quote"
        return fields, None


def _content_lines(
    data: bytes, first_line: int, ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Numbers of the non-blank lines of ``data`` (which ends in a newline at each of
    ``ends``): pyarrow numbers rows among these, skipping empty and CR-only lines."""
    arr = np.frombuffer(data, dtype=np.uint8)
    starts = np.concatenate((np.zeros(1, dtype=ends.dtype), ends[:-1] + 1))
    lengths = ends - starts
    cr_only = (lengths == 1) & (arr[np.minimum(starts, len(arr) - 1)] == 13)
    blank = (lengths == 0) | cr_only
    result: npt.NDArray[np.int64] = np.flatnonzero(~blank).astype(np.int64) + first_line
    return result


def _split_lines(
    data: bytes, first_line: int, newlines: npt.NDArray[np.int64], lines: int
) -> Iterator[tuple[bytes, int]]:
    """``data`` in pieces of ``lines`` lines, each with the number of its first line."""
    cuts = newlines[lines - 1 :: lines] + 1
    start = 0
    line = first_line
    for cut in (*cuts.tolist(), len(data)):
        if cut > start:
            yield data[start:cut], line
        start = cut
        line += lines


# --------------------------------------------------------------------------- JSON Lines


class _JsonNumber(str):
    """A JSON number kept as its exact text (used where a float would lose digits)."""

    __slots__ = ()


def _read_jsonl(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    src = _ByteSource(path, gzipped=path.name.lower().endswith(".gz"))
    try:
        chunker = _LineChunker(src, _CHUNK_BYTES)
        source = f"file:{path.name}"
        for chunk in chunker.chunks(batch_rows):
            frame, bad = _parse_jsonl(chunk.data, chunk.first_line)
            if frame.width == 0 and not bad and not chunk.bad:
                continue  # only blank lines
            yield RawBatch(
                frame,
                chunk.bad + bad,
                source,
                _first_content_line(chunk.data, chunk.first_line, _LEADING_BLANK_JSON),
                src.bytes_read,
            )
    finally:
        src.close()


def _parse_jsonl(data: bytes, first_line: int) -> tuple[pl.DataFrame, list[BadRow]]:
    """One JSON object per line; values become their text so CSV and JSON look alike."""
    rows: list[dict[str, Any]] = []
    bad: list[BadRow] = []
    long_numbers = _LONG_DIGITS.search(data) is not None
    for offset, raw in enumerate(data.split(b"\n")):
        if not raw.strip(b" \t\r"):
            continue
        number = first_line + offset
        try:
            obj = load_json(raw, exact_long_numbers=long_numbers)
        except orjson.JSONDecodeError as exc:
            bad.append(BadRow(_text(raw), json_error_reason(raw, exc), number))
            continue
        if not isinstance(obj, dict):
            bad.append(BadRow(_text(raw), "not a JSON object", number))
            continue
        if not obj:
            # A frame cannot hold a row without columns, and there is nothing to decode.
            bad.append(BadRow(_text(raw), "empty JSON object", number))
            continue
        rows.append(obj)
    return string_columns(rows), bad


def load_json(raw: bytes, *, exact_long_numbers: bool = True) -> Any:
    """Parse JSON with orjson, keeping the exact digits of numbers beyond 64 bits.

    Raises ``orjson.JSONDecodeError``; :func:`json_error_reason` names the problem.
    """
    obj = orjson.loads(raw)
    if exact_long_numbers and _LONG_DIGITS.search(raw):
        # orjson turns integers beyond 64 bits into floats: keep their exact digits.
        with contextlib.suppress(ValueError):  # orjson accepted it, so json does too
            obj = json.loads(raw, parse_int=_JsonNumber, parse_float=_JsonNumber)
    return obj


def json_error_reason(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    """A short, stable quarantine reason for bytes that are not JSON."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid UTF-8"
    return f"invalid JSON: {exc.msg}"


def string_columns(rows: list[dict[str, Any]], leading: Iterable[str] = ()) -> pl.DataFrame:
    """JSON objects as string columns (values as their text), so JSON and CSV look alike.

    ``leading`` columns come first and exist even when no row has them.
    """
    keys = list(dict.fromkeys([*leading, *(k for row in rows for k in row)]))
    columns = {k: [_json_text(row.get(k)) for row in rows] for k in keys}
    return pl.DataFrame(columns, schema=dict.fromkeys(keys, pl.String()))


def _json_text(value: object) -> str | None:
    """A JSON value as a string: strings as they are, anything else as its JSON text."""
    if type(value) is str:
        return value
    if value is None:
        return None
    if isinstance(value, _JsonNumber):
        return str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return orjson.dumps(value).decode()
    return _dump_json(value)


def _dump_json(value: object) -> str:
    """Compact JSON text of a nested value, writing kept-exact numbers unquoted."""
    if isinstance(value, _JsonNumber):
        return str.__str__(value)
    if isinstance(value, dict):
        items = (f"{orjson.dumps(str(k)).decode()}:{_dump_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump_json(v) for v in value) + "]"
    return orjson.dumps(value).decode()


# --------------------------------------------------------------------------- Parquet


def _read_parquet(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    source = f"file:{path.name}"
    size = count_bytes(path)
    with _open(path) as fh:
        batches, total = _guard(path, lambda: _open_parquet(fh, batch_rows))
        done = 0
        while True:
            record_batch = _guard(path, lambda: next(batches, None))
            if record_batch is None:
                return
            frame = _guard(path, functools.partial(_as_frame, record_batch))
            first = done + 1
            done += frame.height
            progress = size if not total else min(size, size * done // total)
            yield RawBatch(frame, [], source, first, progress)


def _open_parquet(fh: BinaryIO, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int]:
    parquet = pq.ParquetFile(fh)
    return iter(parquet.iter_batches(batch_size=batch_rows)), int(parquet.metadata.num_rows)


def _guard(path: Path, step: Callable[[], _T]) -> _T:
    """Run one Parquet step, turning library failures into a one-line ReaderError."""
    try:
        return step()
    except (pa.ArrowException, pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise ReaderError(f"{path.name}: not a readable Parquet file ({_one_line(exc)})") from exc
