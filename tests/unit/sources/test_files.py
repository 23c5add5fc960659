"""File readers: bytes in, raw batches out, and not one row lost on the way."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrify.sources import (
    BadRow,
    RawBatch,
    ReaderError,
    chunks,
    count_bytes,
    detect_format,
    read_batches,
)
from metrify.sources import csv as csv_reader
from support.realdata import data_folder

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def read_all(path: Path, **kwargs: object) -> tuple[list[RawBatch], pl.DataFrame, list[BadRow]]:
    batches = list(read_batches(path, **kwargs))  # type: ignore[arg-type]
    frames = [b.data for b in batches]
    data = pl.concat(frames, how="diagonal") if frames else pl.DataFrame()
    return batches, data, [bad for b in batches for bad in b.bad]


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("A.CSV.GZ", "csv"),
        ("a.tsv", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.json.gz", "jsonl"),
        ("a.csv.zip", "csv"),
        ("NEM12#1#MDP#RETAILER.zip", "csv"),
        ("a.jsonl.zip", "jsonl"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(Path(name)) == fmt


@pytest.mark.parametrize("name", ["a.docx", "a.gz", "a", "a.json", "a.tar"])
def test_unknown_suffix_is_a_reader_error(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, b"a,b\n1,2\n")
    with pytest.raises(ReaderError, match="unknown file type"):
        detect_format(path)
    with pytest.raises(ReaderError, match="unknown file type"):
        read_batches(path)


def test_missing_file_is_a_reader_error(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="no such file") as info:
        read_batches(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ReaderError, match="no such file"):
        count_bytes(tmp_path / "nope.csv")


def test_directory_is_a_reader_error(tmp_path: Path) -> None:
    folder = tmp_path / "looks.csv"
    folder.mkdir()
    with pytest.raises(ReaderError, match="is a directory"):
        read_batches(folder)


def test_unreadable_file_is_a_reader_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "secret.csv", b"a\n1\n")

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)  # chmod does not stop root, which CI may be
    with pytest.raises(ReaderError, match="permission denied") as info:
        list(read_batches(path))
    assert str(info.value) == f"{path}: permission denied"


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a\n1\n")
    with pytest.raises(ValueError, match="batch_rows"):
        read_batches(path, 0)
    with pytest.raises(ValueError, match="delimiter"):
        read_batches(path, delimiter=";;")


# --------------------------------------------------------------------------- CSV

LONDON_LIKE = (
    b"LCLid,tstp,energy(kWh/hh)\n"
    b"MAC000002,2013-01-01 00:00:00, 0.219 \n"
    b"MAC000002,2013-01-01 00:30:00, 0.241 \n"
    b"MAC000002,2013-01-01 01:00:00,Null\n"
    b"MAC000002,2013-01-01 01:30:00,\n"
)


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz"])
def test_csv_round_trip_keeps_values_exactly(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, LONDON_LIKE)
    batches, data, bad = read_all(path)
    assert bad == []
    assert data.columns == ["LCLid", "tstp", "energy(kWh/hh)"]
    assert all(dtype == pl.String for dtype in data.dtypes)
    assert data["energy(kWh/hh)"].to_list() == [" 0.219 ", " 0.241 ", "Null", ""]
    assert data["tstp"][0] == "2013-01-01 00:00:00"
    assert batches[0].source == f"file:{name}"
    assert batches[0].first_line == 2
    assert batches[-1].bytes_read == count_bytes(path)


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 7, 1000])
def test_batching_gives_the_same_rows_as_one_batch(tmp_path: Path, batch_rows: int) -> None:
    body = b"".join(b"M%d,2013-01-01 %02d:00, %d.5 \n" % (i, i % 24, i) for i in range(50))
    path = write(tmp_path, "m.csv.gz", b"id,ts,v\n" + body + b"\n\nM1,x\n")
    _, whole, whole_bad = read_all(path)
    batches, data, bad = read_all(path, batch_rows=batch_rows)
    assert data.equals(whole)
    assert bad == whole_bad
    assert all(b.data.height + len(b.bad) <= batch_rows for b in batches)
    assert [b.first_line for b in batches] == sorted(b.first_line for b in batches)
    progress = [b.bytes_read for b in batches]
    assert progress == sorted(progress)
    assert progress[-1] == count_bytes(path)


def test_ragged_rows_become_bad_rows_with_their_line_numbers(tmp_path: Path) -> None:
    text = (
        b"a,b,c\r\n"  # line 1
        b"1,2,3\r\n"  # 2
        b"\r\n"  # 3: blank, skipped
        b"4,5\r\n"  # 4: too few
        b"6,7,8\r\n"  # 5
        b"\n"  # 6: blank
        b"9,10,11,12\r\n"  # 7: too many
        b"13,14,15"  # 8: no final newline
    )
    path = write(tmp_path, "r.csv", text)
    _, data, bad = read_all(path)
    assert data.rows() == [("1", "2", "3"), ("6", "7", "8"), ("13", "14", "15")]
    assert bad == [
        BadRow("4,5", "ragged row: 2 fields, expected 3", 4),
        BadRow("9,10,11,12", "ragged row: 4 fields, expected 3", 7),
    ]


def test_ragged_line_numbers_across_batches(tmp_path: Path) -> None:
    lines = [b"%d,%d" % (i, i) if i % 97 else b"%d" % i for i in range(1, 5000)]
    path = write(tmp_path, "r.csv", b"x,y\n" + b"\n".join(lines) + b"\n")
    _, data, bad = read_all(path, batch_rows=1234)
    assert data.height + len(bad) == len(lines)
    # line i+1 of the file holds data line i (the header is line 1)
    assert [b.line for b in bad] == [i + 1 for i in range(1, 5000) if i % 97 == 0]
    assert all(b.raw == str(b.line - 1) for b in bad if b.line is not None)


@pytest.mark.parametrize("rows", [3, 5000])
def test_invalid_utf8_line_is_a_bad_row_and_neighbours_survive(tmp_path: Path, rows: int) -> None:
    # 5000 rows exercises the piecewise retry of a big chunk; 3 the whole-chunk fallback.
    lines = [b"M%d,%d" % (i, i) for i in range(rows)]
    broken = rows // 2
    lines[broken] = b"M\xff\xfe,1"
    path = write(tmp_path, "u.csv", b"id,v\n" + b"\n".join(lines) + b"\n")
    _, data, bad = read_all(path)
    assert bad == [BadRow("M\ufffd\ufffd,1", "invalid UTF-8", broken + 2)]
    assert data.height == rows - 1
    assert data["id"].to_list() == [f"M{i}" for i in range(rows) if i != broken]


def test_quoted_fields_keep_their_commas(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", b'id,note,v\nM1,"a, b",1\n"M2","say ""hi""",2\n')
    _, data, bad = read_all(path)
    assert bad == []
    assert data.rows() == [("M1", "a, b", "1"), ("M2", 'say "hi"', "2")]


