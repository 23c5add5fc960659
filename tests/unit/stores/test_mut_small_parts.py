"""Small store helpers the mutation run found unpinned (bench/results/mutation.md):
URLs handed to SQLAlchemy, a throttle mark's lifetime in Redis, the raw series query of
grid nodes, and the message of an aggregate query whose range is reversed."""

from __future__ import annotations

from typing import Any

import pytest

from metrify.stores.aggregates import BadQuery, answer
from metrify.stores.database import sqlalchemy_url
from metrify.stores.reads.series import GRID, WEATHER, _sql
from metrify.stores.throttle_redis import RedisCounters


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/m", "postgresql+psycopg://u:p@db:5432/m"),
        # libpq's short scheme is accepted too
        ("postgres://u@db/m", "postgresql+psycopg://u@db/m"),
        # a URL naming its driver already is left alone
        ("postgresql+psycopg://u@db/m", "postgresql+psycopg://u@db/m"),
    ],
)
def test_sqlalchemy_url_points_plain_urls_at_psycopg_3(given: str, expected: str) -> None:
    assert sqlalchemy_url(given) == expected


class _Recorder:
    """Stands in for the redis client: records what the counters ask of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def set(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((*args, kwargs))


@pytest.mark.parametrize(("seconds", "px"), [(2.5, 2500), (0.0004, 1), (60, 60000)])
def test_a_throttle_mark_lives_the_asked_milliseconds(seconds: float, px: int) -> None:
    counters = RedisCounters.__new__(RedisCounters)  # no server: the client is recorded
    recorder = _Recorder()
    counters.client, counters.prefix, counters._errors = recorder, "metrify:t:", (OSError,)
    counters.put("user:ana", seconds)
    assert recorder.calls == [("metrify:t:user:ana", "1", {"px": px})]


def test_raw_grid_rows_carry_their_interval_and_weather_rows_do_not() -> None:
    grid = _sql(GRID, "raw")
    assert grid.startswith("SELECT ts, interval_s, load_mw, ")
    weather = _sql(WEATHER, "raw")
    assert weather.startswith("SELECT ts, temperature_c, ")
    assert "interval_s" not in weather


def test_a_reversed_range_is_a_bad_query_with_its_own_message() -> None:
    conn: Any = None  # a region's answer reads nothing before checking its range
    with pytest.raises(BadQuery) as caught:
        answer(conn, "region", "north", "1d", "2025-02-01", "2025-01-01", "UTC", "UTC")
    assert str(caught.value) == "--to must be after --from"
