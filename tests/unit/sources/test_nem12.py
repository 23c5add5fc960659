"""NEM12 files read as readings rows: streams side by side, NEM time, units, null data
and every record that cannot be read kept as a bad row with its line. Expected values
are written out from the records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrify.sources import ReaderError, read_batches

TRAILER = ",,,20240310121004,20240310182204"


def _day(date: str, values: Sequence[object], quality: str = "A") -> str:
    return f"300,{date},{','.join(str(v) for v in values)},{quality}{TRAILER}"


def _read(
    tmp_path: Path, lines: list[str], rows: int = 200_000
) -> tuple[pl.DataFrame, list[tuple[str, int | None]]]:
    path = tmp_path / "nem12.csv"
    path.write_text("\n".join(["100,NEM12,202403101200,MDP,RETAILER", *lines, "900"]) + "\n")
    batches = list(read_batches(path, rows))
    frames = [b.data for b in batches if b.data.height]
    data = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    return data, [(bad.reason, bad.line) for b in batches for bad in b.bad]


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def test_five_minute_streams_start_at_nem_midnight(tmp_path: Path) -> None:
    data, bad = _read(
        tmp_path,
        ["200,NMI0000001,E1,1,E1,N1,M1,kWh,5,", _day("20240101", list(range(288)))],
    )
    assert bad == []
    assert data.height == 288
    first, last = data.row(0, named=True), data.row(287, named=True)
    # 1 January 00:00 in NEM time (UTC+10) is 31 December 14:00 UTC
    assert (first["ts"], first["interval_s"], first["import_kwh"]) == (
        _at(2023, 12, 31, 14),
        300,
        0.0,
    )
    assert (last["ts"], last["import_kwh"]) == (_at(2024, 1, 1, 13, 55), 287.0)


def test_a_meter_split_across_chunks_keeps_import_and_export_in_one_row(tmp_path: Path) -> None:
    days = [f"202401{d:02d}" for d in range(1, 11)]
    lines = ["200,NMI0000001,E1B1,1,E1,N1,M1,Wh,15,"]
    lines += [_day(d, [1000] * 96) for d in days]
    lines += ["200,NMI0000001,E1B1,2,B1,N1,M1,MWh,15,"]
    lines += [_day(d, [0.002] * 96) for d in days]
    lines += ["200,NMI0000002,E1,1,E1,N1,M2,kWh,15,", _day("20240101", [0.4] * 96)]
    lines += [_day("20240101", [0.5] * 96)]  # the day again, corrected: the later counts
    data, bad = _read(tmp_path, lines, rows=96)  # a chunk of two lines
    assert bad == []
    one = data.filter(pl.col("meter_id") == "NMI0000001")
    assert one.height == 960 and one["ts"].n_unique() == 960
    assert set(one["import_kwh"]) == {1.0} and set(one["export_kwh"]) == {2.0}
    two = data.filter(pl.col("meter_id") == "NMI0000002")
    assert two.height == 96 and two["export_kwh"].null_count() == 96
    assert set(two["import_kwh"]) == {0.5}


def test_null_data_days_and_intervals_have_no_value(tmp_path: Path) -> None:
    lines = [
        "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,",
        _day("20240101", [""] * 48, "N"),  # null data may be written blank
        _day("20240102", [1] * 48, "V"),
        "400,1,46,A,,",
        "400,47,48,N,,",
        _day("20240103", [1] * 48, "E52"),  # an estimate is a value
    ]
    data, bad = _read(tmp_path, lines)
    assert bad == []
    values = data.sort("ts")["import_kwh"].to_list()
    assert values[:48] == [None] * 48
    assert values[48:96] == [1.0] * 46 + [None, None]
    assert values[96:] == [1.0] * 48


def test_the_providers_estimates_are_marked_day_by_day_and_interval_by_interval(
    tmp_path: Path,
) -> None:
    lines = [
        "200,NMI0000001,E1E2,1,E1,N1,M1,kWh,30,",
        _day("20240101", [1] * 48, "E52"),  # an estimated day
        _day("20240102", [1] * 48, "V"),
        "400,1,10,A,,",
        "400,11,12,S53,16,",  # two substituted half hours
        "400,13,48,A,,",
        _day("20240103", [1] * 48, "A"),
        "200,NMI0000001,E1E2,2,E2,N2,M2,kWh,30,",
        _day("20240103", [1] * 48, "V"),
        "400,1,47,A,,",
        "400,48,48,F14,,",  # the controlled load's last half hour: a final substitute
        "200,NMI0000002,E1,1,E1,N1,M3,kWh,30,",
        _day("20240101", [1] * 48, "A"),  # a meter with no estimate has no such marks
    ]
    data, bad = _read(tmp_path, lines)
    assert bad == []
    one = data.filter(pl.col("meter_id") == "NMI0000001").sort("ts")
    marked = one["estimated"].to_list()
    # day 1 all 48; day 2 its 11th and 12th; day 3 its last (E1 actual, E2 substituted)
    assert marked == [True] * 48 + [False] * 10 + [True] * 2 + [False] * 83 + [True]
    assert one["import_kwh"].to_list()[-1] == 2.0  # E1 + E2: the estimate is a value
    two = data.filter(pl.col("meter_id") == "NMI0000002")
    assert two.height == 48 and not two["estimated"].fill_null(False).any()


def test_records_that_cannot_be_read_are_bad_rows_with_their_lines(tmp_path: Path) -> None:
    lines = [
        _day("20240101", [1] * 48),  # line 2: before any 200
        "200,NMI0000001,E1,1,E1,N1,M1,kWh,60,",  # line 3: no such interval length
        _day("20240101", [1] * 48),  # line 4: its stream could not be read
        "200,NMI0000001,E1,1,E1,N1,M1,kVArh,30,",  # line 5: no energy unit for E1
        "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,",  # line 6: good
        _day("20240101", [1] * 47),  # line 7: one value short
        _day("2024013x", [1] * 48),  # line 8: no date
        "400,40,48,N,,",  # line 9: after a 300 record that was not read
        _day("20240102", [1] * 47 + ["x"]),  # line 10: no number
        "250,NMI0000001,E1",  # line 11: a NEM13 record
        _day("20240103", [2] * 48, "V"),  # line 12: good
        "400,1,48,A,,",  # line 13: good
        "400,40,49,N,,",  # line 14: past the day
    ]
    data, bad = _read(tmp_path, lines)
    assert sorted(line or 0 for _, line in bad) == [2, 3, 4, 5, 7, 8, 9, 10, 11, 14]
    reasons = {line: reason for reason, line in bad}
    assert reasons[2] == "NEM12 300 record before any 200 record"
    assert "interval length '60'" in reasons[3]
    assert reasons[4] == "NEM12 300 record of a stream whose 200 record could not be read"
    assert "no energy unit" in reasons[5]
    assert "expected 48 interval values" in reasons[7]
    assert "no date" in reasons[8]
    assert reasons[9] == "NEM12 400 record without its 300 record"
    assert "not a number" in reasons[10]
    assert "outside 1..48" in reasons[14]
    assert "unknown record type '250'" in reasons[11]
    assert data["import_kwh"].to_list() == [2.0] * 48


def test_a_nem13_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nem13.csv"
    path.write_text("100,NEM13,202403101200,MDP,RETAILER\n900\n")
    with pytest.raises(ReaderError, match=r"nem13\.csv: NEM13"):
        list(read_batches(path))


RECORD = st.one_of(
    st.sampled_from(["200", "300", "400", "500", "900", "100", "250", "xyz", ""]),
    st.text(alphabet="0123456789,.-AENVSkWhM ", max_size=12),
)


GOOD = st.sampled_from(
    [
        "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,",
        "200,NMI0000002,B1,1,B1,N1,M2,Wh,30,",
        _day("20240101", [0.5] * 48),
        _day("20240102", [1] * 48, "V"),
        "400,1,10,N,,",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.one_of(GOOD, st.lists(RECORD, min_size=1, max_size=60).map(",".join)),
        min_size=1,
        max_size=12,
    )
)
def test_property_any_lines_after_a_nem12_header_read_or_become_bad_rows(
    tmp_path: Path, lines: list[str]
) -> None:
    """Whatever follows the header (good records among garbage), the reader hands out
    rows and bad rows and never raises; every row carries a line of the file, and so
    does every bad row."""
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join(["100,NEM12,202403101200,MDP,RETAILER", *lines]) + "\n")
    batches = list(read_batches(path))
    for batch in batches:
        assert batch.lines is not None and len(batch.lines) == batch.data.height
        assert all(2 <= line <= len(lines) + 1 for line in batch.lines.tolist())
        assert all(b.line is not None and 2 <= b.line <= len(lines) + 1 for b in batch.bad)


def test_a_stream_without_days_gives_no_rows(tmp_path: Path) -> None:
    """A 200 record with no 300 under it (a stream without data in the period), between
    meters and at the end of the file."""
    data, bad = _read(
        tmp_path,
        [
            "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,",
            "200,NMI0000002,E1,1,E1,N1,M2,kWh,30,",
            _day("20240101", [1] * 48),
            "200,NMI0000003,E1,1,E1,N1,M3,kWh,30,",
        ],
    )
    assert bad == [] and set(data["meter_id"]) == {"NMI0000002"}
