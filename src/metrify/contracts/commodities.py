"""What differs between electricity, gas, heat and water meters, in one place.

Every stage reads the commodity's policy from here instead of asking "is this an
electricity meter" on its own: which VEE rules apply, which detectors judge it, what its
quantity means and how a gas volume becomes energy.

Why these policies (a meter data management team's view):

* **Spikes** (VEE rule 3) are an electricity notion: a kettle or an oven stands far
  above a home's usual level at that hour for one interval. A heat or gas meter follows
  the boiler's firing cycles and the weather; an hour at full burner power after a
  night setback is ordinary, and a water meter's bath is one interval of a month's
  flow. Those meters keep the physical range check, flat lines and registers, not the
  spike rule.
* **Zero runs**: a heat or gas meter whose heating is off all summer records zeros (or
  nearly) for weeks; that is the season, not a dead channel, so a long zero run is no
  flag there. A non-zero value stuck for hours still is.
* **Detectors**: the drop, vacancy and level-shift detectors compare a meter with its
  own recent weeks. On a heating meter the seasons themselves are such changes (use
  falls tenfold in spring, rises when heating starts), so those detectors judge
  electricity only; unusual single intervals are still found on every commodity.
  Export without registered generation is an electricity notion as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from metrify.contracts.records import Commodity

__all__ = [
    "ENERGY_UNITS",
    "MJ_PER_KWH",
    "POLICIES",
    "VOLUME_UNITS",
    "CommodityPolicy",
    "commodities_with",
    "commodity_of",
    "gas_kwh",
    "policy",
    "unit_key",
]

#: 1 kWh = 3.6 MJ
MJ_PER_KWH: Final = 3.6

#: kWh per unit of the energy units meters and head-ends report in
ENERGY_UNITS: Final[dict[str, float]] = {
    "wh": 1e-3,
    "kwh": 1.0,
    "mwh": 1e3,
    "gwh": 1e6,
    "mj": 1.0 / MJ_PER_KWH,
    "gj": 1e3 / MJ_PER_KWH,
}

#: m³ per unit of the volume units gas and water meters report in
VOLUME_UNITS: Final[dict[str, float]] = {"m3": 1.0, "l": 1e-3, "dm3": 1e-3}


def unit_key(unit: str) -> str:
    """A unit as :data:`ENERGY_UNITS` and :data:`VOLUME_UNITS` name it: lower case,
    ``m³`` as ``m3``."""
    return unit.strip().lower().replace("³", "3")


@dataclass(frozen=True)
class CommodityPolicy:
    """What applies to a commodity's readings."""

    commodity: Commodity
    #: what ``import_kwh`` holds: "kWh" (energy) or "m3" (water's volume)
    quantity_unit: str
    #: VEE rule 3 (spikes against the same local hour)
    spikes: bool
    #: a long run of zeros is suspect (a dead channel or an empty property)
    zero_runs: bool
    #: the drop, vacancy and level-shift detectors (the meter against its own weeks)
    level_detectors: bool
    #: export or reverse flow without registered generation is an incident
    export_detector: bool
    #: the unit a meter of this commodity reports in when reference data says none
    default_unit: str


POLICIES: Final[dict[Commodity, CommodityPolicy]] = {
    Commodity.ELECTRICITY: CommodityPolicy(
        Commodity.ELECTRICITY, "kWh", True, True, True, True, "kWh"
    ),
    Commodity.GAS: CommodityPolicy(Commodity.GAS, "kWh", False, False, False, False, "m3"),
    Commodity.HEAT: CommodityPolicy(Commodity.HEAT, "kWh", False, False, False, False, "kWh"),
    Commodity.WATER: CommodityPolicy(Commodity.WATER, "m3", False, True, False, False, "m3"),
}


def policy(commodity: str | None) -> CommodityPolicy:
    """The policy of a commodity name; None (not stated) is electricity."""
    return POLICIES[Commodity(commodity or Commodity.ELECTRICITY)]


def commodity_of(meters: pl.DataFrame) -> pl.Expr:
    """An expression for the commodity of each row of a frame joined with ``meters``'
    ``commodity`` column: the column, electricity where it is null or absent."""
    if "commodity" not in meters.columns:
        return pl.lit(Commodity.ELECTRICITY.value)
    return pl.col("commodity").fill_null(Commodity.ELECTRICITY.value)


def commodities_with(flag: str) -> list[str]:
    """The commodity names whose policy has ``flag`` set (e.g. ``"spikes"``)."""
    return [c.value for c, p in POLICIES.items() if getattr(p, flag)]


def gas_kwh(volume_m3: pl.Expr, calorific_value_mj_m3: pl.Expr, correction: pl.Expr) -> pl.Expr:
    """Energy of a metered gas volume: volume x correction factor x calorific value / 3.6.

    The correction factor turns the metered volume (at the meter's temperature and
    pressure) into standard cubic metres; the calorific value (gross, MJ per standard
    m³) is the grid's, published by the transporter for the region; 3.6 MJ is 1 kWh.
    """
    return volume_m3 * correction * calorific_value_mj_m3 / MJ_PER_KWH