@pytest.mark.parametrize("where", ["middle", "end"])
def test_an_unclosed_quote_does_not_swallow_the_lines_after_it(tmp_path: Path, where: str) -> None:
    lines = [b"M1,1", b'M2,"oops', b"M3,3", b"M4,4"]
    if where == "end":
        lines = [*lines[:1], *lines[2:], lines[1]]
    path = write(tmp_path, "q.csv", b"id,v\n" + b"\n".join(lines) + b"\n")
    _, data, bad = read_all(path)
    assert data["id"].to_list() == ["M1", "M3", "M4"]
    line = 3 if where == "middle" else 5
    assert bad == [BadRow('M2,"oops', "unparseable CSV: unclosed quote", line)]


def test_a_stray_carriage_return_spoils_only_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cr.csv", b"id,v\nM1,1\rM1b,9\nM2,2\n")
    _, data, bad = read_all(path)
    assert data.rows() == [("M2", "2")]
    assert len(bad) == 1
    assert bad[0].line == 2
    assert bad[0].raw == "M1,1\rM1b,9"


@pytest.mark.parametrize(
    ("name", "text", "delimiter"),
    [
        ("s.csv", b"id;ts;v\nM1;2013-01-01;0,219\n", None),
        ("t.tsv", b"id\tts\tv\nM1\t2013-01-01\t0,219\n", None),
        ("x.csv", b"id|ts|v\nM1|2013-01-01|0,219\n", "|"),
    ],
)
def test_delimiters(tmp_path: Path, name: str, text: bytes, delimiter: str | None) -> None:
    path = write(tmp_path, name, text)
    _, data, bad = read_all(path, delimiter=delimiter)
    assert bad == []
    assert data.rows() == [("M1", "2013-01-01", "0,219")]


