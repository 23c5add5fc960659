"""The times a record may carry: what a meter reading, measurement or query can name.

PostgreSQL's ``timestamptz`` holds 4713 BC..294276 AD, but the rest of the way does not:
Python's ``datetime`` ends at year 9999 (a time of 9999-12-31 with a -14:00 offset is
already past it in UTC, and year 1 with +14:00 is before year 1), the monthly partitions
and the lake are named by year, and a reading dated year 1 or 9999 is a broken clock,
not a measurement. So every door accepts times in one deliberate, documented window:
from the Unix epoch (no smart-meter, SCADA or weather archive reaches further back) to
the start of 2200 (far beyond any plausible forward-dated tariff or forecast, and far
inside every store's range). Times outside it are refused where they come in: rows go
to quarantine with a reason, request parameters get a problem response. The VEE clock
rule still judges the near future (``vee.future_tolerance_s``) inside this window.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

#: the earliest time a record or a request may name (inclusive).
EARLIEST_TS: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: the end of the window (exclusive for records; a range's exclusive end may equal it).
LATEST_TS: Final = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
#: how the window reads in error messages.
WINDOW_TEXT: Final = f"{EARLIEST_TS:%Y-%m-%dT%H:%M:%SZ}..{LATEST_TS:%Y-%m-%dT%H:%M:%SZ}"


def in_window(value: dt.datetime, *, end: bool = False) -> bool:
    """Whether an aware ``value`` lies in the window; ``end`` admits :data:`LATEST_TS`
    itself, as a range's exclusive end."""
    if value.tzinfo is None:
        raise ValueError("in_window needs an aware time")
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:  # year 1 with a positive offset, 9999 with a negative one
        return False
    return EARLIEST_TS <= utc <= LATEST_TS if end else EARLIEST_TS <= utc < LATEST_TS
