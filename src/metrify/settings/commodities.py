"""How gas volumes become energy when a meter's reference data does not say.

A gas meter's calorific value and correction factor are looked up in this order: the
meter's own (``meters.calorific_value_mj_m3``, ``meters.correction_factor``), then its
region's here (``METRIFY_COMMODITIES__REGIONS='{"NL": {"calorific_value_mj_m3": 35.17}}'``),
then the defaults. The defaults are typical of the European H-gas grid (about 39 MJ per
standard m³ gross, correction 1.0 for a meter that already reports standard m³); a
utility sets its transporter's published values per region.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GasValues(BaseModel):
    """A region's gas: calorific value and volume correction factor."""

    model_config = ConfigDict(extra="forbid")

    calorific_value_mj_m3: float = Field(default=39.0, ge=1, le=100)
    correction_factor: float = Field(default=1.0, ge=0.5, le=2)


class CommodityConfig(BaseModel):
    """Gas conversion defaults, per region where they differ."""

    model_config = ConfigDict(extra="forbid")

    gas: GasValues = Field(default_factory=GasValues, description="when nothing else says")
    regions: dict[str, GasValues] = Field(
        default_factory=dict, description="a region's calorific value and correction factor"
    )

    def for_region(self, region: str | None) -> GasValues:
        """The gas values of ``region`` (the defaults when it has none)."""
        return self.regions.get(region or "", self.gas)
