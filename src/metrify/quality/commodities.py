"""The commodity steps of the quality stage: units in, then checks VEE's rules cannot see.

Before validation (:func:`to_contract_units`): a meter's readings arrive in the meter's
unit (reference data ``meters.unit``; by default kWh for electricity and heat, m³ for gas
and water) and leave in the contract's: energy in kWh, a gas volume kept in
``volume_m3`` beside the energy it converts to, water's volume in m³.

After validation (:func:`commodity_checks`):

* **cumulative register mapped as interval energy**: a meter's readings that never go
  down over a day or more of contiguous intervals and stand far above either its
  physical maximum or their own increments (growing by less than half of what they
  start from) are a register (kWh since installation), not
  the energy of each interval. They are rejected with ``REGISTER_MISMATCH``
  (and ``OUT_OF_RANGE`` where above the maximum): summing a register as consumption
  stores gigawatt-hours for a home.
* **generation at night**: generation while the sun is below the horizon for the whole
  interval, at the meter's location or, without one, at the location tz data gives its
  time zone. PV does not generate then; a clock or zone error usually explains it.
  Suspect, ``OUT_OF_RANGE``.

Both return reason counts that the pipeline adds to the run's summary, so a load says
why rows were judged so, not only that they were.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from pathlib import Path
from typing import Any, Final

import polars as pl

from metrify.contracts.commodities import ENERGY_UNITS, VOLUME_UNITS, gas_kwh, policy, unit_key
from metrify.contracts.records import Commodity, Quality, Status
from metrify.settings.commodities import CommodityConfig

__all__ = [
    "CONVERTED_FIELDS",
    "CUMULATIVE_REASON",
    "NIGHT_REASON",
    "OUTAGE_SOURCE",
    "commodity_checks",
    "solar_elevation_deg",
    "to_contract_units",
    "zero_outage_gaps",
    "zone_location",
]

CUMULATIVE_REASON: Final = "cumulative register mapped as interval energy"
NIGHT_REASON: Final = "generation at night"

#: a register is judged over at least this many contiguous readings of a meter
_MIN_RUN: Final = 24
#: ... whose values stand this many times above their median increment
_REGISTER_RATIO: Final = 50.0
#: ... and grow by less than this share of their smallest value over the batch
_REGISTER_GROWTH: Final = 0.5
#: the sun this far below the horizon (degrees) gives a panel nothing: past civil dusk
_NIGHT_DEG: Final = -6.0
#: generation below this (kWh per interval) is meter noise, not generation
_NIGHT_MIN_KWH: Final = 0.001
#: where tz data lists the zones' principal locations (ISO 6709)
_ZONE_TABLES: Final = (
    Path("/usr/share/zoneinfo/zone.tab"),
    Path("/usr/share/zoneinfo/zone1970.tab"),
)
_ENERGY_FIELDS: Final = ("import_kwh", "export_kwh", "register_kwh", "generation_kwh")
#: fields :func:`to_contract_units` fills from another (a gas or water meter's volume,
#: from the import its input carried): no input carries them, yet a row it converted does
CONVERTED_FIELDS: Final = ("volume_m3",)


# --------------------------------------------------------------------------- units


def to_contract_units(
    records: pl.DataFrame, meters: pl.DataFrame, cfg: CommodityConfig
) -> pl.DataFrame:
    """``records`` with each meter's values turned from its unit into the contract's.

    Electricity and heat: energy fields x the unit's kWh factor (MWh, GJ, Wh ...). Gas in
    a volume unit: the volume goes to ``volume_m3`` (when not given) and import, export
    and register become energy with the meter's calorific value and correction factor,
    else its region's, else the defaults (:class:`CommodityConfig`). Water: ``volume_m3``
    and ``import_kwh`` both carry m³ (see ``docs/guides/commodities.md``). Meters
    without reference data, or electricity meters in kWh, pass unchanged.
    """
    if not records.height or "commodity" not in meters.columns:
        return records
    ref = _unit_factors(meters, cfg)
    if not ref.height:
        return records
    if "volume_m3" not in records.columns and ref.get_column("_volume").is_not_null().any():
        records = records.with_columns(volume_m3=pl.lit(None, dtype=pl.Float64))
    cols = records.columns
    joined = records.join(ref, on="meter_id", how="left", maintain_order="left")
    energy = pl.col("_energy")
    volume = pl.col("_volume")
    updates = [
        pl.when(energy.is_not_null()).then(pl.col(f) * energy).otherwise(pl.col(f)).alias(f)
        for f in _ENERGY_FIELDS
        if f in cols
    ]
    if "volume_m3" in cols:
        updates.append(
            pl.when(volume.is_not_null())
            .then(pl.coalesce(pl.col("volume_m3"), pl.col("import_kwh") * volume))
            .otherwise(pl.col("volume_m3"))
            .alias("volume_m3")
        )
    return joined.with_columns(updates).select(cols)


def _unit_factors(meters: pl.DataFrame, cfg: CommodityConfig) -> pl.DataFrame:
    """Per meter needing a conversion: ``_energy`` (multiply energy fields by) and
    ``_volume`` (m³ per unit of its import, for gas and water)."""
    rows: list[tuple[str, float | None, float | None]] = []
    get = functools.partial(_value, meters)
    for i, meter_id in enumerate(meters.get_column("meter_id").to_list()):
        commodity = get("commodity", i) or Commodity.ELECTRICITY.value
        pol = policy(commodity)
        unit = unit_key(str(get("unit", i) or pol.default_unit))
        if commodity == Commodity.WATER:
            per_m3 = VOLUME_UNITS.get(unit)
            if per_m3 is not None:
                rows.append((meter_id, per_m3, per_m3))
            continue
        if unit in VOLUME_UNITS:
            if commodity != Commodity.GAS:
                continue  # a volume is energy only for gas
            region = cfg.for_region(get("region", i))
            cv = get("calorific_value_mj_m3", i) or region.calorific_value_mj_m3
            cf = get("correction_factor", i) or region.correction_factor
            per_m3 = VOLUME_UNITS[unit]
            kwh = gas_kwh(pl.lit(per_m3), pl.lit(float(cv)), pl.lit(float(cf)))
            rows.append((meter_id, float(pl.select(kwh).item()), per_m3))
            continue
        factor = ENERGY_UNITS.get(unit)
        if factor is not None and factor != 1.0:
            rows.append((meter_id, factor, None))
    return pl.DataFrame(
        rows,
        schema={"meter_id": pl.String, "_energy": pl.Float64, "_volume": pl.Float64},
        orient="row",
    )


def _value(meters: pl.DataFrame, column: str, row: int) -> Any:
    """``meters``' ``column`` at ``row``; None when the column is absent."""
    return meters.get_column(column)[row] if column in meters.columns else None