@pytest.mark.parametrize("text", [b"", b"\n\n", b"id,v\n", b"id,v", b"\xef\xbb\xbfid,v\r\n\r\n"])
def test_empty_or_header_only_files_yield_no_rows(tmp_path: Path, text: bytes) -> None:
    _, data, bad = read_all(write(tmp_path, "e.csv", text))
    assert data.height == 0
    assert bad == []


def test_byte_order_mark_and_leading_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", b"\xef\xbb\xbf\n\nid,v\nM1,1\n")
    batches, data, _ = read_all(path)
    assert data.columns == ["id", "v"]
    assert batches[0].first_line == 4


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"id,v\rM1,1\r", "carriage return"),
        (b"id,v,id\n", "duplicate column names in header: 'id'"),
        (b"id,\xff\n", "header .* is not valid UTF-8"),
    ],
)
def test_bad_headers_fail_the_file(tmp_path: Path, header: bytes, match: str) -> None:
    path = write(tmp_path, "h.csv", header + b"M1,1,2\n")
    with pytest.raises(ReaderError, match=match) as info:
        list(read_batches(path))
    assert str(info.value).startswith("h.csv: ")


def test_overlong_line_is_a_bad_row_and_memory_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "_CHUNK_BYTES", 64)
    monkeypatch.setattr(chunks, "_READ_BLOCK", 16)
    rows = [b"M%d,%d" % (i, i) for i in range(40)]
    rows[10] = b"M10," + b"9" * 500
    path = write(tmp_path, "l.csv", b"id,v\n" + b"\n".join(rows) + b"\n")
    batches, data, bad = read_all(path, batch_rows=1_000_000)
    assert data.height == 39
    assert len(bad) == 1
    assert bad[0].line == 12
    assert bad[0].reason == "line longer than 64 bytes"
    assert bad[0].raw.startswith("M10,999")
    assert len(batches) > 3  # cut by bytes, not by the (huge) batch_rows


def test_not_gzip_is_a_reader_error(tmp_path: Path) -> None:
    path = tmp_path / "MAC1.csv.gz"
    path.write_bytes(b"LCLid,tstp\nMAC1,2013\n")
    with pytest.raises(ReaderError) as info:
        list(read_batches(path))
    message = str(info.value)
    assert message.startswith("MAC1.csv.gz: not a valid gzip file (")
    assert "\n" not in message


def test_gzip_content_in_a_plain_name_is_a_reader_error(tmp_path: Path) -> None:
    path = tmp_path / "MAC1.csv"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(ReaderError, match="gzip-compressed"):
        list(read_batches(path))


