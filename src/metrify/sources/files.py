"""File readers: CSV and JSON Lines (optionally gzipped or in a zip archive of one file),
Parquet, and spreadsheets (the first sheet of ``.xlsx``, ``.xls``, ``.ods``).

A reader turns bytes into raw batches and nothing more. It does not map columns to a
contract, cast types or judge values: the pipeline does that, the same way for every
source. What a reader does own is the promise that *no row is lost*:

* files are streamed in bounded chunks cut at line ends (:mod:`metrify.sources.chunks`),
  so memory stays flat whether the file holds a thousand rows or a billion;
* every non-blank line of a CSV or JSONL file ends up either as a row of a batch's
  ``data`` or as a :class:`~metrify.sources.batches.BadRow` carrying its raw text, a
  reason and its line number, so the pipeline can quarantine it;
* a file that cannot be read at all (missing, not gzip, not Parquet...) raises
  :class:`~metrify.sources.batches.ReaderError` with one line of text naming the file;
  rows yielded before a mid-file failure stay yielded.

This module picks the reader a file's name asks for; each format lives in its own module
(:mod:`~metrify.sources.csv`, :mod:`~metrify.sources.jsonl`,
:mod:`~metrify.sources.parquet`, :mod:`~metrify.sources.excel`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Literal

from metrify.sources.batches import RawBatch, ReaderError
from metrify.sources.csv import read_csv
from metrify.sources.jsonl import read_jsonl
from metrify.sources.opening import open_error
from metrify.sources.parquet import read_parquet

__all__ = ["FileFormat", "detect_format", "read_batches"]

FileFormat = Literal["csv", "parquet", "jsonl", "excel", "xml"]

#: the batch size a file read whole (``channels``) is read in
_WHOLE_READ_ROWS: Final = 200_000
#: suffix -> format; longest suffixes first so ``.csv.gz`` is not mistaken for ``.gz``.
_SUFFIXES: Final[tuple[tuple[str, FileFormat], ...]] = (
    (".csv.gz", "csv"),
    (".tsv.gz", "csv"),
    (".jsonl.gz", "jsonl"),
    (".ndjson.gz", "jsonl"),
    (".json.gz", "jsonl"),
    (".jsonl.zip", "jsonl"),
    (".ndjson.zip", "jsonl"),
    (".csv.zip", "csv"),
    (".xml.gz", "xml"),  # Green Button (ESPI) feeds
    (".xml.zip", "xml"),
    (".zip", "csv"),  # a utility's or market operator's export: a CSV (or NEM12) inside
    (".csv", "csv"),
    (".tsv", "csv"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".parquet", "parquet"),
    (".pq", "parquet"),
    (".xlsx", "excel"),
    (".xlsm", "excel"),
    (".xls", "excel"),
    (".ods", "excel"),
    (".xml", "xml"),
)


def detect_format(path: Path) -> FileFormat:
    """The format a file claims by its suffix; sniffing content would hide naming mistakes."""
    name = path.name.lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    known = ", ".join(s for s, _ in sorted(_SUFFIXES, key=lambda item: item[1]))
    raise ReaderError(f"{path.name}: unknown file type (expected one of {known})")


def read_batches(
    path: Path,
    batch_rows: int = 200_000,
    *,
    delimiter: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    skip_lines: int = 0,
    sheet: str | None = None,
    wide: tuple[str, str] | None = None,
    channels: tuple[str, str, Callable[[list[str]], list[str]]] | None = None,
) -> Iterator[RawBatch]:
    """Stream ``path`` as raw batches of about ``batch_rows`` rows each.

    Problems found without reading (unknown suffix, missing file, a directory) raise
    :class:`ReaderError` at once; problems found while reading raise it from the iterator
    after the rows before them were yielded. ``delimiter`` applies to CSV only; when it is
    None it is guessed from the header line among ``,`` ``;`` and tab. ``header`` False
    (CSV only): the file has no header line, its columns are ``#1``, ``#2``, ...
    ``encoding`` (CSV only; JSON is UTF-8 by definition): the character set of the bytes.
    ``skip_lines`` (CSV and spreadsheets): lines before the header that are no part of
    the table. ``sheet`` (spreadsheets): the sheet by name or 1-based number. ``wide``
    (any format): ``(field, date column)`` of a file with a row per day and a column per
    interval, turned into a row per interval (:mod:`metrify.sources.dayrows`).
    ``channels`` (any format, after ``wide``): ``(channel column, value column, the
    key columns among a file's columns)`` of a file with a row per value, turned into a
    row per reading (:mod:`metrify.sources.channels`).
    """
    # A file with a row per value is read whole before it is turned: read in large
    # batches whatever the caller's (a check of its columns asks for a thousand rows)
    read_rows = max(batch_rows, _WHOLE_READ_ROWS) if channels is not None else batch_rows
    batches = _read(path, read_rows, delimiter, header, encoding, skip_lines, sheet)
    if wide is not None:
        from metrify.sources.dayrows import day_rows

        batches = day_rows(batches, *wide)
    if channels is not None:
        from metrify.sources.channels import channel_rows

        stat = path.stat()
        # the file as it is now, read the same way, gathered by the same mapping
        mapping = getattr(channels[2], "__self__", channels[2])
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, delimiter, header,
               encoding, skip_lines, sheet, wide, channels[:2], repr(mapping))  # fmt: skip
        batches = channel_rows(batches, *channels, batch_rows, key)
    return batches


def _read(
    path: Path,
    batch_rows: int,
    delimiter: str | None,
    header: bool,
    encoding: str,
    skip_lines: int,
    sheet: str | None,
) -> Iterator[RawBatch]:
    """The reader of ``path``'s format (see :func:`read_batches`)."""
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
        raise open_error(path, exc) from exc
    if fmt == "parquet":
        return read_parquet(path, batch_rows)
    if fmt == "jsonl":
        return read_jsonl(path, batch_rows)
    if fmt == "xml":
        from metrify.sources.espi import read_espi

        return read_espi(path, batch_rows)
    if fmt == "excel":
        from metrify.sources.excel import read_excel  # loads fastexcel, by need

        return read_excel(path, batch_rows, header=header, skip_lines=skip_lines, sheet=sheet)
    return read_csv(
        path, batch_rows, delimiter, header=header, encoding=encoding, skip_lines=skip_lines
    )
