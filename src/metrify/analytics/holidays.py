"""Public holidays: one calendar for every analysis that tells holidays apart.

Patterns (a holiday's typical day) and forecasts (a holiday read as a Sunday) must agree
on which days are holidays, so both read them here, by the calendar the ``holidays``
setting names (a country code with an optional subdivision, as the ``holidays``
package names them: ``GB-ENG``, ``DE-BY``, ``US-CA``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Final

__all__ = ["DEFAULT_CALENDAR", "holiday_dates"]

#: England and Wales's bank holidays: plain ``GB`` is the UK-wide ones only, without
#: Easter Monday and the late-August bank holiday
DEFAULT_CALENDAR: Final = "GB-ENG"


@lru_cache(maxsize=64)
def holiday_dates(calendar: str, first_year: int, last_year: int) -> frozenset[dt.date]:
    """Public holidays of ``calendar`` from ``first_year`` to ``last_year`` (included);
    ValueError naming the calendar when the ``holidays`` package does not know it."""
    # imported here: its calendars cost every command (a load too) 0.1 s to import
    import holidays as holidays_lib

    code, _, subdiv = calendar.partition("-")
    try:
        found = holidays_lib.country_holidays(
            code, subdiv=subdiv or None, years=range(first_year, last_year + 1)
        )
    except (NotImplementedError, KeyError) as exc:
        raise ValueError(f"unknown holiday calendar {calendar!r}: {exc}") from None
    return frozenset(found.keys())
