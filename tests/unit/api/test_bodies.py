"""A CSV request body's rows and bad rows keep their real line numbers and record
indices when blank lines stand between them (expected values found in the body text)."""

from __future__ import annotations

from metrify.api import bodies

LINES = [
    "meter_id,ts,interval_s,import_kwh",
    "",
    "M1,2024-01-01T00:00:00Z,3600,0.5",
    "",
    "",
    "M1,2024-01-01T01:00:00Z,3600",  # ragged
    "M1,2024-01-01T02:00:00Z,3600,0.7",
    "",
    "M1,2024-01-01T03:00:00Z,3600,lots",
]
BODY = "\r\n".join(LINES).encode() + b"\r\n"


def _numbers(predicate: str) -> list[int]:
    return [i for i, line in enumerate(LINES, 1) if predicate in line]


def test_rows_and_bad_rows_name_their_real_lines() -> None:
    parts = bodies.parse("csv", BODY)
    rows = [int(n) for p in parts for n in p.line_numbers()]
    values = [v for p in parts for v in p.frame.get_column("import_kwh").to_list()]
    assert dict(zip(values, rows, strict=True)) == {
        "0.5": _numbers(",0.5")[0],
        "0.7": _numbers(",0.7")[0],
        "lots": _numbers("lots")[0],
    }
    assert [b.line for p in parts for b in p.bad] == _numbers("01:00:00Z,3600")


def test_a_line_maps_to_its_record_index() -> None:
    parts = bodies.parse("csv", BODY)
    records = bodies.content_lines(parts)
    # records: the non-blank lines after the header, in order
    content = [i for i, line in enumerate(LINES, 1) if line.strip() and i > 1]
    assert records.tolist() == content
    for index, line in enumerate(content):
        assert bodies.index_of_line("csv", line, records) == index
    assert bodies.index_of_line("csv", 2, records) is None  # a blank line holds no record
    assert bodies.index_of_line("json", 5, records) == 5
