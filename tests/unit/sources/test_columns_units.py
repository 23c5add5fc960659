"""Columns by position, files without a header, pandas' empty first header, epoch
times, fixed UTC offsets and units, on real files where there are some (expected values
computed from the raw text, not by the decoder)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from metrify.contracts.records import GRID, READING, WEATHER
from metrify.sources.decode import decode
from metrify.sources.files import read_batches
from metrify.sources.mapping import Mapping, MappingError, build_mapping
from support.realdata import shared_data

UTC = dt.UTC


def _read(path: Path, **options: bool) -> pl.DataFrame:
    return pl.concat([b.data for b in read_batches(path, **options)])


def test_headerless_epoch_file_by_position() -> None:
    """The home's hourly gas register: ``epoch_seconds,litres`` with no header."""
    path = shared_data() / "dutch-home-registers" / "gas_quantity_CurrentGasQuantity_5yrhours.csv"
    raw = np.loadtxt(path, delimiter=",", dtype=np.int64)[:500]
    data = _read(path, header=False).head(500)
    assert data.columns == ["#1", "#2"]
    mapping = build_mapping(
        READING,
        maps=["ts=#1", "import_kwh=#2"],
        sets=["meter_id=G1"],
        units=["import_kwh=Wh"],
        interval_s=3600,
    )
    out = decode(READING, data, mapping)
    assert out.rejects.height == 0
    expected = [dt.datetime.fromtimestamp(int(t), UTC) for t in raw[:, 0]]
    assert out.records["ts"].to_list() == expected
    assert out.records["import_kwh"].to_list() == pytest.approx((raw[:, 1] / 1000).tolist())


def test_pandas_empty_first_header_is_column_one(tmp_path: Path) -> None:
    """pandas' ``to_csv`` writes an empty name over its index (here the time)."""
    path = tmp_path / "frame.csv"
    path.write_text(",meter,kwh\n2024-01-01 00:00:00,M1,0.5\n2024-01-01 00:30:00,M1,0.25\n")
    data = _read(path)
    assert data.columns == ["#1", "meter", "kwh"]
    mapping = build_mapping(
        READING, maps=["ts=#1", "meter_id=meter", "import_kwh=kwh"], interval_s=1800
    )
    out = decode(READING, data, mapping)
    assert out.records["ts"].to_list() == [
        dt.datetime(2024, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 0, 30, tzinfo=UTC),
    ]


def test_a_position_past_the_last_column_is_an_error() -> None:
    from metrify.sources.mapping import check_mapped_columns

    mapping = build_mapping(READING, maps=["ts=#3"], interval_s=1800)
    with pytest.raises(MappingError, match=r"no column '#3' \(the file has 2 columns\)"):
        check_mapped_columns(mapping, ["#1", "#2"])


def test_columns_named_by_obis_code_fill_the_fields_they_name() -> None:
    """A header of OBIS codes maps without ``--map``; what the user maps or sets, and a
    column with the field's own name, come first."""
    columns = ["0-0:1.0.0", "meter_id", "1-0:1.29.0", "1-0:1.8.0*255", "1.8.0", "1-0:2.7.0"]
    resolved = build_mapping(READING).resolve(columns)
    assert resolved.columns == {
        "ts": "0-0:1.0.0",
        "import_kwh": "1-0:1.29.0",
        "register_kwh": "1-0:1.8.0*255",  # the first of two columns of one code
    }  # meter_id has a column of its name; export power (negated) is left to --map
    mapped = build_mapping(READING, maps=["import_kwh=kwh"], sets=["register_kwh=0"])
    assert mapped.resolve([*columns, "kwh"]).columns == {"import_kwh": "kwh", "ts": "0-0:1.0.0"}
    data = pl.DataFrame(
        {"0-0:1.0.0": ["2024-01-01T00:00:00Z"], "meter_id": ["M1"], "1-0:1.29.0": ["0.25"]}
    )
    out = decode(READING, data, build_mapping(READING, interval_s=900))
    assert out.records.select("meter_id", "ts", "import_kwh").rows() == [
        ("M1", dt.datetime(2024, 1, 1, tzinfo=UTC), 0.25)
    ]
    assert out.ignored_columns == []


