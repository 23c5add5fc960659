"""Faults: which meters get which fault where, what each does to the readings, and the labels.

Faults are planned up front from their own random stream, so a fleet with
``fault_rate=0`` is the clean twin of the same fleet with faults: every row a label does
not cover is identical in both, except ``register_kwh`` of a rollover meter (its start
is moved) and of a theft meter after the theft starts. Labels are exact.

Label semantics (``Fleet.labels()``): ``start``/``end`` are the true interval-start times of
the affected rows, ``end`` exclusive. ``gap``: rows removed. ``spike``: ``import_kwh``
multiplied by ``factor`` (applied to at least the meter's typical interval energy so it is
always visible). ``flat_line``: ``import_kwh`` (and ``export_kwh``, ``active_power_kw``)
stuck at ``value``; the register keeps counting real use. ``negative``: ``import_kwh``
negated. ``clock_shift``: those rows carry ``ts + offset_s``. ``duplicate``: those rows are
sent twice, the copies appended to the end of their chunk. ``rollover``: the interval at
whose end the cumulative register wraps at ``10**digits`` kWh. ``theft``: from ``start`` to
the end of the window the meter records ``scale`` of the real import (register included),
while the feeder still carries the real load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from metrify.contracts.records import TS
from metrify.simulation.arrays import BoolArray, F64Array, I64Array
from metrify.simulation.load import BLOCK_CELLS, MeterLoad, to_wh
from metrify.simulation.reference import Reference
from metrify.simulation.spec import FleetSpec, Window

__all__ = [
    "CLOCK_OFFSETS_S",
    "FAULT_KINDS",
    "LABEL_SCHEMA",
    "Fault",
    "FaultPlan",
    "plan_faults",
    "solve_rollovers",
]

FAULT_KINDS: Final = (
    "gap",
    "spike",
    "flat_line",
    "negative",
    "clock_shift",
    "duplicate",
    "rollover",
    "theft",
)
LABEL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "meter_id": pl.String(),
    "kind": pl.String(),
    "start": TS,
    "end": TS,
    "detail": pl.String(),
}
#: clock shifts: a DST-like hour either way, and two offsets that break interval alignment.
CLOCK_OFFSETS_S: Final = (3600, -3600, 420, 37)


@dataclass(frozen=True)
class Fault:
    """One planned fault in global interval indices [start, stop)."""

    meter: int
    kind: str
    start: int
    stop: int
    value: float = 0.0


def plan_faults(
    spec: FleetSpec, window: Window, ref: Reference, rng: np.random.Generator
) -> list[Fault]:
    """Choose faulty meters and place their faults; every draw is made for every meter.

    Drawing for all meters regardless of ``fault_rate`` keeps the plan stable: a higher
    rate only adds meters. Faults of one meter sit in separate segments of the window
    with at least one clean row between them, so each label stays exact. Theft meters
    are marked in ``ref`` (their measured import is scaled from the theft's start on).
    """
    m, n = spec.meters, window.n
    per_hour = 3600.0 / spec.interval_s
    u_sel = rng.random(m)
    two = rng.random(m) < 0.3
    order = np.argsort(rng.random((m, len(FAULT_KINDS))), axis=1)
    u = rng.random((m, 2, 4))
    clock_choice = rng.integers(0, len(CLOCK_OFFSETS_S), (m, 2))
    faults: list[Fault] = []
    for meter in np.flatnonzero(u_sel < spec.fault_rate).tolist():
        kinds = [FAULT_KINDS[k] for k in order[meter, : 2 if two[meter] else 1]]
        kinds.sort(key=lambda k: k == "theft")  # theft runs to the end: last segment
        k_n = min(len(kinds), n)
        seg = n // k_n if k_n else 0
        for i, kind in enumerate(kinds[:k_n]):
            lo, hi = i * seg, (n if i == k_n - 1 else (i + 1) * seg)
            if hi - lo >= 3:
                lo, hi = lo + 1, hi - 1
            pos, dur_u, p1, p2 = u[meter, i]
            fault = _place(
                window,
                ref,
                meter,
                kind,
                lo,
                hi,
                pos,
                dur_u,
                p1,
                p2,
                per_hour,
                int(clock_choice[meter, i]),
            )
            if fault is not None:
                faults.append(fault)
    for f in faults:
        if f.kind == "theft":
            ref.theft_start[f.meter] = f.start
            ref.theft_scale[f.meter] = f.value
    return faults


def _place(
    window: Window,
    ref: Reference,
    meter: int,
    kind: str,
    lo: int,
    hi: int,
    pos: float,
    dur_u: float,
    p1: float,
    p2: float,
    per_hour: float,
    clock_i: int,
) -> Fault | None:
    """Put one fault of ``kind`` inside [lo, hi) with a kind-specific length and size."""
    room = hi - lo
    if room < 1:
        return None
    if kind == "rollover":
        # Wrap in the interval that ends at a UTC midnight: it is night in Great Britain,
        # so there is always real import there (no PV), and the row before exists.
        nd = window.n_day
        days = [d for d in range(lo // nd, hi // nd + 2) if max(lo, 1) <= d * nd - 1 < hi]
        if days:
            k = days[min(int(pos * len(days)), len(days) - 1)] * window.n_day - 1
        else:
            k = max(lo + int(pos * room), 1)
            if k >= hi:
                return None
        return Fault(meter, kind, k, k + 1, float(ref.digits[meter]))
    hours = {
        "gap": 0.5 + 11.5 * dur_u,
        "flat_line": 3.0 + 9.0 * dur_u,
        "clock_shift": 2.0 + 22.0 * dur_u,
    }
    if kind in hours:
        dur = max(2 if kind == "flat_line" else 1, round(hours[kind] * per_hour))
    elif kind == "negative":
        dur = 1 + int(dur_u * 4)
    elif kind == "duplicate":
        dur = 1 + int(dur_u * 8)
    else:  # spike, theft (theft's stop is the window end)
        dur = 1
    dur = min(dur, room)
    start = lo + min(int(pos * (room - dur + 1)), room - dur)
    stop = window.n if kind == "theft" else start + dur
    value = 0.0
    if kind == "spike":
        value = round(10.0 + 40.0 * p1, 1)
    elif kind == "flat_line":
        value = 0.0 if p1 < 0.3 else round(float(ref.typical[meter]) * (0.6 + 0.8 * p2), 3)
    elif kind == "clock_shift":
        value = float(CLOCK_OFFSETS_S[clock_i])
        if abs(value) != 3600 and value % window.interval_s == 0:
            value = 37.0
    elif kind == "theft":
        value = round(0.2 + 0.2 * p1, 2)
    return Fault(meter, kind, start, stop, value)


def solve_rollovers(
    faults: list[Fault], window: Window, ref: Reference, load: MeterLoad
) -> list[Fault]:
    """Set each rollover meter's register start so that it wraps exactly as labelled.

    The meter is simulated alone (the hash-based noise makes that identical to the full
    fleet) up to the wrap interval k; the start is ``wrap - cumulative import through
    k``, so the register reads ``wrap - import[k]`` before k and 0 at the end of k. Sets
    ``ref.reg_start_wh`` of those meters and returns the faults kept (a rollover with no
    import in its wrap interval is dropped).
    """
    rolls = {f.meter: f for f in faults if f.kind == "rollover"}
    if not rolls:
        return faults
    all_rows = np.array(sorted(rolls), dtype=np.int64)
    all_ks = np.array([rolls[int(r)].start for r in all_rows], dtype=np.int64)
    through = np.zeros(all_rows.size, dtype=np.int64)
    at_k = np.zeros(all_rows.size, dtype=np.int64)
    group = 256  # meters per pass; each pass runs only as far as its latest wrap
    for g0 in range(0, all_rows.size, group):
        rows, ks = all_rows[g0 : g0 + group], all_ks[g0 : g0 + group]
        cum = np.zeros(rows.size, dtype=np.int64)
        span = max(1, BLOCK_CELLS // (rows.size * window.sub))
        for t0 in range(0, int(ks.max()) + 1, span):
            n = min(span, window.n - t0)
            _, _, measured = load.power(rows, t0, n)
            wh = to_wh(measured, window.interval_s)
            for i in np.flatnonzero((ks >= t0) & (ks < t0 + n)).tolist():
                j = int(ks[i]) - t0
                through[g0 + i] = cum[i] + int(wh[i, : j + 1].sum())
                at_k[g0 + i] = int(wh[i, j])
            cum += wh.sum(axis=1)
    rows = all_rows
    dropped: set[int] = set()
    for i, r in enumerate(rows.tolist()):
        if at_k[i] <= 0:  # only possible in tiny windows without a night interval
            dropped.add(r)
            continue
        ref.reg_start_wh[r] = ref.wrap_wh[r] - through[i]
    return [f for f in faults if not (f.kind == "rollover" and f.meter in dropped)]


class FaultPlan:
    """The planned faults, indexed so that a block of meters and intervals finds its own."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = faults
        self._start = np.array([f.start for f in faults], dtype=np.int64)
        self._stop = np.array([f.stop for f in faults], dtype=np.int64)
        self._meter = np.array([f.meter for f in faults], dtype=np.int64)

    def labels(self, meter_ids: pl.Series, window: Window) -> pl.DataFrame:
        """The ground truth of every fault, sorted by meter, start and kind."""
        epoch_us = window.epoch_s * 1_000_000
        step_us = window.interval_s * 1_000_000
        labels = pl.DataFrame(
            {
                "meter_id": [meter_ids[f.meter] for f in self.faults],
                "kind": [f.kind for f in self.faults],
                "start": epoch_us + self._start * step_us,
                "end": epoch_us + self._stop * step_us,
                "detail": [_detail(f) for f in self.faults],
            },
            schema={**LABEL_SCHEMA, "start": pl.Int64(), "end": pl.Int64()},
        )
        return labels.with_columns(pl.col("start", "end").cast(TS)).sort(
            "meter_id", "start", "kind"
        )

    def apply(
        self,
        ref: Reference,
        window: Window,
        r0: int,
        t0: int,
        import_kwh: F64Array,
        active: F64Array,
        export_kwh: F64Array,
        ts: I64Array,
    ) -> tuple[BoolArray | None, list[I64Array]]:
        """Apply the faults hitting meters ``r0..`` x intervals ``t0..`` of a block, in place.

        The arrays are the block's (meters, intervals) values. Returns the rows to keep
        (None: all of them) and the flat indices of the rows to send twice.
        """
        mb, n = import_kwh.shape
        keep: BoolArray | None = None
        dups: list[I64Array] = []
        hit = np.flatnonzero(
            (self._start < t0 + n)
            & (self._stop > t0)
            & (self._meter >= r0)
            & (self._meter < r0 + mb)
        )
        for fi in hit.tolist():
            f = self.faults[fi]
            r, a, b = f.meter - r0, max(f.start, t0) - t0, min(f.stop, t0 + n) - t0
            typical = ref.typical[f.meter]
            if f.kind == "gap":
                if keep is None:
                    keep = np.ones((mb, n), dtype=np.bool_)
                keep[r, a:b] = False
            elif f.kind == "spike":
                import_kwh[r, a:b] = np.round(f.value * np.maximum(import_kwh[r, a:b], typical), 3)
            elif f.kind == "flat_line":
                import_kwh[r, a:b] = f.value
                active[r, a:b] = f.value * 3600.0 / window.interval_s
                if ref.kwp[f.meter] > 0:
                    export_kwh[r, a:b] = 0.0
            elif f.kind == "negative":
                import_kwh[r, a:b] = -np.maximum(import_kwh[r, a:b], typical)
            elif f.kind == "clock_shift":
                ts[r, a:b] += int(f.value) * 1_000_000
            elif f.kind == "duplicate":
                dups.append(r * n + np.arange(a, b, dtype=np.int64))
        return keep, dups


def _detail(f: Fault) -> str:
    """The kind-specific part of a label (its size, factor, offset...)."""
    if f.kind in ("gap", "negative", "duplicate"):
        return f"rows={f.stop - f.start}"
    if f.kind == "spike":
        return f"factor={f.value:g}"
    if f.kind == "flat_line":
        return f"value={f.value:g}"
    if f.kind == "clock_shift":
        return f"offset_s={int(f.value):+d}"
    if f.kind == "rollover":
        return f"digits={int(f.value)}"
    return f"scale={f.value:g}"
