"""JSON Lines files (optionally gzipped): one JSON object per line.

Values become their text (:func:`~metrify.sources.json_rows.string_columns`), so a JSON
Lines file reaches the pipeline as the same string columns a CSV file does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl

from metrify.sources.batches import BadRow, RawBatch, raw_text
from metrify.sources.chunks import LineChunker, first_content_line
from metrify.sources.json_rows import LONG_DIGITS, json_error_reason, load_json, string_columns
from metrify.sources.opening import ByteSource

__all__ = ["read_jsonl"]

_LEADING_BLANK_JSON: Final = re.compile(rb"[ \t\r\n]*")


def read_jsonl(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    """Stream a JSON Lines file; lines that are not JSON objects become bad rows."""
    lowered = path.name.lower()
    src = ByteSource(path, gzipped=lowered.endswith(".gz"), zipped=lowered.endswith(".zip"))
    try:
        chunker = LineChunker(src)
        source = f"file:{path.name}"
        for chunk in chunker.chunks(batch_rows):
            frame, bad, lines = _parse_jsonl(chunk.data, chunk.first_line)
            if frame.width == 0 and not bad and not chunk.bad:
                continue  # only blank lines
            yield RawBatch(
                frame,
                chunk.bad + bad,
                source,
                first_content_line(chunk.data, chunk.first_line, _LEADING_BLANK_JSON),
                src.bytes_read,
                lines,
            )
    finally:
        src.close()


def _parse_jsonl(
    data: bytes, first_line: int
) -> tuple[pl.DataFrame, list[BadRow], npt.NDArray[np.int64]]:
    """One JSON object per line; values become their text so CSV and JSON look alike.
    Also the line number of each row (blank and bad lines sit between rows)."""
    rows: list[dict[str, Any]] = []
    bad: list[BadRow] = []
    lines: list[int] = []
    long_numbers = LONG_DIGITS.search(data) is not None
    for offset, raw in enumerate(data.split(b"\n")):
        if not raw.strip(b" \t\r"):
            continue
        number = first_line + offset
        try:
            obj = load_json(raw, exact_long_numbers=long_numbers)
        except orjson.JSONDecodeError as exc:
            bad.append(BadRow(raw_text(raw), json_error_reason(raw, exc), number))
            continue
        if not isinstance(obj, dict):
            bad.append(BadRow(raw_text(raw), "not a JSON object", number))
            continue
        if not obj:
            # A frame cannot hold a row without columns, and there is nothing to decode.
            bad.append(BadRow(raw_text(raw), "empty JSON object", number))
            continue
        rows.append(obj)
        lines.append(number)
    return string_columns(rows), bad, np.array(lines, dtype=np.int64)