def test_tariff_registers_add_up_to_the_total_no_column_carries() -> None:
    """A DSMR meter exports its import and export per tariff (1.8.1 low, 1.8.2 normal)
    and no total: the total register is their sum. A total column, where there is one,
    wins; of two columns of one tariff, the first counts."""
    columns = ["0-0:1.0.0", "1-0:1.8.1", "1-0:1.8.2", "1.8.2", "1-0:2.8.1", "1-0:2.8.2"]
    resolved = build_mapping(READING).resolve(columns)
    assert resolved.columns["register_kwh"] == "1-0:1.8.1+1-0:1.8.2"
    assert resolved.columns["export_register_kwh"] == "1-0:2.8.1+1-0:2.8.2"
    with_total = build_mapping(READING).resolve([*columns, "1-0:1.8.0"]).columns
    assert with_total["register_kwh"] == "1-0:1.8.0"
    data = pl.DataFrame(
        {
            "0-0:1.0.0": ["2024-01-01T00:00:00Z"],
            "0-0:96.1.1": ["E1"],
            "1-0:1.8.1": ["1000.25"],
            "1-0:1.8.2": ["2000.5"],
            "1-0:1.29.0": ["0.5"],
        }
    )
    out = decode(READING, data, build_mapping(READING, interval_s=900))
    assert out.records.select("register_kwh", "import_kwh").rows() == [(3000.75, 0.5)]
    assert out.ignored_columns == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1704067200", dt.datetime(2024, 1, 1, tzinfo=UTC)),
        ("1704067200000", dt.datetime(2024, 1, 1, tzinfo=UTC)),
        ("1704067200500", dt.datetime(2024, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)),
        ("1704067200000000", dt.datetime(2024, 1, 1, tzinfo=UTC)),
    ],
)
def test_epoch_seconds_or_milliseconds_by_size(text: str, expected: dt.datetime) -> None:
    raw = pl.DataFrame({"meter_id": ["A"], "ts": [text], "import_kwh": ["1"]})
    # epoch times are UTC whatever --tz says of local times
    out = decode(READING, raw, build_mapping(READING, interval_s=1800, tz="Europe/Amsterdam"))
    assert out.records["ts"].to_list() == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240101", dt.datetime(2023, 12, 31, 23, tzinfo=UTC)),
        ("202401010030", dt.datetime(2023, 12, 31, 23, 30, tzinfo=UTC)),
        ("20240101003000", dt.datetime(2023, 12, 31, 23, 30, tzinfo=UTC)),
        ("915148800000", dt.datetime(1999, 1, 1, tzinfo=UTC)),  # epoch ms, no calendar date
    ],
)
def test_compact_dates_are_local_times_not_epoch_numbers(text: str, expected: dt.datetime) -> None:
    """Digits that make a date are not read as seconds of 1970 (20240101 s would be
    1970-08-23), silently."""
    raw = pl.DataFrame({"meter_id": ["A"], "ts": [text], "import_kwh": ["1"]})
    out = decode(READING, raw, build_mapping(READING, interval_s=1800, tz="Europe/Amsterdam"))
    assert out.records["ts"].to_list() == [expected]


def test_typed_epoch_column() -> None:
    raw = pl.DataFrame({"meter_id": ["A"], "ts": [1704067200], "import_kwh": [1.0]})
    out = decode(READING, raw, build_mapping(READING, interval_s=1800))
    assert out.records["ts"].to_list() == [dt.datetime(2024, 1, 1, tzinfo=UTC)]


@pytest.mark.parametrize("tz", ["+10:00", "+1000", "UTC+10", "+10", "Australia/Brisbane"])
def test_aemo_market_time_is_standard_time_all_year(tz: str) -> None:
    """AEMO's SETTLEMENTDATE is the END of 5 minutes in market time (UTC+10, no DST)."""
    path = shared_data() / "aemo-5min" / "aemo_price_demand_202501_QLD.csv"
    data = _read(path).head(2000)
    mapping = build_mapping(
        GRID,
        maps=["node_id=REGION", "ts=SETTLEMENTDATE", "load_mw=TOTALDEMAND", "price_per_mwh=RRP"],
        interval_s=300,
        tz=tz,
        ts_end=True,
    )
    out = decode(GRID, data, mapping)
    naive = [dt.datetime.strptime(s, "%Y/%m/%d %H:%M:%S") for s in data["SETTLEMENTDATE"]]
    expected = [(n - dt.timedelta(hours=10, minutes=5)).replace(tzinfo=UTC) for n in naive]
    assert out.records["ts"].to_list() == expected


