"""JSON records as raw rows: parsed exactly, then turned into string columns.

JSON Lines files, Kafka messages and HTTP bodies all carry JSON records; each is parsed
here and its values become their text, so JSON and CSV look alike to the pipeline's
decoding, whatever the source.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from typing import Any, Final

import orjson
import polars as pl

__all__ = ["LONG_DIGITS", "json_error_reason", "load_json", "string_columns"]

#: JSON integers this long may not fit 64 bits; orjson would turn them into floats.
LONG_DIGITS: Final = re.compile(rb"\d{19}")


class _JsonNumber(str):
    """A JSON number kept as its exact text (used where a float would lose digits)."""

    __slots__ = ()


def load_json(raw: bytes, *, exact_long_numbers: bool = True) -> Any:
    """Parse JSON with orjson, keeping the exact digits of numbers beyond 64 bits.

    Raises ``orjson.JSONDecodeError``; :func:`json_error_reason` names the problem.
    """
    obj = orjson.loads(raw)
    if exact_long_numbers and LONG_DIGITS.search(raw):
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
