"""Kafka messages on the wire: the simulator's frames as keyed JSON messages and back
through the pipeline's decode, and the fast batch decoding against the exact
message-by-message parser.
"""

from __future__ import annotations

import orjson
import polars as pl
import pytest

from metrify.contracts.records import READING
from metrify.simulation import Fleet, FleetSpec
from metrify.sources.decode import decode
from metrify.sources.kafka import (
    encode_records,
    fast_rows_frame,
    frame_messages,
    parse_message,
    rows_frame,
)
from metrify.sources.mapping import Mapping, build_mapping
from support.kafka import fleet_frames

pytestmark = pytest.mark.kafka


def test_wire_format_round_trip() -> None:
    """Frames -> messages keyed by id -> string columns -> the pipeline's decode: equal."""
    from metrify.sources.decode import decode
    from metrify.sources.mapping import Mapping

    readings, _ = fleet_frames(Fleet(FleetSpec(meters=5, days=1, fault_rate=0.0, seed=3)))
    messages = list(frame_messages(READING, readings, max_records=40))
    assert {key.decode() for key, _, _ in messages} == set(readings["meter_id"].to_list())
    assert sum(n for _, _, n in messages) == readings.height
    rows = [row for _, value, _ in messages for row in parse_message(value, max_bytes=1 << 20).rows]
    decoded = decode(READING, rows_frame(READING, rows), Mapping())
    assert decoded.rejects.height == 0
    assert decoded.records.sort("meter_id", "ts").equals(readings)
    single = encode_records([{"station_id": "S1", "ts": "2025-01-01T00:00:00Z", "x": 1}])
    assert orjson.loads(single) == {"station_id": "S1", "ts": "2025-01-01T00:00:00Z", "x": 1}


def exact_rows(values: list[bytes]) -> tuple[pl.DataFrame, list[str]]:
    """The message-by-message path: string columns of the records, and the reasons of
    what it quarantined."""
    parsed = [parse_message(v, max_bytes=1 << 20) for v in values]
    frame = rows_frame(READING, [row for p in parsed for row in p.rows])
    return frame, [b.reason for p in parsed for b in p.bad]


def assert_same_columns(fast: pl.DataFrame, exact: pl.DataFrame) -> None:
    """Every column equal; numbers may be spelled differently (1E-7 vs 1e-07) but must
    denote the same value."""
    numeric = [c for c in READING.fields if READING.schema[c].is_numeric()]
    as_float = [pl.col(c).cast(pl.Float64, strict=False) for c in numeric]
    assert fast.select(as_float).equals(exact.select(as_float))
    others = [c for c in READING.fields if c not in numeric]
    assert fast.select(others).equals(exact.select(others))


def test_fast_decoding_equals_the_exact_path() -> None:
    """Well-formed messages (objects, arrays, nulls, numbers of every shape, escapes) give
    exactly the columns the per-message parser gives."""
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=4, days=1, fault_rate=0.3, seed=5)))
    values = [value for _, value, _ in frame_messages(READING, readings, max_records=17)]
    values += [
        b'{"meter_id":"M-1","ts":"2025-01-01T00:00:00Z","interval_s":900,"import_kwh":1E-7}',
        b' [{"meter_id":"M\\u00e9","import_kwh":-0.0,"export_kwh":null,"voltage_v":true}] ',
        b'{"meter_id":"M2","register_kwh":123456789012345678901234567890,"ts":"x"}',
        b"[]",
    ]
    fast = fast_rows_frame(READING, values)
    assert fast is not None
    exact, quarantined = exact_rows(values)
    assert quarantined == []
    assert fast.height == exact.height == readings.height + 3
    assert_same_columns(fast, exact)


