"""Units on the way in: ``--unit FIELD=UNIT`` converts a source's unit into the contract's.

The contract fixes one unit per field, named by the field's suffix (energy in kWh, power
in kW or MW, voltage in V at meters and kV on the grid, temperature in °C, ...). A file
in Wh, GJ or °F is converted here, through `pint <https://pint.readthedocs.io>`_'s unit
definitions rather than a hand-kept table of factors, so any unit pint knows works
(``Wh``, ``MWh``, ``GJ``, ``MJ``, ``therm``, ``degF``, ``K``, ``mbar``, ``km/h``...).

Every conversion between two units of one kind is affine (``value * factor + offset``;
only temperatures have an offset), so it is computed once per field from two points and
applied to the whole column by the decoder as one expression: no Python call per value.
pint is imported only when a command asks for a unit, since loading its registry costs
a fraction of a second that plain loads should not pay.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pint

__all__ = ["CONTRACT_UNITS", "UnitError", "contract_unit", "conversion"]

#: a field's unit by the suffix of its name (the contract's naming rule); the longest
#: suffix that matches wins (``_kvar`` before ``_v``)
CONTRACT_UNITS: Final[dict[str, str]] = {
    "_kwh": "kWh",
    "_kw": "kW",
    "_mw": "MW",
    "_kvar": "kvar",
    "_v": "V",
    "_kv": "kV",
    "_a": "A",
    "_hz": "Hz",
    "_c": "degC",
    "_pct": "percent",
    "_ms": "m/s",
    "_deg": "degree",
    "_hpa": "hPa",
    "_mm": "mm",
    "_wm2": "W/m^2",
}


class UnitError(ValueError):
    """A unit that is unknown, or that cannot become the field's contract unit."""


def contract_unit(field: str) -> str | None:
    """The contract's unit of ``field`` (``import_kwh`` -> ``kWh``), None if it has none
    (ids, times, counts, ratios such as ``power_factor``, prices)."""
    matches = [suffix for suffix in CONTRACT_UNITS if field.endswith(suffix)]
    if not matches or field.startswith("price_"):
        return None
    return CONTRACT_UNITS[max(matches, key=len)]


@functools.cache
def _registry() -> pint.UnitRegistry[float]:
    import pint

    try:
        # pint's disk cache of its parsed definitions (the user's cache folder) makes
        # the registry ten times quicker to build after the first command
        registry: pint.UnitRegistry[float] = pint.UnitRegistry(
            autoconvert_offset_to_baseunit=True, cache_folder=":auto:"
        )
    except Exception:  # a read-only or missing cache folder: build it from the text
        registry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    # reactive power: pint has no var; dimensionally it is a volt-ampere
    registry.define("volt_ampere_reactive = volt * ampere = var = VAr")
    return registry


def conversion(field: str, unit: str) -> tuple[float, float]:
    """``(factor, offset)`` such that ``value * factor + offset`` is ``value`` (in
    ``unit``) in the contract unit of ``field``. Raises :class:`UnitError` naming the
    field and the unit when the unit is unknown or of another kind (``m^3`` for an
    energy field: gas volume needs a calorific value, not a unit)."""
    target = contract_unit(field)
    if target is None:
        raise UnitError(f"{field} has no unit to convert to")
    import pint

    registry = _registry()
    text = unit.strip().replace("°", "deg")
    try:
        source = registry.Unit(text)
    except (pint.UndefinedUnitError, pint.DefinitionSyntaxError, ValueError, TypeError):
        raise UnitError(f"unknown unit {unit!r} for {field}") from None
    except Exception as exc:  # pint's parser raises others on malformed text
        raise UnitError(f"unknown unit {unit!r} for {field} ({type(exc).__name__})") from None
    try:
        zero = registry.Quantity(0.0, source).to(target).magnitude
        one = registry.Quantity(1.0, source).to(target).magnitude
    except pint.DimensionalityError:
        raise UnitError(f"{unit!r} cannot be converted to {target}, the unit of {field}") from None
    return float(one - zero), float(zero)
