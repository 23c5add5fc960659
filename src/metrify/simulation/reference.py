"""The drawn fleet: grid network, weather stations, meters, and every per-meter parameter.

Drawn once per fleet from its own random stream (so the time series' noise never shifts
it): the reference tables the pipeline loads (nodes, stations, meters) and the private
arrays the generators index by meter, feeder and node. Children are contiguous blocks of
their parents (meters of a feeder, feeders of a substation...), so every roll-up is an
``np.add.reduceat``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.contracts.records import METER, NODE, STATION
from metrify.simulation.arrays import BoolArray, F64Array, I64Array
from metrify.simulation.climate import Climate
from metrify.simulation.shapes import (
    BUSINESS,
    BUSINESS_P,
    HOUSEHOLD,
    HOUSEHOLD_P,
    N_HOUSEHOLD_ARCH,
    PAD,
    W,
)
from metrify.simulation.spec import TIMEZONE, FleetSpec

__all__ = ["LOSS_MAX", "LOSS_MIN", "Reference", "draw_reference"]

#: feeder losses as a share of the load its meters draw (grows with loading).
LOSS_MIN: Final = 0.01
LOSS_MAX: Final = 0.06

_UK_LAT: Final = (50.6, 55.3)
_UK_LON: Final = (-4.2, 1.2)
_REGION_NAMES: Final = (
    "North",
    "South",
    "East",
    "West",
    "Midlands",
    "Coast",
    "Valley",
    "Borders",
)
_BUSINESS_RATINGS_A: Final = (100.0, 160.0, 200.0, 250.0, 315.0, 400.0, 630.0, 800.0)


@dataclass
class Reference:
    """Reference tables and the per-meter, per-feeder and per-node arrays behind them.

    Arrays are indexed by meter row (0..meters-1), feeder, or node (regions, then
    substations, then feeders). ``reg_start_wh``, ``theft_start`` and ``theft_scale`` are
    set again by the fault plan; everything else stays as drawn.
    """

    meters: pl.DataFrame  #: records.METER schema
    nodes: pl.DataFrame  #: records.NODE schema: regions, substations, feeders
    stations: pl.DataFrame  #: records.STATION schema
    climate: Climate
    meter_ids: pl.Series
    node_ids: pl.Series
    # meters: class, load shape and load parameters
    biz: BoolArray
    arch_off: I64Array  #: where the meter's archetype (and its time shift) starts in SHAPES
    scale: F64Array
    base: F64Array
    heat: F64Array
    cool: F64Array
    light: F64Array
    sigma: F64Array
    kwp: F64Array
    orient: F64Array
    cap_kw: npt.NDArray[np.floating[Any]]  #: the most a meter can draw, in kW
    # meters: power quality
    pf0: F64Array
    vpos: F64Array
    drop: F64Array
    phases: F64Array
    pq: BoolArray
    # meters: where they are, their registers and faults
    station: I64Array
    feeder: I64Array
    digits: I64Array
    wrap_wh: I64Array
    reg_start_wh: I64Array
    typical: F64Array  #: a typical interval's import in kWh
    theft_start: I64Array
    theft_scale: F64Array
    # grid
    sub_starts: I64Array
    reg_starts: I64Array
    fdr_cap_kw: F64Array
    loss0: F64Array
    loss1: F64Array
    node_cap: F64Array
    node_kv: F64Array
    reg_typical: F64Array
    n_reg: int
    freq_p: F64Array
    freq_ph: F64Array


def draw_reference(spec: FleetSpec, rng: np.random.Generator, weather_salt: int) -> Reference:
    """Draw the grid, stations and meters (and every per-meter load parameter)."""
    m, f_n, s_n = spec.meters, spec.n_feeders, spec.n_stations
    sub_n = max(1, math.ceil(f_n / 6))
    reg_n = max(1, math.ceil(sub_n / 4))
    # Children are contiguous blocks of their parents: sums are np.add.reduceat.
    feeder_sub = np.arange(f_n) * sub_n // f_n
    sub_reg = np.arange(sub_n) * reg_n // sub_n
    meter_feeder = np.arange(m) * f_n // m
    feeder_station = np.arange(f_n) * s_n // f_n

    reg_lat = rng.uniform(51.0, 54.5, reg_n)
    reg_lon = rng.uniform(-3.5, 0.5, reg_n)
    sub_lat = np.clip(reg_lat[sub_reg] + rng.normal(0, 0.25, sub_n), *_UK_LAT)
    sub_lon = np.clip(reg_lon[sub_reg] + rng.normal(0, 0.35, sub_n), *_UK_LON)
    fdr_lat = np.clip(sub_lat[feeder_sub] + rng.normal(0, 0.04, f_n), *_UK_LAT)
    fdr_lon = np.clip(sub_lon[feeder_sub] + rng.normal(0, 0.06, f_n), *_UK_LON)
    m_lat = np.clip(fdr_lat[meter_feeder] + rng.normal(0, 0.01, m), *_UK_LAT)
    m_lon = np.clip(fdr_lon[meter_feeder] + rng.normal(0, 0.015, m), *_UK_LON)

    st_lat = rng.uniform(*_UK_LAT, s_n)
    st_lon = rng.uniform(*_UK_LON, s_n)
    counts = np.bincount(feeder_station, minlength=s_n)
    has = counts > 0
    st_lat[has] = np.bincount(feeder_station, fdr_lat, s_n)[has] / counts[has]
    st_lon[has] = np.bincount(feeder_station, fdr_lon, s_n)[has] / counts[has]
    st_lat = np.clip(st_lat + rng.normal(0, 0.02, s_n), *_UK_LAT)
    st_lon = np.clip(st_lon + rng.normal(0, 0.03, s_n), *_UK_LON)
    elevation = np.round(rng.uniform(5.0, 250.0, s_n), 0)
    climate = Climate.draw(rng, st_lat, st_lon, elevation, weather_salt)

    # ---- meters: class, archetype and load parameters
    biz = rng.random(m) < spec.business_share
    arch = np.where(
        biz,
        N_HOUSEHOLD_ARCH + rng.choice(len(BUSINESS), m, p=BUSINESS_P),
        rng.choice(N_HOUSEHOLD_ARCH, m, p=HOUSEHOLD_P),
    )
    shift = np.where(biz, rng.integers(-30, 31, m), rng.integers(-45, 46, m))
    scale = np.where(
        biz,
        np.clip(rng.lognormal(math.log(8.0), 0.6, m), 1.5, 80.0),
        rng.lognormal(math.log(0.2), 0.35, m),
    )
    base = np.where(biz, 0.0, rng.uniform(0.05, 0.12, m))
    electric_heat = rng.random(m) < 0.1
    heat = np.where(
        biz,
        rng.uniform(0.01, 0.04, m) * scale,
        np.where(electric_heat, rng.uniform(0.06, 0.18, m), rng.uniform(0.003, 0.012, m)),
    )
    has_ac = rng.random(m) < 0.08
    cool = np.where(
        biz,
        rng.uniform(0.01, 0.05, m) * scale,
        np.where(has_ac, rng.uniform(0.1, 0.35, m), 0.0),
    )
    light = np.where(biz, 0.0, rng.uniform(0.05, 0.2, m))
    sigma = np.where(biz, rng.uniform(0.06, 0.15, m), rng.uniform(0.25, 0.45, m))
    has_pv = rng.random(m) < spec.pv_share
    kwp = np.where(biz, rng.uniform(0.4, 1.2, m) * scale, rng.uniform(2.5, 6.0, m)) * has_pv
    orient = rng.uniform(0.75, 1.0, m)
    pf0 = np.where(biz, rng.uniform(0.9, 0.96, m), rng.uniform(0.95, 0.99, m))
    vpos = rng.uniform(-4.0, 6.0, m)
    drop = np.where(biz, rng.uniform(0.02, 0.08, m), rng.uniform(0.3, 0.9, m))
    pq = rng.random(m) < 0.3
    hh_rated = rng.choice(np.array([60.0, 80.0, 100.0]), m, p=[0.2, 0.3, 0.5])
    need_kw = 3.0 * scale + 15.0 * heat + 10.0 * cool
    ratings = np.array(_BUSINESS_RATINGS_A)
    biz_rated = ratings[np.minimum(np.searchsorted(ratings * 0.693, need_kw), ratings.size - 1)]
    rated = np.where(biz, biz_rated, hh_rated)
    max_kw = np.round(np.where(biz, rated * 0.693, rated * 0.23), 2)
    install_ago = rng.integers(30, 3650, m)

    # Registers never wrap by themselves: the window's most possible import must fit.
    cap_kw = 0.9 * max_kw
    bound_kwh = cap_kw * spec.days * 24.0
    digits_pref = np.where(~biz & (rng.random(m) < 0.12), 5, 6)
    digits_need = np.ceil(np.log10(bound_kwh * 1.25)).astype(np.int64)
    digits = np.maximum(digits_pref, digits_need)
    wrap_kwh = 10.0**digits
    reg_start_wh = np.floor(rng.random(m) * (wrap_kwh - bound_kwh) * 1000.0).astype(np.int64)
    tariff_u = rng.random(m)
    interval_h = spec.interval_s / 3600.0
    typical = np.maximum(np.round((base + scale + 0.3 * light + 5.0 * heat) * interval_h, 3), 0.001)

    # ---- grid node parameters
    feeder_max = np.bincount(meter_feeder, max_kw, f_n)
    fdr_cap = np.round(np.maximum(0.05, 0.3 * feeder_max / 1000.0), 3)
    sub_cap = np.round(1.25 * np.bincount(feeder_sub, fdr_cap, sub_n), 3)
    reg_cap = np.round(1.25 * np.bincount(sub_reg, sub_cap, reg_n), 3)
    reg_typical = np.bincount(
        sub_reg[feeder_sub[meter_feeder]], typical / interval_h / 1000.0, reg_n
    )

    # ---- ids and tables
    def ids(prefix: str, n: int) -> list[str]:
        width = max(len(str(n)), {"MTR": 6, "SITE": 6, "FDR": 4}.get(prefix, 3))
        return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]

    reg_ids, sub_ids, fdr_ids = ids("REG", reg_n), ids("SUB", sub_n), ids("FDR", f_n)
    st_ids, meter_ids = ids("WS", s_n), ids("MTR", m)
    reg_names = [
        _REGION_NAMES[i % len(_REGION_NAMES)]
        + ("" if i < len(_REGION_NAMES) else f" {i // len(_REGION_NAMES) + 1}")
        for i in range(reg_n)
    ]
    nodes = pl.DataFrame(
        {
            "node_id": reg_ids + sub_ids + fdr_ids,
            "parent_id": [None] * reg_n
            + [reg_ids[r] for r in sub_reg]
            + [sub_ids[s] for s in feeder_sub],
            "kind": ["region"] * reg_n + ["substation"] * sub_n + ["feeder"] * f_n,
            "name": [f"{n} region" for n in reg_names]
            + [f"Substation {i + 1}" for i in range(sub_n)]
            + [f"Feeder {i + 1}" for i in range(f_n)],
            "capacity_mw": np.concatenate([reg_cap, sub_cap, fdr_cap]),
            "nominal_kv": [132.0] * reg_n + [33.0] * sub_n + [11.0] * f_n,
            "status": ["active"] * (reg_n + sub_n + f_n),
        },
        schema=NODE.schema,
    )
    stations = pl.DataFrame(
        {
            "station_id": st_ids,
            "name": [f"Weather station {i + 1}" for i in range(s_n)],
            "latitude": np.round(st_lat, 4),
            "longitude": np.round(st_lon, 4),
            "elevation_m": elevation,
            "status": ["active"] * s_n,
        },
        schema=STATION.schema,
    )
    tariffs = np.where(
        biz,
        np.where(tariff_u < 0.3, "business-tou", "business"),
        np.where(
            arch == list(HOUSEHOLD).index("economy7"),
            "economy7",
            np.where(tariff_u < 0.12, "time-of-use", "standard"),
        ),
    )
    meter_region = sub_reg[feeder_sub[meter_feeder]]
    meter_station = feeder_station[meter_feeder]
    meters = pl.DataFrame(
        {
            "meter_id": meter_ids,
            "site_id": ids("SITE", m),
            "region": np.array(reg_ids)[meter_region],
            "node_id": np.array(fdr_ids)[meter_feeder],
            "station_id": np.array(st_ids)[meter_station],
            "tariff": tariffs,
            "interval_s": np.full(m, spec.interval_s, dtype=np.int32),
            "max_kw": max_kw,
            "rated_current_a": rated,
            "register_digits": digits.astype(np.int16),
            "nominal_voltage_v": np.full(m, 230.0),
            "has_pv": has_pv,
            "timezone": [TIMEZONE] * m,
            "install_date": np.datetime64(spec.start, "D") - install_ago.astype("timedelta64[D]"),
            "status": ["active"] * m,
            "latitude": np.round(m_lat, 5),
            "longitude": np.round(m_lon, 5),
            "commodity": ["electricity"] * m,
            "unit": ["kWh"] * m,
            "calorific_value_mj_m3": [None] * m,
            "correction_factor": [None] * m,
        },
        schema=METER.schema,
    )

    # ---- the arrays the generators index, in the order they were drawn
    loss0 = rng.uniform(LOSS_MIN, 0.03, f_n)
    loss1 = rng.uniform(0.0, LOSS_MAX - 0.03, f_n)
    freq_p = np.array([1020.0, 4680.0, 18360.0]) * rng.uniform(0.8, 1.2, 3)
    freq_ph = rng.uniform(0, 2 * np.pi, 3)
    return Reference(
        meters=meters,
        nodes=nodes,
        stations=stations,
        climate=climate,
        meter_ids=pl.Series("meter_id", meter_ids, dtype=pl.String()),
        node_ids=nodes["node_id"],
        biz=biz,
        arch_off=(arch * 3 * W + PAD + shift).astype(np.int64),
        scale=scale,
        base=base,
        heat=heat,
        cool=cool,
        light=light,
        sigma=sigma,
        kwp=kwp,
        orient=orient,
        cap_kw=cap_kw,
        pf0=pf0,
        vpos=vpos,
        drop=drop,
        phases=np.where(biz, 3.0, 1.0),
        pq=pq,
        station=meter_station,
        feeder=meter_feeder,
        digits=digits,
        wrap_wh=(wrap_kwh * 1000.0).astype(np.int64),
        reg_start_wh=reg_start_wh,
        typical=typical,
        theft_start=np.full(m, np.iinfo(np.int64).max, dtype=np.int64),
        theft_scale=np.ones(m),
        sub_starts=np.cumsum(np.bincount(feeder_sub, minlength=sub_n))
        - np.bincount(feeder_sub, minlength=sub_n),
        reg_starts=np.cumsum(np.bincount(sub_reg, minlength=reg_n))
        - np.bincount(sub_reg, minlength=reg_n),
        fdr_cap_kw=fdr_cap * 1000.0,
        loss0=loss0,
        loss1=loss1,
        node_cap=np.concatenate([reg_cap, sub_cap, fdr_cap]),
        node_kv=np.array([132.0] * reg_n + [33.0] * sub_n + [11.0] * f_n),
        reg_typical=np.maximum(reg_typical, 1e-6),
        n_reg=reg_n,
        freq_p=freq_p,
        freq_ph=freq_ph,
    )
