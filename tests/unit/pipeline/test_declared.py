"""What a load declares of its meters against what their rows hold: a meter a load
registered takes the latest declaration, a described meter keeps its reference data
(and the conflict is named), a meter with nothing stored takes what is declared."""

from __future__ import annotations

import polars as pl

from metrify.pipeline.stages import _overruled, _with_declared

DECLARED = {
    "LOADED": {"commodity": "gas", "unit": "m3"},
    "DESCRIBED": {"commodity": "gas", "unit": "m3"},
    "BLANK": {"commodity": "gas", "unit": "m3"},
    "NEW": {"commodity": "gas", "unit": "m3"},
}


def _meters() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": ["LOADED", "DESCRIBED", "BLANK", "QUIET"],
            "status": ["unregistered", "active", "inactive", "active"],
            "commodity": ["electricity", "electricity", None, "water"],
            "unit": [None, "kWh", None, "m3"],
        }
    )


def test_a_loaded_meter_takes_the_declaration_and_a_described_one_keeps_its_own() -> None:
    ids = pl.Series(["LOADED", "DESCRIBED", "BLANK", "QUIET", "NEW"])
    out = _with_declared(_meters(), ids, DECLARED)
    got = {r["meter_id"]: (r["commodity"], r["unit"]) for r in out.iter_rows(named=True)}
    assert got == {
        "LOADED": ("gas", "m3"),  # an earlier load's defaults give way
        "DESCRIBED": ("electricity", "kWh"),  # reference data wins
        "BLANK": ("gas", "m3"),  # described, but holding nothing there: filled
        "QUIET": ("water", "m3"),  # nothing declared of it
        "NEW": ("gas", "m3"),  # registered by this load
    }


def test_only_described_meters_holding_another_value_are_named() -> None:
    assert _overruled(_meters(), DECLARED) == {
        "DESCRIBED": "commodity electricity, not gas; unit kWh, not m3"
    }
    assert _overruled(_meters(), {"LOADED": {"commodity": "gas"}}) == {}
    assert _overruled(_meters().clear(), DECLARED) == {}
