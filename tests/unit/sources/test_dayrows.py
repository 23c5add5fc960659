"""Rows of days (a column per interval) turned into rows of intervals: times, values,
the lines they came from, and what cannot be read that way. Expected values are written
out from the input rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metrify.contracts.records import READING
from metrify.sources import ReaderError, read_batches
from metrify.sources.dayrows import time_columns
from metrify.sources.mapping import MappingError, build_mapping


def test_time_columns_read_times_ranges_and_the_days_end() -> None:
    assert time_columns(["meter", "0:30", "23:30", "0:00", "Row Quality"]) == {
        "0:30": "00:30:00",
        "23:30": "23:30:00",
        "0:00": "24:00:00",  # after the day's other times: its end
    }
    assert time_columns(["00:00 - 00:15", "00:15-00:30", "25:00", "12:60"]) == {
        "00:00 - 00:15": "00:00:00",  # a range stands for its start
        "00:15-00:30": "00:15:00",
    }
    assert time_columns(["date", "00:00", "00:15"]) == {"00:00": "00:00:00", "00:15": "00:15:00"}


def test_day_rows_become_interval_rows_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "days.csv"
    path.write_text(
        "meter;Datum;00:00;12:00;Einheit\nA;01.03.2024;1,5;2;kWh\n\nB;02.03.2024;3;;kWh\n"
    )
    (batch,) = list(read_batches(path, wide=("import_kwh", "Datum")))
    assert batch.data.columns == ["meter", "Datum", "Einheit", "import_kwh"]
    assert batch.data.rows() == [
        ("A", "01.03.2024 00:00:00", "kWh", "1,5"),
        ("A", "01.03.2024 12:00:00", "kWh", "2"),
        ("B", "02.03.2024 00:00:00", "kWh", "3"),
        ("B", "02.03.2024 12:00:00", "kWh", ""),
    ]
    assert batch.lines is not None and batch.lines.tolist() == [2, 2, 4, 4]
    (by_position,) = list(read_batches(path, wide=("import_kwh", "#2")))
    assert by_position.data["Datum"][0] == "01.03.2024 00:00:00"


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("meter;Datum;kWh", "columns named by the time of day"),
        ("meter;Tag;00:00;12:00", "column 'Datum'"),
        ("meter;Datum;00:00;12:00;import_kwh", "already has"),
    ],
)
def test_files_that_are_no_day_rows_are_refused(tmp_path: Path, header: str, words: str) -> None:
    path = tmp_path / "days.csv"
    path.write_text(header + "\nA;01.03.2024;1;2;3\n")
    with pytest.raises(ReaderError, match=words):
        list(read_batches(path, wide=("import_kwh", "Datum")))


def test_wide_names_a_number_field_nothing_else_supplies() -> None:
    assert build_mapping(READING, wide="import_kwh").wide == "import_kwh"
    with pytest.raises(MappingError, match="not a number field"):
        build_mapping(READING, wide="meter_id")
    with pytest.raises(MappingError, match="drop --map/--set import_kwh"):
        build_mapping(READING, wide="import_kwh", maps=["import_kwh=kWh"])


HEADER = st.one_of(
    st.sampled_from(["Datum", "meter", "00:00", "0:30", "24:00", "0:00", "12:00-12:30", "x"]),
    st.text(alphabet="0123456789: -ab", min_size=1, max_size=8),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(HEADER, min_size=1, max_size=8, unique=True),
    rows=st.integers(min_value=0, max_value=5),
)
def test_property_day_rows_become_one_row_per_time_column_or_are_refused(
    tmp_path: Path, names: list[str], rows: int
) -> None:
    """Any header: either the file is refused with a reason, or each day row gives
    exactly one row per column named by a time, each with the line of its day."""
    # (a header of blanks alone is a blank line, which a CSV reader skips: not a header)
    assume(";".join(names).strip())
    path = tmp_path / "days.csv"
    body = [";".join(f"{r}{c}" for c in range(len(names))) for r in range(rows)]
    path.write_text("\n".join([";".join(names), *body]) + "\n")
    times = time_columns(names)
    try:
        batches = list(read_batches(path, wide=("import_kwh", "Datum")))
    except ReaderError:
        assert len(times) < 2 or "Datum" not in names or "import_kwh" in names
        return
    if rows == 0:  # a header alone: nothing to turn, nothing to refuse
        assert sum(b.data.height for b in batches) == 0
        return
    assert len(times) >= 2 and "Datum" in names
    total = sum(b.data.height for b in batches)
    assert total == rows * len(times)
    for batch in batches:
        assert batch.lines is not None
        assert set(batch.lines.tolist()) <= set(range(2, 2 + rows))