def test_corrupt_gzip_mid_file_yields_rows_before_it_then_fails(tmp_path: Path) -> None:
    rows = b"".join(b"M%d,%d\n" % (i, i * 7919 % 10007) for i in range(200_000))
    whole = gzip.compress(b"id,v\n" + rows, compresslevel=1)
    path = tmp_path / "MAC1.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])  # truncated in the middle
    seen: list[RawBatch] = []
    with pytest.raises(ReaderError, match=r"^MAC1\.csv\.gz: not a valid gzip file"):
        seen.extend(read_batches(path, batch_rows=10_000))
    got = sum(b.data.height for b in seen)
    assert got > 50_000
    data = pl.concat([b.data for b in seen])
    expected = [f"M{i}" for i in range(got)]
    assert data["id"].to_list() == expected  # a prefix of the file, in order, nothing invented
    cut = [bad for b in seen for bad in b.bad]
    assert len(cut) <= 1  # the line the corruption cut in two, if any
    if cut:
        assert cut[0].line == got + 2
        assert cut[0].reason.startswith("incomplete line")


def test_corrupt_gzip_body_is_a_reader_error(tmp_path: Path) -> None:
    whole = bytearray(gzip.compress(b"id,v\n" + b"M1,1\n" * 10_000))
    whole[len(whole) // 2 : len(whole) // 2 + 8] = b"\xff" * 8
    path = tmp_path / "MAC1.csv.gz"
    path.write_bytes(bytes(whole))
    with pytest.raises(ReaderError, match="not a valid gzip file"):
        list(read_batches(path))


# --------------------------------------------------------------------------- JSON Lines


def test_jsonl_good_and_bad_lines(tmp_path: Path) -> None:
    text = (
        b'{"meter_id": "M1", "ts": "2013-01-01T00:00:00Z", "import_kwh": 0.219}\n'  # 1
        b"\n"  # 2 blank
        b'{"meter_id": "M2", "import_kwh": null, "extra": {"a": [1, 2.5]}, "ok": true}\n'  # 3
        b"[1, 2]\n"  # 4 not an object
        b"{not json\n"  # 5
        b"{}\n"  # 6 no fields
        b'{"meter_id": "M\xff"}\n'  # 7 invalid UTF-8
        b'   {"meter_id": " M3 ", "import_kwh": 7, "id": 123456789012345678901234567890}  \n'
    )
    for name in ("r.jsonl", "r.ndjson.gz"):
        _, data, bad = read_all(write(tmp_path, name, text))
        assert data.columns == ["meter_id", "ts", "import_kwh", "extra", "ok", "id"]
        assert all(dtype == pl.String for dtype in data.dtypes)
        assert data.rows() == [
            ("M1", "2013-01-01T00:00:00Z", "0.219", None, None, None),
            ("M2", None, None, '{"a":[1,2.5]}', "true", None),
            (" M3 ", None, "7", None, None, "123456789012345678901234567890"),
        ]
        assert [(b.line, b.reason) for b in bad] == [
            (4, "not a JSON object"),
            (5, bad[1].reason),
            (6, "empty JSON object"),
            (7, "invalid UTF-8"),
        ]
        assert bad[1].reason.startswith("invalid JSON: ")
        assert bad[0].raw == "[1, 2]"


def test_jsonl_keys_are_united_per_batch(tmp_path: Path) -> None:
    text = b'{"a": 1}\n{"b": 2}\n{"a": 3, "c": "x"}\n'
    batches, data, _ = read_all(write(tmp_path, "k.jsonl", text), batch_rows=2)
    assert [b.data.columns for b in batches] == [["a", "b"], ["a", "c"]]
    assert data.rows() == [("1", None, None), (None, "2", None), ("3", None, "x")]
    assert [b.first_line for b in batches] == [1, 3]


# --------------------------------------------------------------------------- Parquet


def test_parquet_keeps_its_types_and_batches(tmp_path: Path) -> None:
    table = pa.table(
        {
            "meter_id": pa.array([f"M{i}" for i in range(10)]),
            "ts": pa.array(range(10), pa.timestamp("us", "UTC")),
            "import_kwh": pa.array([i / 4 for i in range(10)], pa.float64()),
            "interval_s": pa.array([1800] * 10, pa.int32()),
        }
    )
    path = tmp_path / "r.parquet"
    pq.write_table(table, path)
    batches, data, bad = read_all(path, batch_rows=4)
    assert bad == []
    assert [b.data.height for b in batches] == [4, 4, 2]
    assert [b.first_line for b in batches] == [1, 5, 9]
    assert data.schema == pl.Schema(
        {
            "meter_id": pl.String(),
            "ts": pl.Datetime("us", "UTC"),
            "import_kwh": pl.Float64(),
            "interval_s": pl.Int32(),
        }
    )
    assert data["import_kwh"].to_list() == [i / 4 for i in range(10)]
    assert batches[-1].bytes_read == count_bytes(path)


@pytest.mark.parametrize("content", [b"", b"not parquet at all", b"PAR1" + b"\x00" * 20 + b"PAR1"])
def test_corrupt_parquet_is_a_reader_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    with pytest.raises(ReaderError, match=r"^bad\.parquet: ") as info:
        list(read_batches(path))
    assert "\n" not in str(info.value)


def test_truncated_parquet_is_a_reader_error(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"v": list(range(100_000))}), buf, row_group_size=10_000)
    path = tmp_path / "cut.parquet"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ReaderError):
        list(read_batches(path))