def test_fixed_offsets_name_an_iana_zone_for_the_meter() -> None:
    assert build_mapping(READING, tz="+10:00").zone_name == "Etc/GMT-10"
    assert build_mapping(READING, tz="UTC-05:00").zone_name == "Etc/GMT+5"
    # an offset of minutes: the zone that has kept it all year (India, Nepal, Darwin),
    # none where only zones with daylight saving hold it (Lord Howe's +10:30)
    assert build_mapping(READING, tz="+05:30").zone_name == "Asia/Kolkata"
    assert build_mapping(READING, tz="+05:45").zone_name == "Asia/Kathmandu"
    assert build_mapping(READING, tz="+09:30").zone_name == "Australia/Darwin"
    assert build_mapping(READING, tz="+10:30").zone_name is None
    assert build_mapping(READING, tz="Europe/London").zone_name == "Europe/London"
    with pytest.raises(MappingError, match="between -14:00 and \\+14:00"):
        build_mapping(READING, tz="+15:00")
    with pytest.raises(MappingError, match="fixed UTC offset like \\+10:00"):
        build_mapping(READING, tz="Mars/Olympus")


def test_fahrenheit_to_celsius_on_real_london_weather(tmp_path: Path) -> None:
    """London's hourly temperatures written out in °F come back as the °C they were."""
    source = shared_data() / "london-weather" / "weather_hourly_darksky.csv"
    celsius = pl.read_csv(
        source, n_rows=1000, columns=["time", "temperature"], infer_schema=False
    ).with_columns(pl.col("temperature").cast(pl.Float64))
    path = tmp_path / "f.csv"
    celsius.select(
        "time", temp_f=(pl.col("temperature") * 9 / 5 + 32).round(4).cast(pl.String)
    ).write_csv(path)
    mapping = build_mapping(
        WEATHER,
        maps=["ts=time", "temperature_c=temp_f"],
        sets=["station_id=LON"],
        units=["temperature_c=°F"],
    )
    out = decode(WEATHER, _read(path), mapping)
    assert out.rejects.height == 0
    got = out.records["temperature_c"].to_numpy()
    assert np.allclose(got, celsius["temperature"].to_numpy(), atol=1e-3)


@pytest.mark.parametrize(
    ("field", "unit", "value", "expected"),
    [
        ("import_kwh", "Wh", 1500.0, 1.5),
        ("import_kwh", "MWh", 0.002, 2.0),
        ("import_kwh", "GJ", 0.036, 10.0),
        ("import_kwh", "MJ", 36.0, 10.0),
        ("active_power_kw", "W", 2500.0, 2.5),
        ("voltage_v", "kV", 0.23, 230.0),
        ("reactive_power_kvar", "var", 500.0, 0.5),
    ],
)
def test_units_convert_to_the_contract(
    field: str, unit: str, value: float, expected: float
) -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["A"],
            "ts": ["2024-01-01T00:00:00Z"],
            "import_kwh": ["1"],
            field: [str(value)],
        }
    )
    out = decode(READING, raw, build_mapping(READING, interval_s=1800, units=[f"{field}={unit}"]))
    assert out.records[field].to_list() == [pytest.approx(expected)]


def test_grid_voltage_in_volts_becomes_kv() -> None:
    mapping = build_mapping(GRID, units=["voltage_kv=V"])
    assert mapping.units["voltage_kv"][:2] == pytest.approx((0.001, 0.0))


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ("import_kwh=m^3", r"--unit import_kwh=m\^3: 'm\^3' cannot be converted to kWh"),
        ("temperature_c=blorps", r"--unit temperature_c=blorps: unknown unit 'blorps'"),
        ("meter_id=kWh", r"--unit meter_id=kWh: meter_id has no unit"),
        ("nope=kWh", "nope is not a field of readings"),
    ],
)
def test_bad_units_are_clear_errors(option: str, match: str) -> None:
    contract = READING if not option.startswith("temperature") else WEATHER
    with pytest.raises(MappingError, match=match):
        build_mapping(contract, units=[option])


def test_scale_and_unit_for_one_field_is_an_error() -> None:
    with pytest.raises(MappingError, match="use one"):
        build_mapping(READING, units=["import_kwh=Wh"], scales=["import_kwh=0.001"])


def test_register_without_energy_needs_an_interval() -> None:
    with pytest.raises(MappingError, match="--interval SECONDS"):
        build_mapping(READING, maps=["register_kwh=#2"])
    assert build_mapping(READING, maps=["register_kwh=#2"], interval_s=3600).derives_energy(
        READING, ["#1", "#2"]
    )
    assert not Mapping().derives_energy(READING, ["register_kwh", "import_kwh"])


def test_a_register_without_an_interval_is_not_derived() -> None:
    """Without --interval (the API's bodies have none) a register column does not stand
    in for energy: the missing energy column is the error, with the way to derive it."""
    from metrify.sources.decode import SchemaMismatch

    raw = pl.DataFrame(
        {"meter_id": ["A"], "ts": ["2024-01-01T00:00:00Z"], "interval_s": ["1800"]}
    ).with_columns(register_kwh=pl.lit("12.5"))
    assert not Mapping().derives_energy(READING, raw.columns)
    with pytest.raises(SchemaMismatch, match="--map register_kwh=COLUMN with --interval"):
        decode(READING, raw, Mapping())


