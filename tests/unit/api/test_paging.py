"""Time parameters and cursors the store cannot hold are the client's 422, never a 500."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from metrify.api import paging as q
from metrify.api.problems import Problem

FAR = [
    "9999-12-31T23:30:00+00:00",
    "9999-12-31T23:30:00-14:00",
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00",
]
OK = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("far", FAR)
def test_far_times_are_422(far: str) -> None:
    value = dt.datetime.fromisoformat(far)
    for call in (
        lambda: q.utc(value, "'since'"),
        lambda: q.check_range(value, OK),
        lambda: q.check_range(OK, value),
        lambda: q.decode_ts_cursor(_cursor(far)),
    ):
        with pytest.raises(Problem) as info:
            call()
        assert info.value.status == 422


def test_times_in_the_window_are_utc() -> None:
    local = dt.datetime(2025, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=14)))
    assert q.utc(local) == OK
    assert q.utc(dt.datetime(2025, 1, 1)) == OK
    assert q.check_range(OK, dt.datetime(2200, 1, 1, tzinfo=dt.UTC))[1].year == 2200
    assert q.decode_ts_cursor(_cursor("2025-01-01T00:00:00+00:00")) == OK


@pytest.mark.parametrize("text", ["-1", str(2**63), "9" * 40])
def test_id_cursors_outside_bigint_are_422(text: str) -> None:
    with pytest.raises(Problem) as info:
        q.decode_id_cursor(_cursor(text))
    assert info.value.status == 422
    assert q.decode_id_cursor(_cursor(str(2**63 - 1))) == 2**63 - 1
