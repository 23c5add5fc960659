"""What a forecast of each horizon covers, and when the rolling-origin backtest issues it.

- **day-ahead**: issued on local day D (the backtest issues at 10:00 local, before the
  noon deadline of day-ahead markets and network planning), it covers every interval of
  local day D+1 (46, 48 or 50 half-hours on DST days), using only the intervals that had
  ended by the issue time (at 10:00 on a half-hourly series: up to the 09:30 interval).
- **intraday**: issued at any time, it covers the intervals starting in the next
  ``intraday_hours`` hours (6 by default) from the first interval boundary at or after
  the issue time. The backtest issues at 00:00, 06:00, 12:00 and 18:00 local so that
  every target interval is forecast exactly once.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

Horizon = Literal["day-ahead", "intraday"]
HORIZONS: tuple[Horizon, ...] = ("day-ahead", "intraday")
#: local clock time at which the backtest issues day-ahead forecasts
DAY_AHEAD_ISSUE = dt.time(10, 0)
INTRADAY_HOURS = 6

UTC = dt.UTC


def check_horizon(horizon: str) -> Horizon:
    if horizon not in HORIZONS:
        raise ValueError(f"horizon must be one of {', '.join(HORIZONS)}; got {horizon!r}")
    return horizon


def aware(issue: dt.datetime) -> dt.datetime:
    if issue.tzinfo is None or issue.utcoffset() is None:
        raise ValueError("issue must be a time-zone-aware datetime")
    return issue.astimezone(UTC)


def target_window(
    issue: dt.datetime, horizon: Horizon, tz: str, intraday_hours: int = INTRADAY_HOURS
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the intervals a forecast issued at ``issue`` covers."""
    issue = aware(issue)
    if horizon == "day-ahead":
        zone = ZoneInfo(tz)
        day = issue.astimezone(zone).date() + dt.timedelta(days=1)
        return local_midnight(day, zone), local_midnight(day + dt.timedelta(days=1), zone)
    return issue, issue + dt.timedelta(hours=intraday_hours)


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)


def backtest_issues(
    start: dt.date,
    end: dt.date,
    horizon: Horizon,
    tz: str,
    issue_time: dt.time = DAY_AHEAD_ISSUE,
    intraday_hours: int = INTRADAY_HOURS,
) -> list[dt.datetime]:
    """The issue times (UTC) whose targets tile the local days ``start``..``end`` inclusive."""
    zone = ZoneInfo(tz)
    issues: list[dt.datetime] = []
    day = start
    while day <= end:
        if horizon == "day-ahead":
            before = day - dt.timedelta(days=1)
            issues.append(dt.datetime.combine(before, issue_time, tzinfo=zone).astimezone(UTC))
        else:
            hour = 0
            while hour < 24:
                local = dt.datetime.combine(day, dt.time(hour), tzinfo=zone)
                issues.append(local.astimezone(UTC))
                hour += intraday_hours
        day += dt.timedelta(days=1)
    return issues


def training_issues(
    issue: dt.datetime, horizon: Horizon, tz: str, count: int, intraday_hours: int = INTRADAY_HOURS
) -> list[dt.datetime]:
    """Earlier issue times like ``issue`` (same local clock time for day-ahead; every
    ``intraday_hours`` back for intraday), newest first, to build a model's training rows."""
    zone = ZoneInfo(tz)
    local = aware(issue).astimezone(zone)
    out = []
    for m in range(1, count + 1):
        if horizon == "day-ahead":
            naive = local.replace(tzinfo=None) - dt.timedelta(days=m)
            out.append(naive.replace(tzinfo=zone).astimezone(UTC))
        else:
            out.append(aware(issue) - dt.timedelta(hours=intraday_hours * m))
    return out
