"""Request bodies to raw frames: JSON arrays, NDJSON and CSV, chosen by Content-Type.

The result is what the file readers give the pipeline (string columns, bad rows kept
with a reason), so HTTP input is decoded exactly like a file. JSON inputs are split at
unusable elements so that every decoded row's ``line`` is its 0-based index in the body;
CSV goes through :func:`metrify.sources.files.read_batches` itself (``line`` is the CSV
line, the header being line 1, blank lines counted: :attr:`Part.lines` holds each row's).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl

from metrify.api.problems import Problem
from metrify.sources import BadRow, json_error_reason, load_json, read_batches, string_columns

Format = Literal["json", "ndjson", "csv"]

MEDIA_TYPES: dict[str, Format] = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json-seq": "ndjson",
    "text/csv": "csv",
    "application/csv": "csv",
}


@dataclass
class Part:
    """One run of rows for ``Pipeline.submit`` (with ``first_line``, ``lines``, ``bad``)."""

    frame: pl.DataFrame
    first_line: int
    bad: list[BadRow]
    #: each row's line (CSV: blank and unsplittable lines sit between rows); None when
    #: the rows are consecutive from ``first_line``
    lines: npt.NDArray[np.int64] | None = None

    def line_numbers(self) -> npt.NDArray[np.int64]:
        """The line (CSV) or index (JSON) of each row of ``frame``."""
        if self.lines is not None:
            return self.lines
        return np.arange(self.frame.height, dtype=np.int64) + self.first_line


def body_charset(content_type: str | None, fmt: Format) -> str:
    """The character set a body's ``Content-Type`` names (``text/csv;
    charset=windows-1252``), UTF-8 when it names none. JSON is UTF-8 by definition; a
    CSV body may come in any character set the file reader takes (``--encoding``)."""
    from metrify.sources.mapping import MappingError, codec_name

    names = [
        value.strip().strip('"')
        for key, sep, value in (p.partition("=") for p in (content_type or "").split(";")[1:])
        if sep and key.strip().lower() == "charset"
    ]
    if not names:
        return "utf-8"
    try:
        codec = codec_name(names[0])
    except MappingError as exc:
        raise Problem(415, str(exc).replace("--encoding", "charset")) from None
    if fmt != "csv" and codec != "utf-8":
        raise Problem(415, f"charset {names[0]}: JSON bodies are UTF-8")
    return codec


def body_format(content_type: str | None) -> Format:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = MEDIA_TYPES.get(media)
    if fmt is None:
        accepted = ", ".join(sorted(MEDIA_TYPES))
        raise Problem(415, f"Content-Type {media or '(none)'} not accepted; use one of {accepted}")
    return fmt


def _objects(items: list[tuple[int, bytes | None, Any]]) -> Iterator[Part]:
    """Contiguous runs of JSON objects; anything else is a bad row at its index."""
    rows: list[dict[str, Any]] = []
    start = 0
    bad: list[BadRow] = []
    for index, raw, obj in items:
        reason = None
        if not isinstance(obj, dict):
            reason = "not a JSON object"
        elif not obj:
            reason = "empty JSON object"
        if reason is None:
            if not rows:
                start = index
            rows.append(obj)
            continue
        if rows:
            yield Part(string_columns(rows), start, [])
            rows = []
        text = (raw or orjson.dumps(obj)).decode("utf-8", "replace")[:1000] or "(empty)"
        bad.append(BadRow(text, reason, index))
    if rows:
        yield Part(string_columns(rows), start, [])
    if bad:
        yield Part(pl.DataFrame(), 0, bad)


def parse_json_array(data: bytes) -> list[Part]:
    try:
        value = load_json(data)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"body is not JSON: {json_error_reason(data, exc)}") from None
    if not isinstance(value, list):
        raise Problem(400, "a JSON body must be an array of records")
    return list(_objects([(i, None, item) for i, item in enumerate(value)]))


def parse_ndjson(data: bytes) -> list[Part]:
    items: list[tuple[int, bytes | None, Any]] = []
    bad: list[BadRow] = []
    index = 0
    for raw in data.split(b"\n"):
        if not raw.strip(b" \t\r"):
            continue
        try:
            items.append((index, raw, load_json(raw)))
        except orjson.JSONDecodeError as exc:
            text = raw.decode("utf-8", "replace")[:1000]
            bad.append(BadRow(text, json_error_reason(raw, exc), index))
        index += 1
    parts = list(_objects(items))
    if bad:
        parts.append(Part(pl.DataFrame(), 0, bad))
    return parts


def parse_csv(data: bytes, charset: str = "utf-8") -> list[Part]:
    """Through the CSV file reader (delimiter guessing, ragged lines, BOM, quoting, the
    body's character set)."""
    with tempfile.TemporaryDirectory(prefix="metrify-api-") as folder:
        path = Path(folder) / "body.csv"
        path.write_bytes(data)
        from metrify.sources import ReaderError

        try:
            return [
                Part(batch.data, batch.first_line, batch.bad, batch.lines)
                for batch in read_batches(path, 200_000, encoding=charset)
            ]
        except ReaderError as exc:
            text = str(exc).replace(str(path), "body")
            raise Problem(400, text.replace("--encoding", "a charset in Content-Type")) from None


def parse(fmt: Format, data: bytes, charset: str = "utf-8") -> list[Part]:
    if fmt == "json":
        return parse_json_array(data)
    if fmt == "ndjson":
        return parse_ndjson(data)
    return parse_csv(data, charset)


def content_lines(parts: Sequence[Part]) -> npt.NDArray[np.int64]:
    """The lines of a CSV body that hold a record, good or bad, in order (the header and
    blank lines are no record): what :func:`index_of_line` counts in."""
    numbers = [p.line_numbers() for p in parts]
    numbers += [np.array([b.line for b in p.bad if b.line is not None], np.int64) for p in parts]
    return np.unique(np.concatenate(numbers)) if numbers else np.empty(0, np.int64)


def index_of_line(
    fmt: Format, line: int | None, records: npt.NDArray[np.int64] | None = None
) -> int | None:
    """The 0-based record index of a quarantined row's ``line``.

    For CSV that is the line's place among ``records`` (:func:`content_lines` of the
    body, computed once per body); without them, ``line - 2`` (right for a body without
    blank lines). JSON lines are indices already.
    """
    if line is None or fmt != "csv":
        return line
    if records is None:
        return line - 2
    at = int(np.searchsorted(records, line))
    return at if at < len(records) and records[at] == line else None
