"""Times no store can hold, and ``--map`` naming a column the source lacks.

A reading dated year 1 or 9999 (or past either once its offset is applied) must cost
only its own row: it is returned as a reject with a reason, the other rows decode.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.contracts.records import READING
from metrify.sources.decode import decode
from metrify.sources.mapping import Mapping, MappingError, build_mapping, check_mapped_columns

GOOD = "2024-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "ts",
    [
        "9999-12-31T23:30:00Z",
        "9999-12-31T23:30:00-14:00",  # past year 9999 in UTC
        "9999-12-31 23:30",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "0001-01-01 00:00",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
    ],
)
def test_a_time_outside_the_window_is_a_reject_not_a_failure(ts: str) -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["M1", "M1", "M1"],
            "ts": [GOOD, ts, "2024-01-01T00:30:00Z"],
            "import_kwh": ["1", "2", "3"],
            "interval_s": ["1800"] * 3,
        }
    )
    out = decode(READING, raw, Mapping())
    assert out.records.get_column("ts").to_list() == [
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 1, 0, 30, tzinfo=dt.UTC),
    ]
    assert out.records.get_column("import_kwh").to_list() == [1.0, 3.0]
    assert out.rejects.select("reason", "line").rows() == [
        ("ts outside 1970-01-01T00:00:00Z..2200-01-01T00:00:00Z", 1)
    ]


def test_the_window_edges_are_kept() -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["M1", "M1"],
            "ts": ["1970-01-01T00:00:00Z", "2199-12-31T23:30:00Z"],
            "import_kwh": ["1", "2"],
            "interval_s": ["1800", "1800"],
        }
    )
    out = decode(READING, raw, Mapping())
    assert out.rejects.height == 0
    assert out.records.height == 2


def test_typed_times_outside_the_window_are_rejects_too() -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["M1", "M1"],
            "ts": [dt.datetime(2024, 1, 1), dt.datetime(9999, 12, 31, 23, 30)],
            "import_kwh": [1.0, 2.0],
            "interval_s": [1800, 1800],
        }
    )
    out = decode(READING, raw, Mapping())
    assert out.records.get_column("import_kwh").to_list() == [1.0]
    assert out.rejects.get_column("line").to_list() == [1]


def test_a_mapped_column_the_source_lacks_is_an_error_naming_both() -> None:
    mapping = build_mapping(READING, maps=["export_kwh=gg"])
    columns = ["meter_id", "ts", "import_kwh", "GG"]
    with pytest.raises(MappingError) as info:
        check_mapped_columns(mapping, columns)
    message = str(info.value)
    assert "'gg'" in message and "did you mean 'GG'" in message
    assert "columns are meter_id, ts, import_kwh, GG" in message
    assert "\n" not in message
    check_mapped_columns(build_mapping(READING, maps=["export_kwh=GG"]), columns)
