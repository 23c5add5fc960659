"""CSV files (optionally gzipped): a header line, then rows of string fields.

A file whose first line is a NEM12 header (``100,NEM12,...``) is no table of that kind:
it is read by :mod:`metrify.sources.nem12` instead.

Values stay exactly as found (strings, padding kept) because only the pipeline knows
which padding or null token is meaningful for which column. Parsing is pyarrow's
multi-threaded C++ parser wherever it can vouch for every line, and Python's line-wise
csv module for the stretches it cannot, so a malformed line costs only itself.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from metrify.sources.batches import BadRow, RawBatch, ReaderError, arrow_frame, one_line, raw_text
from metrify.sources.chunks import LineChunker, find_newlines, first_content_line
from metrify.sources.nem12 import is_nem12, read_nem12
from metrify.sources.opening import ByteSource

__all__ = ["read_csv"]

#: when pyarrow rejects a whole chunk, retry it in pieces of this many lines so that only
#: the pieces holding the offending lines go through the slow per-line path.
_PIECE_LINES = 1000
#: pyarrow's own block size inside one chunk (its unit of parallelism).
_ARROW_BLOCK = 4 << 20

_DELIMITERS: Final = (",", ";", "\t")
_LEADING_BLANK_CSV: Final = re.compile(rb"(?:\r?\n)*")


def read_csv(
    path: Path,
    batch_rows: int,
    delimiter: str | None,
    *,
    header: bool = True,
    encoding: str = "utf-8",
    skip_lines: int = 0,
) -> Iterator[RawBatch]:
    """Stream a CSV file; ``delimiter`` None guesses it from the header line.

    ``header`` False: the file starts with data (a meter's export of ``epoch,value``
    lines); the columns are named ``#1``, ``#2``, ... after the first line's fields, and
    that line is a row like the others. ``encoding`` other than UTF-8 (a codec that
    writes ASCII as ASCII, checked by :func:`metrify.sources.mapping.build_mapping`):
    each chunk of whole lines is turned into UTF-8 before it is parsed. ``skip_lines``:
    the file's first lines (blank or not) that come before the header are passed over."""
    lowered = path.name.lower()
    src = ByteSource(path, gzipped=lowered.endswith(".gz"), zipped=lowered.endswith(".zip"))
    recode = encoding not in ("utf-8", "utf8", "utf-8-sig")
    try:
        chunker = LineChunker(src)
        chunker.skip(skip_lines)
        head = chunker.peek() if not header else chunker.header()
        if head is None:
            return
        if is_nem12(path.name, head[0]):
            yield from read_nem12(chunker, src, path.name, batch_rows)
            return
        if recode:
            head = (_header_text(path.name, head[0], head[1], encoding, header), head[1])
        names, delim = _parse_header(path.name, *head, delimiter, header=header)
        parser = _CsvChunkParser(names, delim)
        source = f"file:{path.name}"
        for chunk in chunker.chunks(batch_rows):
            data, newlines = chunk.data, chunk.newlines
            recoded_bad: list[BadRow] = []
            if recode:
                data, recoded_bad = _to_utf8(data, chunk.first_line, encoding)
                newlines = None
            table, bad, lines = parser.parse(data, chunk.first_line, newlines)
            bad = recoded_bad + bad
            if table.num_rows == 0 and not bad and not chunk.bad:
                continue  # only blank lines
            yield RawBatch(
                arrow_frame(table),
                chunk.bad + bad,
                source,
                first_content_line(data, chunk.first_line, _LEADING_BLANK_CSV),
                src.bytes_read,
                lines,
            )
    finally:
        src.close()


def _header_text(name: str, line: bytes, number: int, encoding: str, header: bool) -> bytes:
    """The header (or first) line in ``encoding`` as UTF-8 bytes."""
    try:
        return line.decode(encoding).encode("utf-8")
    except UnicodeDecodeError:
        what = "header" if header else "first line"
        raise ReaderError(f"{name}: {what} (line {number}) is not valid {encoding}") from None


def _to_utf8(data: bytes, first_line: int, encoding: str) -> tuple[bytes, list[BadRow]]:
    """A chunk of whole lines in ``encoding`` as UTF-8. A line with bytes the encoding
    does not define becomes a bad row, and an empty line in its place keeps the lines
    after it numbered as in the file."""
    try:
        return data.decode(encoding).encode("utf-8"), []
    except UnicodeDecodeError:
        pass
    out: list[bytes] = []
    bad: list[BadRow] = []
    for offset, line in enumerate(data.split(b"\n")):
        try:
            out.append(line.decode(encoding).encode("utf-8"))
        except UnicodeDecodeError:
            text = line.removesuffix(b"\r").decode(encoding, errors="replace")
            bad.append(BadRow(text or "?", f"invalid {encoding}", first_line + offset))
            out.append(b"")
    return b"\n".join(out), bad