def test_register_reads_need_a_value_that_is_not_negative() -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["A", "A", "A"],
            "ts": ["1704067200", "1704070800", "1704074400"],
            "reg": ["10.5", "", "-1"],
        }
    )
    mapping = build_mapping(READING, maps=["register_kwh=reg"], interval_s=3600)
    out = decode(READING, raw, mapping, check_ranges=False)
    assert out.records["register_kwh"].to_list() == [10.5]
    assert out.rejects["reason"].to_list() == ["missing register_kwh", "negative register_kwh"]


def test_a_field_mapped_to_a_sum_of_columns_adds_them_up() -> None:
    """Tariff registers exported one per column: the meter's energy is their sum; a row
    missing one tariff has no total, and one tariff that is no number is named."""
    raw = pl.DataFrame(
        {
            "t": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"],
            "T1": ["0,196", "0,5", "x"],
            "T2": ["0,25", None, "1"],
            "A+B": ["1", "2", "3"],
        }
    )
    mapping = build_mapping(
        READING,
        maps=["ts=t", "import_kwh=#2+#3", "export_kwh=A+B"],
        sets=["meter_id=M"],
        interval_s=3600,
    )
    out = decode(READING, raw, mapping)
    assert out.records["import_kwh"].to_list() == [pytest.approx(0.446)]
    assert out.records["export_kwh"].to_list() == [1.0]  # a column named A+B wins
    assert out.rejects["reason"].to_list() == ["missing import_kwh", "non-numeric import_kwh"]
    assert out.ignored_columns == []
    from metrify.sources.mapping import check_mapped_columns

    with pytest.raises(MappingError, match=r"import_kwh=T1\+T9: no column 'T9'"):
        check_mapped_columns(build_mapping(READING, maps=["import_kwh=T1+T9"]), raw.columns)


@pytest.mark.parametrize(
    ("given", "codec"),
    [("cp1252", "cp1252"), ("Latin-1", "iso8859-1"), ("UTF8", "utf-8"), ("utf-8-sig", "utf-8")],
)
def test_encoding_names_a_codec(given: str, codec: str) -> None:
    assert build_mapping(READING, encoding=given).encoding == codec


@pytest.mark.parametrize(
    ("given", "words"),
    [("klingon", "unknown character set"), ("utf-16", "ASCII line ends"), ("base64", "ASCII")],
)
def test_encodings_the_reader_cannot_cut_into_lines_are_refused(given: str, words: str) -> None:
    with pytest.raises(MappingError, match=words):
        build_mapping(READING, encoding=given)


def test_a_unit_written_after_each_number_is_read_and_converted() -> None:
    """Head-ends and home-automation exports write the unit with the value (``0.123
    kWh``, ``950 Wh``, ``72.5 °F``). Each value is converted from its own unit, decimal
    commas still read, and a unit of another kind stays non-numeric, never stripped."""
    values = ["0.123 kWh", "12kWh", "950 Wh", "1,5 kWh", "0.5", "1.2 MWh", "3 kg", " 0.7 kWh "]
    raw = pl.DataFrame(
        {"ts": [f"2024-01-01T00:{i:02d}:00Z" for i in range(len(values))], "import_kwh": values}
    )
    out = decode(READING, raw, build_mapping(READING, sets=["meter_id=M"], interval_s=60))
    assert out.records["import_kwh"].to_list() == [0.123, 12.0, 0.95, 1.5, 0.5, 1200.0, 0.7]
    assert out.rejects["reason"].to_list() == ["non-numeric import_kwh"]
    assert '"3 kg"' in out.rejects["raw"][0]
    weather = pl.DataFrame(
        {"ts": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"], "t": ["72.5 °F", "-40 °F"]}
    )
    mapping = build_mapping(WEATHER, sets=["station_id=S"], maps=["temperature_c=t"])
    assert decode(WEATHER, weather, mapping).records["temperature_c"].to_list() == [22.5, -40.0]


def test_a_unit_after_the_number_is_not_converted_twice() -> None:
    """``--unit`` says the column's unit: a number written with a unit is then not read
    as that unit again (it would be converted twice); it stays non-numeric."""
    raw = pl.DataFrame({"ts": ["2024-01-01T00:00:00Z"], "import_kwh": ["950 Wh"]})
    mapping = build_mapping(READING, sets=["meter_id=M"], interval_s=60, units=["import_kwh=Wh"])
    assert decode(READING, raw, mapping).rejects["reason"].to_list() == ["non-numeric import_kwh"]