def test_fast_decoding_of_one_record_per_message_equals_the_exact_path() -> None:
    """A live fleet's batch (each message one compact object) takes the fast path's own
    shortcut; its columns are still exactly the per-message parser's."""
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=6, days=1, fault_rate=0.3, seed=9)))
    values = [value for _, value, _ in frame_messages(READING, readings, max_records=1)]
    values.append(b'{"meter_id":"M-1","ts":"2025-01-01T00:00:00Z","import_kwh":1E-7}')
    assert all(v.startswith(b"{") and v.endswith(b"}") for v in values)
    fast = fast_rows_frame(READING, values)
    assert fast is not None
    exact, quarantined = exact_rows(values)
    assert quarantined == [] and fast.height == exact.height == readings.height + 1
    assert_same_columns(fast, exact)
    # numbers arrive as numbers: decoding gives the exact path's records and rejects
    assert fast.schema["import_kwh"] == pl.Float64 and fast.schema["ts"] == pl.String
    from_fast = decode(READING, fast, Mapping(), check_ranges=False)
    from_exact = decode(READING, exact, Mapping(), check_ranges=False)
    assert from_fast.records.equals(from_exact.records)
    assert from_fast.rejects.select("reason", "line").equals(
        from_exact.rejects.select("reason", "line")
    )


def test_a_quoted_number_reads_the_batch_as_text() -> None:
    """One message quoting a number (or 900.0 for an integer) does not fit the typed
    read; the batch is read as text, as before, and decodes to the same values."""
    good = b'{"meter_id":"A","ts":"2025-01-01T00:00:00Z","interval_s":900,"import_kwh":0.5}'
    odd = b'{"meter_id":"B","ts":"2025-01-01T00:00:00Z","interval_s":900.0,"import_kwh":"0.25"}'
    fast = fast_rows_frame(READING, [good, odd])
    assert fast is not None and fast.schema["import_kwh"] == pl.String
    decoded = decode(READING, fast, Mapping(), check_ranges=False).records
    assert decoded["import_kwh"].to_list() == [0.5, 0.25]
    assert decoded["interval_s"].to_list() == [900, 900]


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b'"a string"',
        b"{}",
        b"[null]",
        b"[1, 2]",
        b'{"meter_id":"A"},{"meter_id":"B"}',
        b'{"meter_id":"A","colour":"red"}',
        b'{"meter_id":"A","meter_id":"B"}',
        b'{"meter_id":{"nested":1}}',
        b'{"meter_id" :"A"}',
        b'{"meter_id"\t:"A"}',
        b'{"meter_id":\n"A"}',
        b'{"meter_id":"A"}}',
    ],
)
def test_fast_decoding_leaves_anything_unusual_to_the_exact_path(value: bytes) -> None:
    """Poison, empty objects, extra, repeated or nested fields: the fast path declines the
    whole batch (None), so the exact path's reasons and warnings apply unchanged."""
    good = b'{"meter_id":"OK","ts":"2025-01-01T00:00:00Z","interval_s":1800,"import_kwh":1}'
    assert fast_rows_frame(READING, [good]) is not None
    assert fast_rows_frame(READING, [good, value]) is None


def test_a_sources_estimates_travel_as_the_estimated_field() -> None:
    """Records decoded with the estimated bit (a NEM12 substitute, a marked column) are
    sent with ``"estimated": true``, and the worker's decode, fast or exact, sets the
    bit again; records without it send no such field."""
    rows = pl.DataFrame(
        {
            "meter_id": ["m1", "m1", "m2"],
            "ts": ["2024-01-01 00:00", "2024-01-01 00:30", "2024-01-01 00:00"],
            "import_kwh": ["0.5", "0.25", "1"],
            "Quality": ["E", "A", "S"],
        }
    )
    mapping = build_mapping(READING, maps=["estimated=Quality"], interval_s=1800)
    sent = decode(READING, rows, mapping).records
    values = [value for _, value, _ in frame_messages(READING, sent, max_records=1)]
    assert [orjson.loads(v).get("estimated") for v in values] == [True, None, True]
    fast = fast_rows_frame(READING, values)
    assert fast is not None
    exact, _ = exact_rows(values)
    for frame in (fast, exact):
        assert decode(READING, frame, Mapping()).records["_flags"].to_list() == [256, 0, 256]
    plain = sent.drop("_flags")
    values = [value for _, value, _ in frame_messages(READING, plain, max_records=2)]
    assert b"estimated" not in b"".join(values)
    fast = fast_rows_frame(READING, values)
    assert fast is not None and "estimated" not in fast.columns
