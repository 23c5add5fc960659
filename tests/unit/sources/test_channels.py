"""Files with a row per value (``--channels CHANNEL=VALUE``) read as rows of readings:
a reading's rows gathered wherever they lie in the file, columns that differ per
channel kept per channel, bad rows with their lines. Expected rows are written out."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrify.contracts.records import READING
from metrify.sources import ReaderError, read_batches
from metrify.sources.decode import decode
from metrify.sources.mapping import MappingError, build_mapping


def _read(
    path: Path, rows: int = 200_000, channels: str = "Channel=Value", **options: str
) -> tuple[pl.DataFrame, list[tuple[str, int | None]], list[int]]:
    maps = [f"{k}={v}" for k, v in options.items()] or ["meter_id=Meter", "ts=Time"]
    mapping = build_mapping(READING, maps=maps, channels=channels, interval_s=900)
    batches = list(read_batches(path, rows, **mapping.file_options))
    frames = [b.data for b in batches if b.data.height]
    lines = [int(n) for b in batches if b.lines is not None for n in b.lines]
    data = pl.concat(frames) if frames else pl.DataFrame()
    return data, [(bad.reason, bad.line) for b in batches for bad in b.bad], lines


def test_a_readings_rows_are_gathered_across_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Meter,Time,Channel,Value,Unit\n"  # line 1; sorted by channel, as some exports are
        "M1,2024-01-01 00:00,1-0:1.29.0,0.25,kWh\n"  # 2
        "M1,2024-01-01 00:15,1-0:1.29.0,0.5,kWh\n"  # 3
        "M2,2024-01-01 00:00,1-0:1.29.0,1.0,kWh\n"  # 4
        "M1,2024-01-01 00:00,1-0:32.7.0,231,V\n"  # 5
        "M1,2024-01-01 00:15,1-0:32.7.0,229,V\n"  # 6
        "M1,2024-01-01 00:15,1-0:32.7.0,228,V\n"  # 7: the same channel again
        "M1,2024-01-01 00:30,,7,V\n"  # 8: no channel
    )
    data, bad, lines = _read(path, rows=2)  # two rows a batch: every reading is split
    assert data.columns == [
        "Meter", "Time", "1-0:1.29.0", "1-0:32.7.0", "1-0:1.29.0 Unit", "1-0:32.7.0 Unit",
    ]  # fmt: skip
    assert data.rows() == [
        ("M1", "2024-01-01 00:00", "0.25", "231", "kWh", "V"),
        ("M1", "2024-01-01 00:15", "0.5", "228", "kWh", "V"),
        ("M2", "2024-01-01 00:00", "1.0", None, "kWh", None),
    ]
    assert lines == [2, 3, 4]  # each reading keeps its first line
    assert sorted(bad, key=lambda b: b[1] or 0) == [
        ("repeated channel for one reading (the later row kept)", 6),
        ("no channel in column 'Channel'", 8),
    ]


def test_a_column_the_same_on_a_readings_rows_is_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Meter,Site,Time,Channel,Value\n"
        "M1,North,2024-01-01 00:00,kWh Del,0.25\n"
        "M1,North,2024-01-01 00:00,kWh Rec,0.0\n"
    )
    data, bad, _ = _read(path)
    assert bad == []
    assert data.rows(named=True) == [
        {"Meter": "M1", "Site": "North", "Time": "2024-01-01 00:00", "kWh Del": "0.25",
         "kWh Rec": "0.0"},
    ]  # fmt: skip


def test_a_unit_column_is_read_with_each_value(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Meter;Time;OBIS;Value;Unit\n"
        "M1;2024-01-01 00:00;1-0:1.29.0;950;Wh\n"
        "M1;2024-01-01 00:00;1-0:1.8.0;12.5;MWh\n"
        "M1;2024-01-01 00:00;1-0:32.7.0;231;\n"  # no unit: the value as it is
    )
    data, bad, _ = _read(path, channels="OBIS=Value+Unit")
    assert bad == []
    assert data.rows() == [("M1", "2024-01-01 00:00", "950 Wh", "12.5 MWh", "231")]
    mapping = build_mapping(READING, maps=["meter_id=Meter", "ts=Time"], interval_s=900)
    decoded = decode(READING, data, mapping)
    row = decoded.records.select("import_kwh", "register_kwh", "voltage_v").row(0)
    assert row == (0.95, 12500.0, 231.0)


def test_channels_that_are_no_channels_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    rows = "".join(f"M1,2024-01-01 00:00,{i},{i}\n" for i in range(100))
    path.write_text("Meter,Time,Channel,Value\n" + rows)
    with pytest.raises(ReaderError, match="holds 100 different values"):
        _read(path)
    with pytest.raises(ReaderError, match="column 'Kanal', which the file does not have"):
        _read(path, channels="Kanal=Value")
    path.write_text("Meter,Time,Channel,Value\nM1,2024-01-01 00:00,Meter,1\n")
    with pytest.raises(ReaderError, match="channel 'Meter' is also the name of a column"):
        _read(path)
    with pytest.raises(MappingError, match="expected CHANNEL=VALUE"):
        build_mapping(READING, channels="Channel")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.tuples(
            st.sampled_from(["M1", "M2"]),
            st.integers(0, 3),
            st.sampled_from(["A", "B", "C", ""]),
            st.integers(0, 9),
        ),
        max_size=40,
    ),
    rows=st.integers(1, 7),
)
def test_property_every_row_is_a_readings_value_or_a_bad_row(
    tmp_path: Path, values: list[tuple[str, int, str, int]], rows: int
) -> None:
    path = tmp_path / "export.csv"
    body = "".join(f"{m},2024-01-01 0{h}:00,{c},{v}\n" for m, h, c, v in values)
    path.write_text("Meter,Time,Channel,Value\n" + body)
    data, bad, lines = _read(path, rows=rows)
    # the later value of each (meter, time, channel) wins; every other row is a bad row
    expected: dict[tuple[str, str], dict[str, str]] = {}
    for m, h, c, v in values:
        if c:
            expected.setdefault((m, f"2024-01-01 0{h}:00"), {})[c] = str(v)
    got = {
        (r["Meter"], r["Time"]): {c: r[c] for c in ("A", "B", "C") if r.get(c) is not None}
        for r in data.iter_rows(named=True)
    }
    assert got == expected
    assert len(bad) + sum(len(v) for v in expected.values()) == len(values)
    assert lines == sorted(lines) and len(set(lines)) == len(lines)
