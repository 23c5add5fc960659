"""DLMS/COSEM Standard Event Log numbers named by the contract's event families: a
number in the event column, a number beside a name no head-end uses, a name that wins
over its code, and numbers the table does not hold. The expected families are what the
public references say the numbers mean (IDIS / DSMR: 1 power down, 2 power up, 40 and
44 covers removed, 41 and 45 closed, 42 strong DC field)."""

from __future__ import annotations

import polars as pl

from metrify.sources.dlms import REASON, decode_codes

NAMES = {"power_failure", "cover_open", "power_off"}


def _events(rows: list[tuple[str | None, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": ["M"] * len(rows),
            "event": [r[0] for r in rows],
            "code": [r[1] for r in rows],
            "details": [r[2] for r in rows],
        },
        schema={n: pl.String for n in ("meter_id", "event", "code", "details")},
    )


def test_numbers_become_families_and_keep_their_code() -> None:
    rows = [("1", None, None), ("2", "2", None), ("40", None, None), ("041", None, None),
            ("42", None, "coil on the case"), ("45", None, None), ("5", None, None)]  # fmt: skip
    named, refused = decode_codes(_events(rows), NAMES)
    assert named["event"].to_list() == [
        "power_failure", "power_restore", "cover_open", "cover_close",
        "magnetic_field", "cover_close", "clock_set",
    ]  # fmt: skip
    assert named["code"].to_list() == ["1", "2", "40", "041", "42", "45", "5"]
    assert named["details"][0] == "DLMS/COSEM event 1: power down"
    assert named["details"][4] == "coil on the case"  # given details are kept
    assert refused.height == 0


def test_a_name_wins_and_an_unknown_name_falls_back_to_its_code() -> None:
    rows = [("Power Off", "44", None), ("Fraude!", "44", None), ("Fraude!", None, None)]
    named, _ = decode_codes(_events(rows), NAMES)
    # a known name is left to the name table; an unknown one is named by its code;
    # without a code it stays for the name table to refuse
    assert named["event"].to_list() == ["Power Off", "cover_open", "Fraude!"]


def test_numbers_outside_the_standard_event_log_are_refused_with_the_reason() -> None:
    named, refused = decode_codes(_events([("99", None, None), ("x", "231", None)]), NAMES)
    assert named.height == 0
    assert refused[REASON].to_list() == [
        "unknown DLMS/COSEM event code 99 (not a Standard Event Log code; "
        "give the event's name in its event column)",
        "unknown DLMS/COSEM event code 231 (not a Standard Event Log code; "
        "give the event's name in its event column)",
    ]
    assert refused["event"].to_list() == ["99", "x"]  # as given
