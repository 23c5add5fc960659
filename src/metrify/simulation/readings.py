"""Meter readings: energy, the register, power quality, and the planned faults applied.

A block of meters' measured power becomes whole-Wh interval energy, a cumulative register
that wraps at the meter's digits, and voltage, current, power factor, reactive power and
frequency consistent with it and with the meter's feeder. Then the fault plan changes the
rows its labels say it changes, and the rows to send twice are cut out as copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.contracts.columns import filled
from metrify.contracts.records import READING, TS
from metrify.simulation.arrays import F64Array, I64Array
from metrify.simulation.faults import FaultPlan
from metrify.simulation.load import to_wh
from metrify.simulation.noise import S_AUX, hash_pairs, uniforms3
from metrify.simulation.reference import Reference
from metrify.simulation.spec import Window

__all__ = ["MeterReadings"]


class MeterReadings:
    """Readings of blocks of meters, register state carried by the caller."""

    def __init__(
        self, ref: Reference, window: Window, salt: dict[int, int], plan: FaultPlan
    ) -> None:
        self._ref = ref
        self._window = window
        self._salt = salt
        self._plan = plan

    def block(
        self,
        rows: I64Array,
        t_idx: I64Array,
        export_kw: F64Array,
        measured_kw: F64Array,
        register: I64Array,
        fdr_v: F64Array,
        freq: F64Array,
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Readings of a contiguous block of meters, faults applied; also the duplicate rows."""
        ref, window = self._ref, self._window
        r0, mb, n, t0 = int(rows[0]), rows.size, t_idx.size, int(t_idx[0])
        imp_wh = to_wh(measured_kw, window.interval_s)
        cum = np.cumsum(imp_wh, axis=1)
        state = register[r0 : r0 + mb]  # a view: the state advances in place
        wrap = ref.wrap_wh[rows]
        cum += state[:, None]
        state[:] = cum[:, -1] % wrap
        cum %= wrap[:, None]
        register_kwh = cum / 1000.0  # division, unlike * 0.001, gives the nearest double
        import_kwh = imp_wh / 1000.0
        active = import_kwh * (3600.0 / window.interval_s)
        export_kwh = np.full((mb, n), np.nan)
        pv = np.flatnonzero(ref.kwp[rows] > 0)
        export_kwh[pv] = to_wh(export_kw[pv], window.interval_s) / 1000.0

        # power quality: voltage sags with the feeder's and the meter's own load
        u_volt, u_pf, u_freq = uniforms3(
            hash_pairs(self._salt[S_AUX], rows.astype(np.uint64), t_idx.astype(np.uint64))
        )
        volt = fdr_v.take(ref.feeder[rows], axis=0)
        volt *= 231.0
        volt += ref.vpos[rows][:, None]
        volt -= ref.drop[rows][:, None] * active
        volt += 0.6 * export_kw
        u_volt -= 0.5
        u_volt *= 2.8  # uniform noise with a standard deviation of about 0.8 V
        volt += u_volt
        volt = np.round(volt, 1)
        pf = np.clip(ref.pf0[rows][:, None] + 0.02 * (u_pf - 0.5), 0.9, 1.0)
        flow = active + export_kw
        current = np.round(flow * 1000.0 / (volt * pf * ref.phases[rows][:, None]), 2)
        reactive = np.round(active * np.sqrt(1.0 - pf * pf) / pf, 3)
        pf = np.round(pf, 3)
        mfreq = np.round(freq[None, :] + 0.004 * (u_freq - 0.5), 3)
        mfreq[~ref.pq[rows]] = np.nan

        ts = np.broadcast_to(
            (t_idx * window.interval_s + window.epoch_s) * 1_000_000, (mb, n)
        ).copy()
        keep, dups = self._plan.apply(ref, window, r0, t0, import_kwh, active, export_kwh, ts)
        active = np.round(active, 3)

        columns: dict[str, npt.NDArray[np.floating[Any]]] = {
            "import_kwh": import_kwh,
            "export_kwh": export_kwh,
            "register_kwh": register_kwh,
            "voltage_v": volt,
            "current_a": current,
            "power_factor": pf,
            "active_power_kw": active,
            "reactive_power_kvar": reactive,
            "frequency_hz": mfreq,
        }
        meter_row = np.repeat(rows, n)
        ts_flat = ts.ravel()

        def frame(take: I64Array | None) -> pl.DataFrame:
            ids, times = (meter_row, ts_flat) if take is None else (meter_row[take], ts_flat[take])
            data: dict[str, pl.Series] = {
                "meter_id": ref.meter_ids.gather(ids),
                "ts": pl.Series("ts", times).cast(TS),
                "interval_s": pl.Series(np.full(ids.size, window.interval_s, np.int32)),
            }
            for name, arr in columns.items():
                values = arr.ravel() if take is None else arr.ravel()[take]
                nullable = name in ("export_kwh", "frequency_hz")
                data[name] = pl.Series(name, values, nan_to_null=nullable)
            for name, dtype in READING.schema.items():  # fields the fleet does not simulate
                if name not in data:
                    data[name] = filled(None, dtype, ids.size)
            return pl.DataFrame(data, schema=READING.schema)

        kept = None if keep is None else np.flatnonzero(keep.ravel())
        return frame(kept), (frame(np.concatenate(dups)) if dups else None)
