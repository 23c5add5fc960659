"""Local hours from a few offset look-ups equal Python's own conversion of every row.

The expected values come from ``zoneinfo`` row by row (``datetime.astimezone``), not
from Polars: zones with whole, half and three-quarter hour offsets, both hemispheres'
daylight saving (Adelaide changes at 16:30 UTC, inside a UTC hour), a zone without
DST, unknown and missing zones (UTC), instants on both sides of 1970.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metrify.anomaly.state import local_hour_of_week
from metrify.contracts.localtime import hour_of_day, hour_of_week, local_us

ZONES = ["Europe/London", "America/New_York", "Australia/Adelaide", "Asia/Kolkata",
         "Pacific/Chatham", "Asia/Kathmandu"]  # fmt: skip
UTC = dt.UTC


def _expected(ts: dt.datetime, zone: str | None) -> tuple[int, int]:
    """(hour of day, hour of week) on the zone's wall clock; other zones are UTC."""
    local = ts.astimezone(ZoneInfo(zone)) if zone in ZONES else ts
    return local.hour, local.weekday() * 24 + local.hour


moments = st.one_of(
    # around the changes of 2024-2025 in both hemispheres, to the quarter hour
    st.integers(0, 2 * 366 * 96).map(
        lambda q: dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=15 * q)
    ),
    # anywhere from 1950 to 2060, to the minute
    st.integers(0, 110 * 366 * 1440).map(
        lambda m: dt.datetime(1950, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=m)
    ),
)
zones = st.sampled_from([*ZONES, "UTC", "Not/AZone", None])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(moments, zones), min_size=1, max_size=300))
def test_local_hours_are_those_of_zoneinfo(rows: list[tuple[dt.datetime, str | None]]) -> None:
    frame = pl.DataFrame(
        {"ts": [t for t, _ in rows], "tz": [z for _, z in rows]},
        schema={"ts": pl.Datetime("us", "UTC"), "tz": pl.String},
    )
    local = local_us(frame, "tz", ZONES)
    got = frame.select(hour=hour_of_day(local), how=hour_of_week(local))
    expected = [_expected(t, z) for t, z in rows]
    assert list(zip(got["hour"], got["how"], strict=True)) == expected
    # the detectors' hour of the week, which finds the zones itself
    assert frame.select(local_hour_of_week(frame))["how"].to_list() == [e[1] for e in expected]


def test_a_frame_without_zones_is_on_utc() -> None:
    ts = [dt.datetime(2025, 3, 30, h, tzinfo=UTC) for h in range(24)]
    frame = pl.DataFrame({"ts": ts}, schema={"ts": pl.Datetime("us", "UTC")})
    hours = frame.select(hour_of_day(local_us(frame, None, ZONES)))
    assert hours.to_series().to_list() == list(range(24))