# --------------------------------------------------------------------------- properties

_CSV_LINE = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=30).map(
        str.encode
    ),
    st.lists(st.sampled_from(["x", " 1.5 ", '"q,q"', "", '"', "\r"]), max_size=4).map(
        lambda fields: ",".join(fields).encode()
    ),
    st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
)


@PROPERTY
@given(lines=st.lists(_CSV_LINE, max_size=40), batch_rows=st.integers(1, 50))
def test_property_every_csv_line_is_a_row_or_a_bad_row(
    tmp_path: Path, lines: list[bytes], batch_rows: int
) -> None:
    path = write(tmp_path, "p.csv", b"a,b,c\n" + b"\n".join(lines))
    _, data, bad = read_all(path, batch_rows=batch_rows)
    content = [i + 2 for i, line in enumerate(lines) if line.removesuffix(b"\r")]
    assert data.height + len(bad) == len(content)
    assert {b.line for b in bad} <= set(content)
    assert len({b.line for b in bad}) == len(bad)
    assert all(b.raw and b.reason for b in bad)


_PLAIN_FIELD = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters='\n\r",'), max_size=6
)


@PROPERTY
@given(rows=st.lists(st.lists(_PLAIN_FIELD, min_size=1, max_size=5), max_size=40))
def test_property_unquoted_csv_splits_like_str_split(tmp_path: Path, rows: list[list[str]]) -> None:
    """Without quotes the oracle is trivial: a 3-field line is a row, anything else bad."""
    lines = [",".join(fields) for fields in rows]
    path = write(tmp_path, "p.csv.gz", ("a,b,c\n" + "\n".join(lines)).encode())
    _, data, bad = read_all(path, batch_rows=7)
    expected = [tuple(line.split(",")) for line in lines if line.count(",") == 2]
    expected_bad = [i + 2 for i, line in enumerate(lines) if line and line.count(",") != 2]
    assert (data.rows() if data.height else []) == expected
    assert [b.line for b in bad] == expected_bad


def reference_csv(lines: list[bytes], width: int) -> tuple[list[tuple[str, ...]], list[int]]:
    """Python's csv module, one line at a time: the semantics the fast path must match.

    A line is a row when it is UTF-8, splits into ``width`` fields and has no unclosed
    quote (which strict parsing reports as "unexpected end of data")."""
    rows: list[tuple[str, ...]] = []
    bad: list[int] = []
    for number, raw in enumerate(lines, start=2):
        raw = raw.removesuffix(b"\r")
        if not raw:
            continue
        try:
            text = raw.decode("utf-8")
            fields = next(csv.reader([text]))
        except (UnicodeDecodeError, csv.Error):
            bad.append(number)
            continue
        try:
            next(csv.reader([text], strict=True))
            unclosed = False
        except csv.Error as exc:
            unclosed = "unexpected end of data" in str(exc)
        if unclosed or len(fields) != width:
            bad.append(number)
        else:
            rows.append(tuple(fields))
    return rows, bad


