"""What each meter draws and exports, minute-true, for any block of meters and intervals.

A meter's load is its archetype's daily shape (shifted by the meter's own habits) times
its scale, the season and measurement noise, plus weather-driven heating, cooling and
lighting; rooftop PV is clear-sky irradiance dimmed by cloud. Every random term is a
counter-based hash (:mod:`metrify.simulation.noise`), so a meter simulated alone gives the
same values as inside the full fleet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from metrify.simulation.arrays import F64Array, I64Array
from metrify.simulation.noise import S_FLICKER, S_LOAD, S_PV, hash_pairs, normalish, uniform
from metrify.simulation.reference import Reference
from metrify.simulation.shapes import SCHEDULES, SHAPES, W
from metrify.simulation.spec import DAY_S, TIMEZONE, Window

__all__ = ["BLOCK_CELLS", "MeterLoad", "TimeContext", "to_wh"]

_TZ: Final = ZoneInfo(TIMEZONE)
_MIN_LOAD_KW: Final = 0.05  # standby never drops below this, so night import is never 0 Wh
#: (meter, sub-step) values generated at once: big enough to amortise Python, small
#: enough that numpy's temporaries stay in reused heap memory.
BLOCK_CELLS: Final = 1 << 19


@dataclass
class TimeContext:
    """Per-timestamp facts shared by every meter: local minute, day type, season."""

    lm: I64Array
    daytype: I64Array
    season: F64Array


def to_wh(kw: F64Array, interval_s: int) -> I64Array:
    """Average kW over an interval to whole Wh (meters count energy in Wh steps)."""
    wh: I64Array = np.rint(kw * (interval_s / 3.6)).astype(np.int64)
    return wh


class MeterLoad:
    """The meters' power: true import, export and measured (after theft) import in kW."""

    def __init__(self, ref: Reference, window: Window, salt: dict[int, int]) -> None:
        self._ref = ref
        self._window = window
        self._salt = salt
        self._offsets: dict[int, int] = {}

    def power(self, rows: I64Array, t0: int, n: int) -> tuple[F64Array, F64Array, F64Array]:
        """True import kW, export kW and measured (after theft) import kW for rows x [t0, t0+n).

        Each value is the mean over the interval; long intervals are simulated in
        sub-steps so that, e.g., a daily reading still integrates a day's shape.
        """
        ref, window = self._ref, self._window
        sub = window.sub
        step = window.interval_s / sub
        fine = np.arange(t0 * sub, (t0 + n) * sub, dtype=np.int64)
        t_s = ((fine + 0.5) * step + window.epoch_s).astype(np.float64)
        ctx = self._time_context(t_s)
        # only the stations these meters use (a block of a large fleet touches a few)
        st_used, st_local = np.unique(ref.station[rows], return_inverse=True)
        wx = ref.climate.fields(t_s, st_used)
        s_n = st_used.size

        # activity shape: one flat look-up with per-meter archetype and time shift folded in
        flat = ref.arch_off[rows][:, None] + (ctx.daytype * W + ctx.lm)[None, :]
        load = SHAPES.take(flat)
        load *= ref.scale[rows][:, None]
        load *= ctx.season[None, :]
        fine_ix = fine.astype(np.uint64)
        noise = normalish(hash_pairs(self._salt[S_LOAD], rows.astype(np.uint64), fine_ix))
        noise *= ref.sigma[rows][:, None]
        noise += 1.0
        np.maximum(noise, 0.15, out=noise)
        load *= noise
        load += ref.base[rows][:, None]

        # weather-driven terms, per (class, station) first, then gathered per meter
        temp = wx["temperature_c"]
        sched = ctx.daytype * 1440 + ctx.lm
        hdd = np.clip(15.5 - temp, 0.0, None)
        cdd = np.clip(temp - 22.0, 0.0, None)
        dark = np.clip((0.1 - wx["sin_el"]) / 0.15, 0.0, 1.0)
        g = ref.biz[rows].astype(np.int64) * s_n + st_local
        for coef, weather, kind in (
            (ref.heat, hdd, "heat"),
            (ref.cool, cdd, "cool"),
            (ref.light, dark, "light"),
        ):
            c = coef[rows]
            if not c.any():
                continue
            table = SCHEDULES[kind].reshape(2, -1)[:, sched]  # (2, T)
            per_group = (weather[None, :, :] * table[:, None, :]).reshape(2 * s_n, -1)
            term = per_group.take(g, axis=0)
            term *= c[:, None]
            load += term
        np.clip(load, _MIN_LOAD_KW, ref.cap_kw[rows][:, None], out=load)

        # rooftop PV: clear sky x cloud x passing-cloud flicker (per station) x orientation
        export = np.zeros_like(load)
        pv = np.flatnonzero(ref.kwp[rows] > 0)
        if pv.size:
            st_ix = st_used.astype(np.uint64)
            flicker = 1.0 - 0.5 * wx["cloud"] * uniform(
                hash_pairs(self._salt[S_FLICKER], st_ix, fine_ix)
            )
            irr = wx["ghi_clear"] * (1.0 - 0.75 * wx["cloud"] ** 3) * flicker / 1000.0
            pv_rows = rows[pv]
            jitter = uniform(hash_pairs(self._salt[S_PV], pv_rows.astype(np.uint64), fine_ix))
            gen = irr.take(st_local[pv], axis=0)
            gen *= (0.85 * ref.kwp[pv_rows] * ref.orient[pv_rows])[:, None]
            jitter *= 0.08
            jitter += 0.96
            gen *= jitter
            net = load[pv] - gen
            load[pv] = np.maximum(net, 0.0)
            export[pv] = np.maximum(-net, 0.0)

        if sub > 1:
            load = load.reshape(rows.size, n, sub).mean(axis=2)
            export = export.reshape(rows.size, n, sub).mean(axis=2)
        measured = load
        thefts = np.flatnonzero(ref.theft_start[rows] < t0 + n)
        if thefts.size:
            measured = load.copy()
            for i in thefts.tolist():
                a = max(int(ref.theft_start[rows[i]]) - t0, 0)
                measured[i, a:] *= ref.theft_scale[rows[i]]
        return load, export, measured

    def _utc_offset(self, hour: int) -> int:
        """Local offset in seconds at a UTC hour (cached: DST changes on the hour)."""
        off = self._offsets.get(hour)
        if off is None:
            moment = dt.datetime.fromtimestamp(hour * 3600, dt.UTC).astimezone(_TZ)
            delta = moment.utcoffset()
            off = int(delta.total_seconds()) if delta is not None else 0
            self._offsets[hour] = off
        return off

    def _time_context(self, t_s: F64Array) -> TimeContext:
        sec = np.floor(t_s).astype(np.int64)
        hours, inv = np.unique(sec // 3600, return_inverse=True)
        offs = np.array([self._utc_offset(h) for h in hours.tolist()], dtype=np.int64)[inv]
        local = sec + offs
        lm = (local % DAY_S) // 60
        lday = local // DAY_S
        weekday = (lday + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        daytype = np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0)).astype(np.int64)
        dates = lday.astype("datetime64[D]")
        month_start = dates.astype("datetime64[M]")
        md = (
            ((month_start.astype(np.int64) % 12) + 1) * 100
            + (dates - month_start).astype(np.int64)
            + 1
        )
        daytype[np.isin(md, (101, 1225, 1226))] = 2  # fixed-date bank holidays behave as Sunday
        season = 1.0 + 0.08 * np.cos(2.0 * np.pi * (t_s / DAY_S - 15.0) / 365.2422)
        return TimeContext(lm=lm, daytype=daytype, season=season)