# --------------------------------------------------------------------------- checks


def commodity_checks(
    assessed: pl.DataFrame, meters: pl.DataFrame, max_kwh: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, Counter[str]]:
    """Judge what VEE's rules cannot: registers mapped as interval energy, generation at
    night. ``assessed``: VEE's output (batch rows and gap rows, with ``quality`` and
    ``status``); ``meters``: reference rows (``max_kw``, ``timezone``, ``latitude``,
    ``longitude``; missing columns mean unknown). Returns the rows with bits and status
    set, and how many rows each reason judged."""
    reasons: Counter[str] = Counter()
    if not assessed.height:
        return assessed, reasons
    out = _cumulative(assessed, meters, reasons)
    if "generation_kwh" in out.columns and out.get_column("generation_kwh").drop_nulls().len():
        out = _night_generation(out, meters, reasons)
    return out, reasons


def _cumulative(df: pl.DataFrame, meters: pl.DataFrame, reasons: Counter[str]) -> pl.DataFrame:
    cols = df.columns
    imp = pl.col("import_kwh")
    real = imp.is_not_null() & ((pl.col("quality") & int(Quality.MISSING)) == 0)
    rows = _by_meter_and_time(
        df.with_row_index("_i")
        .filter(real)
        .select("_i", "meter_id", "ts", "interval_s", "import_kwh")  # what is judged
    )
    if rows.height < _MIN_RUN:
        return df
    meter = pl.col("meter_id")
    step = pl.when(meter == meter.shift(1)).then(imp - imp.shift(1))  # within each meter
    kw = pl.col("_max_kw")
    per = (
        rows.with_columns(_step=step)
        .group_by("meter_id")
        .agg(
            _n=pl.len(),
            _down=(pl.col("_step") < 0).sum(),
            _up=(pl.col("_step") > 0).sum(),
            _low=imp.min(),
            _high=imp.max(),
            _inc=pl.col("_step").filter(pl.col("_step") > 0).median(),
            _imin=pl.col("interval_s").min(),
            _imax=pl.col("interval_s").max(),
        )
        # the limit joined per meter, not per row: max_kw x interval / 3600 is largest
        # at one end of the meter's intervals
        .join(_max_kw(meters), on="meter_id", how="left")
        .with_columns(
            _cap=pl.max_horizontal(kw * pl.col("_imax") / 3600.0, kw * pl.col("_imin") / 3600.0)
        )
    )
    # a register grows little against what it already holds; a rising interval series
    # (a heating morning, a growing load) at least doubles where it starts from
    far_above_steps = (pl.col("_low") > _REGISTER_RATIO * pl.col("_inc")) & (
        pl.col("_high") - pl.col("_low") < _REGISTER_GROWTH * pl.col("_low")
    )
    above_max = (pl.col("_low") > 10 * pl.col("_cap")).fill_null(False)
    registers = per.filter(
        (pl.col("_n") >= _MIN_RUN)
        & (pl.col("_down") == 0)
        & (pl.col("_up") >= pl.col("_n") // 2)
        & (far_above_steps.fill_null(False) | above_max)
    )
    if not registers.height:
        return df
    hit = rows.filter(pl.col("meter_id").is_in(registers.get_column("meter_id").implode()))
    reasons[CUMULATIVE_REASON] += hit.height
    over = hit.join(registers.select("meter_id", "_cap"), on="meter_id").filter(
        (pl.col("import_kwh") > pl.col("_cap")).fill_null(False)
    )
    bits_all = int(Quality.REGISTER_MISMATCH)
    bits_over = bits_all | int(Quality.OUT_OF_RANGE)
    idx = pl.col("_i")
    flagged = pl.col("_i").is_in(hit.get_column("_i").implode())
    overs = idx.is_in(over.get_column("_i").implode())
    return (
        df.with_row_index("_i")
        .with_columns(
            quality=pl.when(overs)
            .then(pl.col("quality") | bits_over)
            .when(flagged)
            .then(pl.col("quality") | bits_all)
            .otherwise(pl.col("quality"))
            .cast(pl.Int32),
            status=pl.when(flagged).then(pl.lit(Status.REJECTED.value)).otherwise("status"),
        )
        .select(cols)
    )


def _by_meter_and_time(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` in (meter, time) order. VEE returns a batch so already, and a look at
    each row against the one before confirms it in a fraction of a sort of a few million
    rows by their id strings."""
    meter, ts = pl.col("meter_id"), pl.col("ts")
    before = meter.shift(1)
    ordered = ((meter > before) | ((meter == before) & (ts > ts.shift(1)))).fill_null(True)
    if rows.select(ordered.all()).item():
        return rows
    return rows.sort("meter_id", "ts")


def _max_kw(meters: pl.DataFrame) -> pl.DataFrame:
    """(meter_id, _max_kw): the physical maximum power where reference data gives it."""
    if "max_kw" not in meters.columns:
        return pl.DataFrame(schema={"meter_id": pl.String, "_max_kw": pl.Float64})
    return meters.select("meter_id", _max_kw=pl.col("max_kw").cast(pl.Float64)).unique("meter_id")


# --------------------------------------------------------------------------- night


@functools.cache
def _zone_table() -> dict[str, tuple[float, float]]:
    """tz data's principal location of each zone: {zone: (latitude, longitude)}."""
    found: dict[str, tuple[float, float]] = {}
    for path in _ZONE_TABLES:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) >= 3:
                found.setdefault(parts[2], _iso6709(parts[1]))
    return found


def _iso6709(text: str) -> tuple[float, float]:
    """``+5222+00454`` (±DDMM[SS]±DDDMM[SS]) as (latitude, longitude) in degrees."""
    split = max(text.rfind("+"), text.rfind("-"))
    lat, lon = text[:split], text[split:]

    def degrees(part: str, width: int) -> float:
        sign = -1.0 if part[0] == "-" else 1.0
        digits = part[1:]
        d, m = int(digits[:width]), int(digits[width : width + 2])
        s = int(digits[width + 2 :] or 0)
        return sign * (d + m / 60 + s / 3600)

    return degrees(lat, 2), degrees(lon, 3)


def zone_location(zone: str | None) -> tuple[float, float] | None:
    """Where tz data places a zone (its principal city); None when unknown."""
    return _zone_table().get(zone) if zone else None


def solar_elevation_deg(ts: pl.Expr, lat: pl.Expr, lon: pl.Expr) -> pl.Expr:
    """The sun's elevation above the horizon (degrees) at UTC ``ts`` seen from ``lat``,
    ``lon`` (degrees): the Astronomical Almanac's low-precision formulae, good to about
    0.1 degree for 1950-2050, which is ample to tell night from day."""
    rad = math.pi / 180
    d = ts.dt.epoch("s").cast(pl.Float64) / 86400.0 - 10957.5  # days since J2000.0
    g = (357.529 + 0.98560028 * d) * rad
    q = 280.459 + 0.98564736 * d
    ecl_lon = (q + 1.915 * g.sin() + 0.020 * (2 * g).sin()) * rad
    obliquity = (23.439 - 0.00000036 * d) * rad
    ra = pl.arctan2(obliquity.cos() * ecl_lon.sin(), ecl_lon.cos())
    dec = (obliquity.sin() * ecl_lon.sin()).arcsin()
    gmst = (18.697374558 + 24.06570982441908 * d) * 15 * rad
    hour_angle = gmst + lon * rad - ra
    phi = lat * rad
    sin_el = phi.sin() * dec.sin() + phi.cos() * dec.cos() * hour_angle.cos()
    return sin_el.clip(-1.0, 1.0).arcsin() / rad


def _locations(meters: pl.DataFrame) -> pl.DataFrame:
    """(meter_id, _lat, _lon): the meter's location, else its zone's."""
    rows = []
    for row in meters.iter_rows(named=True):
        lat, lon = row.get("latitude"), row.get("longitude")
        if lat is None or lon is None:
            place = zone_location(row.get("timezone"))
            if place is None:
                continue
            lat, lon = place
        rows.append((row["meter_id"], float(lat), float(lon)))
    return pl.DataFrame(
        rows, schema={"meter_id": pl.String, "_lat": pl.Float64, "_lon": pl.Float64}, orient="row"
    )


def _night_generation(
    df: pl.DataFrame, meters: pl.DataFrame, reasons: Counter[str]
) -> pl.DataFrame:
    places = _locations(meters)
    if not places.height:
        return df
    cols = df.columns
    joined = df.join(places, on="meter_id", how="left", maintain_order="left")
    lat, lon = pl.col("_lat"), pl.col("_lon")
    end = pl.col("ts") + pl.duration(seconds=pl.col("interval_s"))
    middle = pl.col("ts") + pl.duration(seconds=pl.col("interval_s") // 2)
    highest = pl.max_horizontal(
        solar_elevation_deg(pl.col("ts"), lat, lon),
        solar_elevation_deg(middle, lat, lon),
        solar_elevation_deg(end, lat, lon),
    )
    night = (
        (pl.col("generation_kwh") > _NIGHT_MIN_KWH) & lat.is_not_null() & (highest < _NIGHT_DEG)
    ).fill_null(False)
    judged = joined.with_columns(_night=night)
    count = int(judged.get_column("_night").sum())
    if not count:
        return df
    reasons[NIGHT_REASON] += count
    worse = pl.col("status").is_in([Status.VALID.value, Status.ESTIMATED.value])
    return judged.with_columns(
        quality=pl.when("_night")
        .then(pl.col("quality") | int(Quality.OUT_OF_RANGE))
        .otherwise("quality")
        .cast(pl.Int32),
        status=pl.when(pl.col("_night") & worse)
        .then(pl.lit(Status.SUSPECT.value))
        .otherwise("status"),
    ).select(cols)


# --------------------------------------------------------------------------- outages

OUTAGE_SOURCE: Final = "vee:estimate:outage"


def zero_outage_gaps(assessed: pl.DataFrame, outages: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Gap rows inside a power outage the meter reported (``outages``: ``meter_id``,
    ``ts_start`` = failure, ``ts_end`` = restore or null while open) estimated as zero.

    No power, no consumption: interpolating across an outage (or a profile's evening
    peak) would bill energy that never flowed. Only gap rows (``MISSING``) change; they
    keep that bit, get ``ESTIMATED``, status ``estimated`` and :data:`OUTAGE_SOURCE`.
    Returns the rows and how many gap rows were set so.
    """
    missing = (pl.col("quality") & int(Quality.MISSING)) != 0
    if not outages.height or not assessed.select(missing.any()).item():
        return assessed, 0
    cols = assessed.columns
    gaps = (
        assessed.with_row_index("_i")
        .filter(missing)
        .select("_i", "meter_id", "ts", "interval_s")
        .join(outages, on="meter_id")
        .filter(
            (pl.col("ts") >= pl.col("ts_start"))
            & (
                pl.col("ts_end").is_null()
                | (pl.col("ts") + pl.duration(seconds=pl.col("interval_s")) <= pl.col("ts_end"))
            )
        )
        .get_column("_i")
        .unique()
    )
    if not gaps.len():
        return assessed, 0
    inside = pl.col("_i").is_in(gaps.implode())
    out = assessed.with_row_index("_i").with_columns(
        import_kwh=pl.when(inside).then(0.0).otherwise("import_kwh"),
        quality=pl.when(inside)
        .then(pl.col("quality") | int(Quality.ESTIMATED))
        .otherwise("quality")
        .cast(pl.Int32),
        status=pl.when(inside).then(pl.lit(Status.ESTIMATED.value)).otherwise("status"),
        source=pl.when(inside).then(pl.lit(OUTAGE_SOURCE)).otherwise("source"),
    )
    return out.select(cols), gaps.len()