_FIELD = st.sampled_from(
    ["M1", "2013-01-01", " 0.2 ", "", '"q,q"', '"', '""', '"a""b"', 'a"b', "\r", "é", "\udcff"]
)
_MIXED_LINE = st.lists(_FIELD, max_size=4).map(
    lambda fields: ",".join(fields).encode("utf-8", "surrogateescape")
)


@PROPERTY
@given(lines=st.lists(_MIXED_LINE, max_size=60), batch_rows=st.sampled_from([1, 5, 1000]))
def test_property_fast_path_agrees_with_python_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[bytes], batch_rows: int
) -> None:
    monkeypatch.setattr(csv_reader, "_PIECE_LINES", 4)  # exercise the piecewise retry too
    path = write(tmp_path, "p.csv", b"a,b,c\n" + b"\n".join(lines))
    _, data, bad = read_all(path, batch_rows=batch_rows)
    rows, bad_lines = reference_csv(lines, 3)
    assert (data.rows() if data.height else []) == rows
    assert sorted(b.line for b in bad if b.line is not None) == bad_lines


_JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


_JSONL_LINE = st.one_of(
    st.dictionaries(st.text(max_size=4), _JSON_VALUE, min_size=1, max_size=4).map(
        lambda d: (True, _dumps(d))
    ),
    st.just((False, b"{}")),  # an object without fields is a bad row: nothing to decode
    st.binary(max_size=20).map(lambda b: (False, b.replace(b"\n", b""))),
    _JSON_VALUE.map(lambda v: (False, _dumps(v))),
)


@PROPERTY
@given(lines=st.lists(_JSONL_LINE, max_size=40), batch_rows=st.integers(1, 50))
def test_property_every_jsonl_line_is_a_row_or_a_bad_row(
    tmp_path: Path, lines: list[tuple[bool, bytes]], batch_rows: int
) -> None:
    content = b"\n".join(line for _, line in lines)
    path = write(tmp_path, "p.jsonl", content)
    try:
        batches, _, bad = read_all(path, batch_rows=batch_rows)
    except ReaderError as exc:
        # Only a file that starts like gzip may be refused whole (as a misnamed .gz).
        assert content.startswith(b"\x1f\x8b\x08"), exc
        assert "gzip-compressed" in str(exc)
        return
    texts = [line for _, line in lines]
    if texts:
        texts[0] = texts[0].removeprefix(b"\xef\xbb\xbf")  # a byte order mark is not data
    numbered = [i + 1 for i, line in enumerate(texts) if line.strip(b" \t\r")]
    objects = {i + 1 for i, (is_object, _) in enumerate(lines) if is_object}
    bad_lines = [b.line for b in bad if b.line is not None]
    assert sum(b.data.height for b in batches) + len(bad) == len(numbered)
    assert bad_lines == sorted(set(bad_lines))
    assert len(bad_lines) == len(bad)
    assert set(bad_lines) <= set(numbered)
    assert not objects & {b.line for b in bad}  # every real object became a row
    assert all(dtype == pl.String for b in batches for dtype in b.data.dtypes)


