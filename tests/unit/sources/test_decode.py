"""Decoding raw rows into the contract: mapping options, time zones, rejects."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from metrify.contracts.records import GRID, READING, WEATHER
from metrify.sources.decode import SchemaMismatch, decode
from metrify.sources.mapping import MappingError, build_mapping

UTC = dt.UTC


def test_mapping_renames_and_pads_are_stripped() -> None:
    raw = pl.DataFrame(
        {"LCLid": ["MAC000002"], "tstp": ["2013-01-01 00:00:00"], "energy(kWh/hh)": [" 0.219 "]}
    )
    mapping = build_mapping(
        READING, maps=["meter_id=LCLid", "ts=tstp", "import_kwh=energy(kWh/hh)"], interval_s=1800
    )
    out = decode(READING, raw, mapping)
    assert out.records.schema == pl.Schema(READING.schema)
    assert out.records.row(0, named=True) | {} == {
        **{k: None for k in READING.schema},
        "meter_id": "MAC000002",
        "ts": dt.datetime(2013, 1, 1, tzinfo=UTC),
        "interval_s": 1800,
        "import_kwh": 0.219,
    }
    assert out.rejects.height == 0 and out.ignored_columns == []


def test_missing_required_column_is_a_file_level_error() -> None:
    raw = pl.DataFrame({"LCLid": ["A"], "tstp": ["2013-01-01 00:00:00"]})
    with pytest.raises(SchemaMismatch, match=r"import_kwh.*--map"):
        decode(
            READING,
            raw,
            build_mapping(READING, maps=["meter_id=LCLid", "ts=tstp"], interval_s=1800),
        )


def test_interval_required_from_column_or_option() -> None:
    raw = pl.DataFrame({"meter_id": ["A"], "ts": ["2013-01-01T00:00:00Z"], "import_kwh": ["1"]})
    with pytest.raises(SchemaMismatch, match="--interval"):
        decode(READING, raw, build_mapping(READING))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2013-01-01T00:30:00Z", dt.datetime(2013, 1, 1, 0, 30, tzinfo=UTC)),
        ("2013-01-01 01:30:00+01:00", dt.datetime(2013, 1, 1, 0, 30, tzinfo=UTC)),
        ("2013-01-01 01:30:00+0100", dt.datetime(2013, 1, 1, 0, 30, tzinfo=UTC)),
        ("2013/01/01 00:30:00", dt.datetime(2013, 1, 1, 0, 30, tzinfo=UTC)),
        ("2013-01-01 00:30", dt.datetime(2013, 1, 1, 0, 30, tzinfo=UTC)),
    ],
)
def test_timestamp_formats(text: str, expected: dt.datetime) -> None:
    raw = pl.DataFrame({"meter_id": ["A"], "ts": [text], "import_kwh": ["1"]})
    out = decode(READING, raw, build_mapping(READING, interval_s=1800))
    assert out.records["ts"].to_list() == [expected]


def test_wire_times_read_alone_or_mixed_with_other_formats() -> None:
    """ISO 8601 UTC times with a Z (the wire format, read in one pass) mean the same
    instants when one row of another format sends the column through every reader; a
    mistyped one is rejected either way."""
    wire = ["2013-03-31T00:45:00Z", "2013-03-31T01:15:00.250Z", "2013-03-31T01:45:00Z"]
    expected = [
        dt.datetime(2013, 3, 31, 0, 45, tzinfo=UTC),
        dt.datetime(2013, 3, 31, 1, 15, 0, 250_000, tzinfo=UTC),
        dt.datetime(2013, 3, 31, 1, 45, tzinfo=UTC),
    ]
    mapping = build_mapping(READING, interval_s=1800, tz="Europe/London")
    for extra, kept in (([], 3), (["2013-03-31 03:15"], 4), (["2013-03-31T02:30:00+01:00"], 4)):
        texts = wire + extra
        raw = pl.DataFrame(
            {"meter_id": ["A"] * len(texts), "ts": texts, "import_kwh": ["1"] * len(texts)}
        )
        out = decode(READING, raw, mapping)
        assert out.records["ts"].to_list()[:3] == expected
        assert out.records.height == kept and out.rejects.height == 0
    bad = pl.DataFrame({"meter_id": ["A", "A"], "ts": [wire[0], "2013-03-31T25:00:00Z"]})
    out = decode(READING, bad.with_columns(import_kwh=pl.lit("1")), mapping)
    assert out.records.height == 1 and out.rejects["reason"].to_list() == ["unparseable ts"]


def test_local_time_with_daylight_saving() -> None:
    # London, 27 Oct 2013: 01:00-02:00 local happens twice (BST then GMT);
    # 31 Mar 2013: 01:00-02:00 local does not exist.
    raw = pl.DataFrame(
        {
            "meter_id": ["A", "A", "A", "A"],
            "ts": [
                "2013-10-27 00:30:00",
                "2013-10-27 01:30:00",
                "2013-10-27 01:30:00",
                "2013-03-31 01:30:00",
            ],
            "import_kwh": ["1", "2", "3", "4"],
        }
    )
    out = decode(READING, raw, build_mapping(READING, interval_s=1800, tz="Europe/London"))
    assert out.records["ts"].to_list() == [
        dt.datetime(2013, 10, 26, 23, 30, tzinfo=UTC),
        dt.datetime(2013, 10, 27, 0, 30, tzinfo=UTC),
        dt.datetime(2013, 10, 27, 1, 30, tzinfo=UTC),
    ]
    assert out.rejects["reason"].to_list() == ["nonexistent local time in Europe/London (DST gap)"]


@pytest.mark.parametrize(
    ("shape", "tz"),
    [
        ("%Y-%m-%d %H:%M:%S", "Europe/London"),
        ("%Y-%m-%dT%H:%M:%S", "America/New_York"),
        ("%Y-%m-%d %H:%M", "UTC"),
        ("%Y-%m-%d %H:%M:%S", "Etc/GMT-3"),
    ],
)
def test_plain_local_times_as_one_shape_or_mixed(shape: str, tz: str) -> None:
    """A column of one plain shape (read in one pass) and the same texts beside one row
    of another format (which sends the column through every reader) mean the same
    instants, nonexistent and ambiguous local times and impossible dates included."""
    zone = ZoneInfo(tz)
    starts = [dt.datetime(2013, 3, 31, 0, 0), dt.datetime(2013, 10, 27, 0, 0)]
    starts += [dt.datetime(2013, 3, 10, 0, 0), dt.datetime(2013, 11, 3, 0, 0)]
    local = [s + dt.timedelta(minutes=30 * i) for s in starts for i in range(8)]
    texts: list[str | None] = [t.strftime(shape) for t in local]
    texts += [None, "2013-02-30 00:00" if shape.endswith("%M") else "2013-02-30 00:00:00"]
    ids = ["A"] * len(texts)

    def expected(frame_texts: list[str | None]) -> tuple[list[dt.datetime], list[str]]:
        times, reasons, seen = [], [], set()
        for text in frame_texts:
            if text is None:
                reasons.append("missing ts")
                continue
            try:
                naive = dt.datetime.strptime(text.replace("T", " "), shape.replace("T", " "))
            except ValueError:
                reasons.append("unparseable ts")
                continue
            fold = 1 if naive in seen else 0  # files list time in order: 2nd is later
            seen.add(naive)
            aware = naive.replace(tzinfo=zone, fold=fold)
            back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
            if back != naive:  # skipped by the spring change
                reasons.append(f"nonexistent local time in {tz} (DST gap)")
                continue
            times.append(aware.astimezone(UTC))
        return times, reasons

    mapping = build_mapping(READING, interval_s=1800, tz=tz)
    for extra in ([], ["2013-01-01T00:00:00Z"]):
        rows = texts + extra
        raw = pl.DataFrame(
            {"meter_id": ids + ["A"] * len(extra), "ts": rows, "import_kwh": ["1"] * len(rows)},
            schema={"meter_id": pl.String, "ts": pl.String, "import_kwh": pl.String},
        )
        out = decode(READING, raw, mapping)
        times, reasons = expected(texts)
        got = out.records["ts"].to_list()
        assert got[: len(times)] == times
        assert sorted(out.rejects["reason"].to_list()) == sorted(reasons)


def test_interval_end_convention_shifts_to_start() -> None:
    # AEMO: SETTLEMENTDATE ends the 5-minute interval, in market time (UTC+10).
    raw = pl.DataFrame(
        {"REGION": ["NSW1"], "SETTLEMENTDATE": ["2025/01/01 00:05:00"], "TOTALDEMAND": ["7251.07"]}
    )
    mapping = build_mapping(
        GRID,
        maps=["node_id=REGION", "ts=SETTLEMENTDATE", "load_mw=TOTALDEMAND"],
        interval_s=300,
        tz="Australia/Brisbane",
        ts_end=True,
    )
    out = decode(GRID, raw, mapping)
    assert out.records["ts"].to_list() == [dt.datetime(2024, 12, 31, 14, 0, tzinfo=UTC)]
    assert out.records["load_mw"].to_list() == [7251.07]


def test_constants_and_scales() -> None:
    raw = pl.DataFrame(
        {"time": ["2013-01-01 00:00:00"], "temperature": ["10.5"], "humidity": ["0.91"]}
    )
    mapping = build_mapping(
        WEATHER,
        maps=["ts=time", "temperature_c=temperature", "humidity_pct=humidity"],
        sets=["station_id=london"],
        scales=["humidity_pct=100"],
    )
    out = decode(WEATHER, raw, mapping)
    row = out.records.row(0, named=True)
    assert row["station_id"] == "london" and row["humidity_pct"] == pytest.approx(91.0)


def test_null_tokens_in_any_case_and_padding_are_nulls() -> None:
    """Every spelling of the null tokens (any mix of cases, padded) reads as null, and
    text that only contains one (``nano``, ``-1``) does not."""
    tokens = ["NULL", " n/A ", "NoNe", "nA", "-", "", "nAn", " Null", "N/a"]
    values = [*tokens, "0.5", "-1", "1e-3"]
    raw = pl.DataFrame(
        {
            "meter_id": [*["M"] * len(values), "nano", " NONE "],
            "ts": ["2013-01-01T00:00:00Z"] * (len(values) + 2),
            "import_kwh": ["1"] * (len(values) + 2),
            "export_kwh": [*values, "2", "3"],
        }
    )
    out = decode(READING, raw, build_mapping(READING, interval_s=900), check_ranges=False)
    exported = out.records.filter(pl.col("meter_id") == "M")["export_kwh"].to_list()
    assert exported == [None] * len(tokens) + [0.5, -1.0, 0.001]
    assert "nano" in out.records["meter_id"].to_list()
    assert out.rejects["reason"].to_list() == ["missing meter_id"]


def test_rejects_keep_raw_fields_and_first_reason() -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["A", "B B", "C", "D", "E", "F"],
            "ts": [
                "2013-01-01T00:00:00Z",
                "2013-01-01T00:00:00Z",
                "x",
                "2013-01-01T00:00:00Z",
                "2013-01-01T00:00:00Z",
                "2013-01-01T00:00:00Z",
            ],
            "import_kwh": ["1", "1", "1", "NaN", "inf", "1"],
            "power_factor": [None, None, None, None, None, "1.5"],
        }
    )
    out = decode(READING, raw, build_mapping(READING, interval_s=900), first_line=2)
    assert out.records["meter_id"].to_list() == ["A"]
    assert out.rejects["reason"].to_list() == [
        "invalid meter_id",
        "unparseable ts",
        "missing import_kwh",
        "non-finite import_kwh",
        "power_factor out of range",
    ]
    assert out.rejects["line"].to_list() == [3, 4, 5, 6, 7]
    assert json.loads(out.rejects["raw"][1]) == {
        "meter_id": "C",
        "ts": "x",
        "import_kwh": "1",
        "power_factor": None,
    }


def test_invalid_interval_values_rejected() -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["A"] * 4,
            "ts": ["2013-01-01T00:00:00Z"] * 4,
            "import_kwh": ["1"] * 4,
            "interval_s": ["7", "1800.5", "100000", "1800.0"],
        }
    )
    out = decode(READING, raw, build_mapping(READING))
    assert out.rejects["reason"].to_list() == [
        "invalid interval_s",
        "non-numeric interval_s",
        "invalid interval_s",
    ]
    assert out.records["interval_s"].to_list() == [1800]


@pytest.mark.parametrize(
    ("interval", "accepted"),
    [
        ("0", False),  # no interval at all
        ("-1", False),  # negative: 86400 is a multiple of neither, yet it must never pass
        ("-900", False),  # the negative of a valid interval
        ("-86400", False),
        ("59", False),  # just under a minute
        ("60", True),  # the bounds: one minute and one day
        ("86400", True),
        ("86401", False),  # just over a day
        ("900", True),
    ],
)
def test_interval_bounds(interval: str, accepted: bool) -> None:
    # Intervals are 60..86400 seconds that divide the day; a zero or negative interval
    # would put a reading's end before its start and break every per-interval rate.
    raw = pl.DataFrame(
        {
            "meter_id": ["A"],
            "ts": ["2013-01-01T00:00:00Z"],
            "import_kwh": ["1"],
            "interval_s": [interval],
        }
    )
    out = decode(READING, raw, build_mapping(READING))
    if accepted:
        assert out.records["interval_s"].to_list() == [int(interval)]
        assert out.rejects.height == 0
    else:
        assert out.records.height == 0
        assert out.rejects["reason"].to_list() == ["invalid interval_s"]


@pytest.mark.parametrize("interval", [0, -1, -900, 59, 86401])
def test_interval_option_bounds(interval: int) -> None:
    with pytest.raises(MappingError, match=r"must be 60\.\.86400 seconds"):
        build_mapping(READING, interval_s=interval)


@pytest.mark.parametrize("interval", [60, 86400])
def test_interval_option_accepts_its_bounds(interval: int) -> None:
    assert build_mapping(READING, interval_s=interval).interval_s == interval


def test_unknown_columns_reported() -> None:
    raw = pl.DataFrame(
        {"meter_id": ["A"], "ts": ["2013-01-01T00:00:00Z"], "import_kwh": ["1"], "colour": ["red"]}
    )
    out = decode(READING, raw, build_mapping(READING, interval_s=1800))
    assert out.ignored_columns == ["colour"]


def test_a_trailing_delimiters_empty_column_is_not_reported() -> None:
    # "a;b;c;" leaves a column without a header: unreported while empty, reported
    # as soon as it holds something
    rows = {"meter_id": ["A", "A"], "ts": ["2013-01-01T00:00Z", "2013-01-01T00:30Z"]}
    mapping = build_mapping(READING, interval_s=1800)
    blank = pl.DataFrame({**rows, "import_kwh": ["1", "2"], "#4": ["", None]})
    assert decode(READING, blank, mapping).ignored_columns == []
    filled = pl.DataFrame({**rows, "import_kwh": ["1", "2"], "#4": ["", "x"]})
    assert decode(READING, filled, mapping).ignored_columns == ["#4"]


def test_typed_parquet_columns_decode() -> None:
    raw = pl.DataFrame(
        {
            "meter_id": ["A"],
            "ts": [dt.datetime(2013, 1, 1, 1)],
            "import_kwh": [0.5],
            "interval_s": [900],
        }
    )
    out = decode(READING, raw, build_mapping(READING, tz="Europe/Berlin"))
    assert out.records["ts"].to_list() == [dt.datetime(2013, 1, 1, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"maps": ["nope=x"]}, "not a field of readings"),
        ({"maps": ["meter_id"]}, "FIELD=VALUE"),
        ({"interval_s": 7}, "divide the day"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"scales": ["import_kwh=abc"]}, "must be a number"),
    ],
)
def test_bad_options_give_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        build_mapping(READING, **kwargs)  # type: ignore[arg-type]


def _flags(out: object) -> list[int]:
    records = out.records  # type: ignore[attr-defined]
    return records["_flags"].to_list()


def test_the_values_a_source_estimated_carry_the_estimated_bit() -> None:
    said = ["E", "A", "", "yes", "No", "substituted", "1", "false", None, " t "]
    estimated = [True, False, False, True, False, True, True, False, False, True]
    raw = pl.DataFrame(
        {
            "meter_id": ["m"] * len(said),
            "ts": [f"2024-01-01 {h:02d}:00" for h in range(len(said))],
            "import_kwh": ["1"] * len(said),
            "Status": said,
        }
    )
    out = decode(READING, raw, build_mapping(READING, maps=["estimated=Status"], interval_s=3600))
    assert out.rejects.height == 0 and out.ignored_columns == []
    assert _flags(out) == [256 if e else 0 for e in estimated]
    # a column named so is read without --map; a word it does not know rejects the row
    named = raw.rename({"Status": "estimated"}).with_columns(
        pl.Series("estimated", ["E", "maybe", *said[2:]])
    )
    out = decode(READING, named, build_mapping(READING, interval_s=3600))
    assert _flags(out) == [256, *[256 if e else 0 for e in estimated[2:]]]
    assert out.rejects.select("reason", "line").rows() == [
        ("unreadable estimated (yes/no, true/false, E/S/A)", 1)
    ]
    # --set marks a whole file; a boolean column (Parquet) is read as it is
    whole = build_mapping(READING, sets=["estimated=yes"], interval_s=3600)
    assert _flags(decode(READING, raw.drop("Status"), whole)) == [256] * len(said)
    typed = raw.with_columns(pl.Series("Status", estimated))
    out = decode(READING, typed, build_mapping(READING, maps=["estimated=Status"], interval_s=3600))
    assert _flags(out) == [256 if e else 0 for e in estimated]
    # a source that says nothing of it decodes no such column
    plain = build_mapping(READING, interval_s=3600)
    assert "_flags" not in decode(READING, raw.drop("Status"), plain).records.columns


def test_estimated_is_an_input_of_readings_and_of_register_reads() -> None:
    with pytest.raises(MappingError, match="estimated is not a field of grid"):
        build_mapping(GRID, maps=["estimated=x"])
    # beside register reads it marks the reads (their intervals follow: test_registers)
    mapping = build_mapping(READING, maps=["register_kwh=r", "estimated=e"], interval_s=3600)
    raw = pl.DataFrame(
        {"meter_id": ["M", "M"], "ts": ["2024-01-01T00:00Z", "2024-01-01T01:00Z"],
         "r": ["1.0", "2.0"], "e": ["A", "E"]}
    )  # fmt: skip
    assert _flags(decode(READING, raw, mapping)) == [0, 256]


def test_negative_zero_is_stored_as_zero() -> None:
    """ "-0.0" and "-0.000" are zero: the stored value's sign bit is clear, so it is not
    shown as "-0"; other values, a negative one included, keep their sign."""
    import math

    raw = pl.DataFrame(
        {
            "meter_id": ["M1"] * 4,
            "ts": [f"2024-01-01T0{h}:00:00Z" for h in range(4)],
            "import_kwh": ["-0.0", "0.5", "-0.000", "0"],
            "reactive_power_kvar": ["-0", "-0.25", "0.0", "-0.0"],
        }
    )
    out = decode(READING, raw, build_mapping(READING, maps=[], interval_s=3600))
    assert out.rejects.height == 0
    signs = {
        column: [math.copysign(1.0, v) for v in out.records[column].to_list()]
        for column in ("import_kwh", "reactive_power_kvar")
    }
    assert signs == {"import_kwh": [1.0] * 4, "reactive_power_kvar": [1.0, -1.0, 1.0, 1.0]}
    assert out.records["reactive_power_kvar"].to_list() == [0.0, -0.25, 0.0, 0.0]
