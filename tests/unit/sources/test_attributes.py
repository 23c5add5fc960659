"""Meter attributes a load of readings declares (``--set commodity=``, ``--set unit=``,
``--map unit=COLUMN``, a ``meter.commodity`` column): read per meter, checked, refused
where they cannot be right."""

from __future__ import annotations

import polars as pl
import pytest

from metrify.contracts.records import GRID, READING
from metrify.sources.decode import decode
from metrify.sources.mapping import MappingError, build_mapping


def _raw() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": ["G1", "G1", "W1", "X1"],
            "ts": [f"2024-01-01T0{h}:00:00Z" for h in range(4)],
            "import_kwh": ["1", "2", "3", "4"],
            "kind": [" Gas ", "gas", "water", "oil"],
            "meter.unit": ["m3", "", "l", "kWh"],
        }
    )


def test_attributes_are_read_per_meter_and_unknown_ones_refuse_the_row() -> None:
    mapping = build_mapping(READING, maps=["commodity=kind"], interval_s=3600)
    out = decode(READING, _raw(), mapping)
    # a meter's first declaration of each attribute; a blank one declares nothing
    assert out.declared is not None
    assert sorted(out.declared.rows()) == [("G1", "gas", "m3"), ("W1", "water", "l")]
    assert out.rejects["reason"].to_list() == ["unknown meter commodity"]
    assert out.records["meter_id"].to_list() == ["G1", "G1", "W1"]
    # the attributes are no reading field, and their columns are not "ignored"
    assert "commodity" not in out.records.columns and out.ignored_columns == []


def test_set_declares_for_every_meter_and_nothing_is_declared_unasked() -> None:
    raw = _raw().drop("kind", "meter.unit")
    mapping = build_mapping(READING, maps=[], sets=["commodity=heat", "unit=GJ"], interval_s=3600)
    declared = decode(READING, raw, mapping).declared
    assert declared is not None and sorted(declared.rows()) == [
        ("G1", "heat", "GJ"),
        ("W1", "heat", "GJ"),
        ("X1", "heat", "GJ"),
    ]
    assert decode(READING, raw, build_mapping(READING, interval_s=3600)).declared is None


@pytest.mark.parametrize(
    ("sets", "units", "message"),
    [
        (["commodity=oil"], [], "unknown commodity"),
        (["unit=furlongs"], [], "unknown unit"),
        (["unit=m3"], ["import_kwh=Wh"], "converted|convert them again"),
    ],
)
def test_a_declaration_that_cannot_be_right_is_refused(
    sets: list[str], units: list[str], message: str
) -> None:
    with pytest.raises(MappingError, match=message):
        build_mapping(READING, maps=[], sets=sets, units=units, interval_s=3600)


def test_declaring_kwh_beside_unit_conversion_is_fine_and_grid_has_no_attributes() -> None:
    build_mapping(READING, sets=["unit=kWh"], units=["import_kwh=Wh"], interval_s=3600)
    with pytest.raises(MappingError, match="not a field of grid"):
        build_mapping(GRID, sets=["commodity=gas"], interval_s=3600)
