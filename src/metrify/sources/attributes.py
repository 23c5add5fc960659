"""Meter attributes a load declares for the meters it registers: the commodity a meter
measures and the unit its readings come in.

They are facts about the meter, not about a reading, but often only the source knows
them when the meter is new: a Green Button feed says its usage point's readings are
therms of natural gas, a head-end's gas export is in m³. Registered without them, a gas
meter was an electricity meter, judged by the electricity rules (spikes, zero runs, the
level detectors) and its m³ taken for kWh. Declared (``--set commodity=gas``, ``--set
unit=m3``, ``--map unit=COLUMN``, or a column named ``meter.commodity`` /
``meter.unit``, as the Green Button reader writes), they are kept on the new meter's
reference row and judge its readings from the first batch on, as a zone ``--tz``
declares does. A meter's own reference data always wins.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from metrify.contracts.commodities import ENERGY_UNITS, VOLUME_UNITS, unit_key
from metrify.contracts.records import Commodity

__all__ = [
    "ATTRIBUTE_COLUMN",
    "METER_ATTRIBUTES",
    "attribute_checks",
    "attribute_problem",
    "attribute_texts",
]

#: the meter attributes a load of readings may declare (``--set``, ``--map``)
METER_ATTRIBUTES: Final = ("commodity", "unit")
#: the column an attribute is read from without ``--map``
ATTRIBUTE_COLUMN: Final = "meter.{}"

_COMMODITIES: Final = tuple(c.value for c in Commodity)
_UNITS: Final = (*ENERGY_UNITS, *VOLUME_UNITS)


def attribute_problem(name: str, value: str) -> str | None:
    """What is wrong with ``value`` for the attribute ``name`` (None: nothing)."""
    if name == "commodity" and value.strip().lower() not in _COMMODITIES:
        return f"unknown commodity (expected one of {', '.join(_COMMODITIES)})"
    if name == "unit" and unit_key(value) not in _UNITS:
        return "unknown unit (expected one of Wh, kWh, MWh, GWh, MJ, GJ, m3, dm3, l)"
    return None


def attribute_texts(raw_text: dict[str, pl.Expr]) -> dict[str, pl.Expr]:
    """Declared attribute texts (``name -> expression``) as kept: stripped, blank as
    null, a commodity in lower case, a unit as written."""
    out: dict[str, pl.Expr] = {}
    for name, text in raw_text.items():
        clean = text.cast(pl.String).str.strip_chars()
        clean = pl.when(clean != "").then(clean)
        out[name] = clean.str.to_lowercase() if name == "commodity" else clean
    return out


def attribute_checks(columns: dict[str, str]) -> list[tuple[pl.Expr, str]]:
    """The checks that refuse a row declaring an unknown commodity or unit, for the
    declared attributes in ``columns`` (name -> the decoded column holding it)."""
    checks: list[tuple[pl.Expr, str]] = []
    for name, column in columns.items():
        value = pl.col(column)
        if name == "commodity":
            known = value.is_in(list(_COMMODITIES))
        else:
            key = value.str.to_lowercase().str.replace_all("³", "3", literal=True)
            known = key.is_in(list(_UNITS))
        checks.append((value.is_not_null() & ~known, f"unknown meter {name}"))
    return checks