def _parse_header(
    name: str, line: bytes, number: int, delimiter: str | None, *, header: bool = True
) -> tuple[list[str], str]:
    """Column names and delimiter from the header line; bad names fail the whole file
    because every row would be mis-assigned otherwise. ``header`` False: ``line`` is
    the first row, and the names are the positions of its fields."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        what = "header" if header else "first line"
        raise ReaderError(
            f"{name}: {what} (line {number}) is not valid UTF-8; if the file was written "
            "in another character set, name it with --encoding (Windows exports are "
            "often cp1252)"
        ) from None
    if "\r" in text:
        raise ReaderError(
            f"{name}: header (line {number}) contains a carriage return; "
            "lines must end in LF or CRLF, not CR alone"
        )

    def split(delim: str) -> list[str]:
        try:
            return next(csv.reader([text], delimiter=delim))
        except (csv.Error, StopIteration) as exc:
            raise ReaderError(f"{name}: cannot parse the header ({one_line(exc)})") from exc

    if delimiter is None:
        # Most fields wins; ties go to the comma, the most common delimiter.
        delimiter = max(_DELIMITERS, key=lambda d: len(split(d)))
    # An empty name (pandas writes one over its index column) is named by its position,
    # the name --map FIELD=#N gives it anyway.
    names = [n if n.strip() else f"#{i}" for i, n in enumerate(split(delimiter), 1)]
    if not header:
        return [f"#{i}" for i in range(1, len(names) + 1)], delimiter
    dups = sorted(n for n, count in Counter(names).items() if count > 1)
    if dups:
        raise ReaderError(
            f"{name}: duplicate column names in header: {', '.join(repr(d) for d in dups)}"
        )
    return names, delimiter


#: a parsed chunk: its rows, the lines that are no row, and the line number of each row
Parsed = tuple[pa.Table, list[BadRow], npt.NDArray[np.int64]]


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
    ) -> Parsed:
        """Rows, bad rows and each row's line number of a chunk of whole lines (``data``
        ends in a newline)."""
        if not data:
            return self._empty(), [], np.empty(0, dtype=np.int64)
        if newlines is None:
            newlines = find_newlines(data)
        fast = self._fast(data, first_line, newlines, threads=True)
        if fast is not None:
            return fast
        if len(newlines) <= _PIECE_LINES:
            return self._slow(data, first_line)
        tables: list[pa.Table] = []
        bad: list[BadRow] = []
        lines: list[npt.NDArray[np.int64]] = []
        for piece, start in _split_lines(data, first_line, newlines, _PIECE_LINES):
            fast = self._fast(piece, start, find_newlines(piece), threads=False)
            table, piece_bad, piece_lines = fast or self._slow(piece, start)
            tables.append(table)
            bad.extend(piece_bad)
            lines.append(piece_lines)
        return pa.concat_tables(tables), bad, np.concatenate(lines)

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
    ) -> Parsed | None:
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
            return table, [], lines
        if threads and any(i.number is None for i in invalid):
            # Row numbers are only known to the single-threaded parser; bad rows are rare.
            table, invalid = self._arrow(data, threads=False)
        places = [row.number - 1 if row.number else -1 for row in invalid]
        if any(not 0 <= place < len(lines) for place in places):
            return None  # a bad row without its line: the rows' lines would be unknown too
        bad = [
            BadRow(
                row.text.removesuffix("\r") or "?",
                f"ragged row: {row.actual} fields, expected {row.expected}",
                int(lines[place]),
            )
            for row, place in zip(invalid, places, strict=True)
        ]
        # the rows are the content lines less the bad ones
        return table, bad, np.delete(lines, places)

    def _slow(self, data: bytes, first_line: int) -> Parsed:
        n = len(self.names)
        columns: list[list[str]] = [[] for _ in range(n)]
        bad: list[BadRow] = []
        lines: list[int] = []
        for offset, raw in enumerate(data.split(b"\n")):
            raw = raw.removesuffix(b"\r")
            if not raw:
                continue
            number = first_line + offset
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(BadRow(raw_text(raw), "invalid UTF-8", number))
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
            lines.append(number)
        table = pa.table([pa.array(c, pa.string()) for c in columns], names=self.names)
        return table, bad, np.array(lines, dtype=np.int64)

    def _split(self, text: str) -> tuple[list[str], str | None]:
        """Fields of one line, or the reason it has none."""
        try:
            fields = next(csv.reader([text], delimiter=self.delimiter))
        except csv.Error as exc:
            if "new-line character" in str(exc):
                return [], "carriage return inside an unquoted field"
            return [], one_line(exc)
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
