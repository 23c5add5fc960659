"""What the read endpoints share on the HTTP side: time ranges, cursors and JSON pages.

Times on the wire are ISO 8601, naive ones UTC. Cursors are opaque to clients: the
base64 of the last row's keyset value (a time or an id). The SQL behind the endpoints is
in :mod:`metrify.stores.reads`.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from metrify.api.problems import Problem
from metrify.contracts.timespan import WINDOW_TEXT, in_window
from metrify.stores.reads.buckets import JsonRow, Resolution

__all__ = [
    "MIN_TS",
    "Resolution",
    "check_range",
    "decode_id_cursor",
    "decode_ts_cursor",
    "encode_cursor",
    "json_page",
    "utc",
]


def json_page(rows: list[JsonRow], limit: int, head: bytes) -> bytes:
    """``{<head>, "items": [...], "next_cursor": ...}`` from up to ``limit + 1`` JSON
    rows (one more than the page says there is a next page)."""
    more = len(rows) > limit
    page = rows[:limit]
    cursor = encode_cursor(page[-1][1]).encode() if more and page else None
    items = b",".join(str(r[0]).encode() for r in page)
    tail = b'"' + cursor + b'"' if cursor else b"null"
    return b"{" + head + b',"items":[' + items + b'],"next_cursor":' + tail + b"}"


def utc(value: dt.datetime, name: str = "time") -> dt.datetime:
    """Naive times on the wire are UTC (DESIGN.md).

    A time outside the records' window (:mod:`metrify.contracts.timespan`) is the
    client's error, answered 422: year 1 with a positive offset or 9999 with a negative
    one cannot even be turned into UTC, and nothing stored lies outside the window."""
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    if not in_window(aware, end=True):
        raise Problem(422, f"{name} must lie in {WINDOW_TEXT}")
    return aware.astimezone(dt.UTC)


def check_range(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start, end = utc(start, "'from'"), utc(end, "'to'")
    if end <= start:
        raise Problem(422, "'to' must be after 'from'")
    return start, end


MIN_TS = dt.datetime(1, 1, 2, tzinfo=dt.UTC)


def encode_cursor(value: Any) -> str:
    text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_ts_cursor(cursor: str | None) -> dt.datetime:
    if cursor is None:
        return MIN_TS
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = dt.datetime.fromisoformat(text)
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "invalid cursor") from None
    # Cursors this API hands out hold stored times; any other time is a forged one.
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    if not in_window(aware, end=True):
        raise Problem(422, "invalid cursor")
    return aware.astimezone(dt.UTC)


def decode_id_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = int(text)
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "invalid cursor") from None
    if not 0 <= value < 2**63:  # ids are bigint: anything else is a forged cursor
        raise Problem(422, "invalid cursor")
    return value