@PROPERTY
@given(
    content=st.binary(max_size=300),
    name=st.sampled_from(["g.csv", "g.jsonl", "g.csv.gz", "g.parquet"]),
    compress=st.booleans(),
    batch_rows=st.integers(1, 10),
)
def test_property_garbage_never_raises_anything_but_reader_error(
    tmp_path: Path, content: bytes, name: str, compress: bool, batch_rows: int
) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if compress else content)
    try:
        for batch in read_batches(path, batch_rows=batch_rows):
            assert isinstance(batch.data, pl.DataFrame)
            assert all(b.raw for b in batch.bad)
    except ReaderError as exc:
        assert "\n" not in str(exc)


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_london_file_row_count() -> None:
    path = data_folder() / "london-smart-meters-2013" / "MAC000002.csv.gz"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data missing in CI: {path}")
        pytest.skip(f"real data not present: {path}")
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        expected = [row for row in reader if row]
    batches, data, bad = read_all(path, batch_rows=5000)
    assert bad == []
    assert data.columns == header
    assert data.height == len(expected)
    assert data.rows() == [tuple(row) for row in expected]
    assert len(batches) == -(-len(expected) // 5000)
    assert batches[-1].bytes_read == count_bytes(path)


@pytest.mark.parametrize("name", ["export.csv", "export.csv.gz"])
def test_a_cp1252_file_reads_with_its_encoding(tmp_path: Path, name: str) -> None:
    """A Windows spreadsheet's bytes: ``Zählpunkt`` and ``Straße`` in cp1252. Named, the
    file reads as the text it is; a line holding a byte cp1252 does not define (0x81)
    is a bad row with its own line number, and the rows after it keep theirs."""
    text = "Zählpunkt;Straße;kWh\nZ1;Hauptstraße;0,5\n\nZ2;Gärtnerweg;1,5\n"
    data = text.encode("cp1252").replace(b"Z2;G", b"Z2;\x81G") + "Z3;Öse;2\n".encode("cp1252")
    path = write(tmp_path, name, data)
    with pytest.raises(ReaderError, match="--encoding"):
        list(read_batches(path))
    (batch,) = list(read_batches(path, encoding="cp1252"))
    assert batch.data.columns == ["Zählpunkt", "Straße", "kWh"]
    assert batch.data.rows() == [("Z1", "Hauptstraße", "0,5"), ("Z3", "Öse", "2")]
    assert batch.lines is not None and batch.lines.tolist() == [2, 5]
    assert [(b.reason, b.line) for b in batch.bad] == [("invalid cp1252", 4)]
    assert batch.bad[0].raw.startswith("Z2;")


def test_lines_above_the_header_are_skipped_and_lines_keep_their_numbers(
    tmp_path: Path,
) -> None:
    """Three preamble lines (one blank, one with more fields than the table); the header
    is line 4 and every row and bad row keeps its line in the file."""
    text = "Report,kWh per meter\n\nAccount,1,2,3,4\nmeter,ts,kwh\nA,1,0.5\nB,2,0.7\nC,3\nD,4,0.9\n"
    path = write(tmp_path, "report.csv.gz", text.encode())
    (batch,) = list(read_batches(path, skip_lines=3))
    assert batch.data.columns == ["meter", "ts", "kwh"]
    assert batch.data["meter"].to_list() == ["A", "B", "D"]
    assert batch.lines is not None and batch.lines.tolist() == [5, 6, 8]
    assert [(b.line, b.reason.split(":")[0]) for b in batch.bad] == [(7, "ragged row")]
    assert list(read_batches(path, skip_lines=20)) == []  # nothing left: no table


def _zipped(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_zip_archive_of_one_file_reads_as_that_file(tmp_path: Path) -> None:
    """How market operators and utilities send a day's export: one CSV (here a NEM12
    file) in a zip. Its rows and bad lines are those of the file inside."""
    day = ",".join(["0.5"] * 48)
    nem12 = (
        "100,NEM12,202401020000,MDP,RETAILER\n200,4100000001,E1,1,E1,N1,M1,kWh,30,\n"
        f"300,20240101,{day},A,,,,\n300,20240102,1,A,,,,\n900\n"
    ).encode()
    path = _zipped(tmp_path / "NEM12#1#MDP#RETAILER.zip", {"export/nem12.csv": nem12})
    (batch,) = list(read_batches(path))
    assert batch.data.height == 48 and set(batch.data["import_kwh"]) == {0.5}
    assert [b.line for b in batch.bad] == [4]
    plain = _zipped(tmp_path / "plain.csv.zip", {"a.csv": b"a,b\n1,2\n3,4\n"})
    assert [b.data.rows() for b in read_batches(plain)] == [[("1", "2"), ("3", "4")]]


def test_zip_archives_that_cannot_be_read_as_one_file_are_refused(tmp_path: Path) -> None:
    two = _zipped(tmp_path / "export.zip", {"low.csv": b"a\n1\n", "high.csv": b"a\n2\n"})
    with pytest.raises(ReaderError, match=r"holds 2 \(low\.csv, high\.csv\)"):
        list(read_batches(two))
    broken = write(tmp_path, "broken.zip", b"PK\x03\x04 not really a zip")
    with pytest.raises(ReaderError, match="not a readable zip archive"):
        list(read_batches(broken))
    misnamed = _zipped(tmp_path / "inner.zip", {"a.csv": b"a,b\n1,2\n"})
    renamed = misnamed.rename(tmp_path / "export.csv")
    with pytest.raises(ReaderError, match=r"zip archive but its name does not end in \.zip"):
        list(read_batches(renamed))


def test_a_spreadsheets_first_sheet_reads_as_text_columns_with_row_numbers(
    tmp_path: Path,
) -> None:
    """Cells as their text (numbers as written, a date column of midnights as dates, a
    time column as times); an empty header cell named by its position; an empty row no
    row; each row numbered as in the sheet; the second sheet left alone."""
    import datetime as dt

    import xlsxwriter

    path = tmp_path / "meters.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    date, clock = (
        book.add_format({"num_format": "yyyy-mm-dd"}),
        book.add_format({"num_format": "hh:mm"}),
    )
    for col, name in enumerate(["meter", "", "at", "kwh"]):
        sheet.write(0, col, name)
    sheet.write(1, 0, "M-1")
    sheet.write_datetime(1, 1, dt.datetime(2024, 3, 1), date)
    sheet.write_datetime(1, 2, dt.time(0, 15), clock)
    sheet.write_number(1, 3, 0.123)
    sheet.write(3, 0, "M-2")  # row 4; row 3 is empty
    sheet.write_datetime(3, 1, dt.datetime(2024, 3, 2), date)
    sheet.write_datetime(3, 2, dt.time(23, 45), clock)
    sheet.write_number(3, 3, 12)
    book.add_worksheet("other").write(0, 0, "ignored")
    book.close()
    (batch,) = list(read_batches(path))
    assert batch.data.columns == ["meter", "#2", "at", "kwh"]
    assert batch.data.rows() == [  # the first sheet
        ("M-1", "2024-03-01", "00:15:00", "0.123"),
        ("M-2", "2024-03-02", "23:45:00", "12"),
    ]
    assert batch.lines is not None and batch.lines.tolist() == [2, 4]
    (bare,) = list(read_batches(path, header=False, skip_lines=1))
    assert bare.data.columns == ["#1", "#2", "#3", "#4"] and bare.lines.tolist() == [2, 4]
    # --sheet: by name or by number; a sheet the workbook lacks is named with those it has
    for wanted in ("other", "2"):
        (second,) = list(read_batches(path, header=False, sheet=wanted))
        assert second.data.rows() == [("ignored",)]
    with pytest.raises(ReaderError, match="no sheet 'data'; the workbook has 'Sheet1', 'other'"):
        list(read_batches(path, sheet="data"))


def test_a_file_that_is_no_spreadsheet_is_a_reader_error(tmp_path: Path) -> None:
    path = write(tmp_path, "meters.xlsx", b"meter,kwh\nM-1,0.5\n")
    with pytest.raises(ReaderError, match=r"meters\.xlsx: cannot read the spreadsheet"):
        list(read_batches(path))
