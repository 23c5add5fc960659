"""Fleet simulator: a realistic, deterministic smart-metering fleet with labelled faults.

Why it exists: the pipeline, the detectors and the benchmarks need data that looks like a
utility's (households and small businesses, rooftop PV, weather-driven heating, a grid whose
feeders carry what their meters draw) and whose errors are *known*, so that a detector can
be scored against ground truth. Real data has no such labels; this does.

How it stays fast and exact:

* Every random number that belongs to a reading is a counter-based hash of
  ``(seed, stream, meter, interval)`` (:mod:`~metrify.simulation.noise`), not a draw from
  a stateful generator. Any meter at any time can therefore be simulated on its own and
  gives the same value as inside the full fleet. That is what makes the rollover fault
  exact (the register start of a rollover meter is solved from its own simulated
  consumption up to the chosen wrap) and makes the data independent of ``chunk_days``.
* A chunk is a few ``(meters, intervals)`` numpy arrays; daily, weekly and seasonal shapes
  are table look-ups (:mod:`~metrify.simulation.shapes`), weather is a smooth function of
  time evaluated per station (:mod:`~metrify.simulation.climate`).
* Faults are planned up front from their own random stream
  (:mod:`~metrify.simulation.faults`, which also gives the label semantics), so a fleet
  with ``fault_rate=0`` is the clean twin of the same fleet with faults.

This module puts the pieces together: the reference draw, the fault plan, and each chunk's
two passes over the meters (load, then grid and readings).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from metrify.simulation.arrays import F64Array, I64Array
from metrify.simulation.faults import FaultPlan, plan_faults, solve_rollovers
from metrify.simulation.grid import Grid
from metrify.simulation.load import BLOCK_CELLS, MeterLoad
from metrify.simulation.noise import S_WEATHER, salts
from metrify.simulation.readings import MeterReadings
from metrify.simulation.reference import draw_reference
from metrify.simulation.spec import DAY_S, FleetSpec, Window

__all__ = ["Fleet"]


class Fleet:
    """A simulated fleet: reference tables up front, time series streamed in chunks.

    Construction draws the meters, grid, stations and the fault plan (cheap); readings and
    grid measurements are generated lazily by :meth:`chunks`, one ``chunk_days`` block at a
    time, so memory stays flat however long the window.
    """

    spec: FleetSpec
    meters: pl.DataFrame  #: records.METER schema
    nodes: pl.DataFrame  #: records.NODE schema: regions, substations, feeders
    stations: pl.DataFrame  #: records.STATION schema

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        window = Window.of(spec)
        seed = spec.seed % (1 << 64)
        salt = salts(seed)
        ref = draw_reference(spec, np.random.default_rng([seed, 1]), salt[S_WEATHER])
        self.meters, self.nodes, self.stations = ref.meters, ref.nodes, ref.stations
        self._window = window
        self._ref = ref
        self._load = MeterLoad(ref, window, salt)
        self._grid = Grid(ref, window, salt)
        faults = plan_faults(spec, window, ref, np.random.default_rng([seed, 2]))
        plan = FaultPlan(solve_rollovers(faults, window, ref, self._load))
        self._readings = MeterReadings(ref, window, salt, plan)
        self._labels = plan.labels(ref.meter_ids, window)

    @property
    def expected_readings(self) -> int:
        """Readings a fault-free fleet produces: meters x intervals in the window."""
        return self.spec.meters * self.spec.days * DAY_S // self.spec.interval_s

    def labels(self) -> pl.DataFrame:
        """Ground truth of every injected fault (see :mod:`metrify.simulation.faults`)."""
        return self._labels.clone()

    def chunks(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """Yield (readings, grid) for each ``chunk_days`` block, in time order.

        Readings are meter-major within a chunk; duplicated rows follow at the chunk end.
        """
        register = self._ref.reg_start_wh.copy()
        n_day = self._window.n_day
        for d0 in range(0, self.spec.days, self.spec.chunk_days):
            nd = min(self.spec.chunk_days, self.spec.days - d0)
            yield self._chunk(d0 * n_day, nd * n_day, register)

    def readings(self) -> Iterator[pl.DataFrame]:
        """Just the readings of :meth:`chunks`."""
        for readings, _ in self.chunks():
            yield readings

    def weather(self) -> pl.DataFrame:
        """Hourly observations per station over the window, from the same climate as the load."""
        return self._ref.climate.hourly(
            self.stations["station_id"], self._window.epoch_s, self.spec.days
        )

    def _chunk(self, t0: int, n: int, register: I64Array) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Generate one chunk and advance the per-meter register state in place.

        Meters are processed in blocks of about ``BLOCK_CELLS`` values: numpy temporaries
        of a few MB are reused by the allocator, whereas fleet-sized ones are fresh
        page-faulted memory every time, which made a 100k-meter chunk 5x slower per reading.
        Pass 1 sums every feeder's real load (the meters' voltages depend on it); pass 2
        turns each block into readings.
        """
        spec, window = self.spec, self._window
        m = spec.meters
        t_idx = np.arange(t0, t0 + n, dtype=np.int64)
        t_s = (window.epoch_s + t_idx * spec.interval_s).astype(np.float64)
        per_block = max(1, BLOCK_CELLS // (n * window.sub))
        feeder_kw = np.zeros((spec.n_feeders, n))
        feeder_gen_kw = np.zeros((spec.n_feeders, n))
        blocks: list[tuple[I64Array, F64Array, F64Array]] = []
        for r0 in range(0, m, per_block):
            rows = np.arange(r0, min(r0 + per_block, m), dtype=np.int64)
            true_kw, export_kw, measured_kw = self._load.power(rows, t0, n)
            fdr = self._ref.feeder[rows]  # sorted: feeders are contiguous runs of meters
            starts = np.flatnonzero(np.diff(fdr, prepend=-1))
            feeder_kw[fdr[starts]] += np.add.reduceat(true_kw, starts, axis=0)
            feeder_gen_kw[fdr[starts]] += np.add.reduceat(export_kw, starts, axis=0)
            blocks.append((rows, export_kw, measured_kw))
        freq = self._grid.frequency(t_s, t_idx)
        grid, fdr_v = self._grid.measure(t_idx, feeder_kw, feeder_gen_kw, freq)
        main: list[pl.DataFrame] = []
        copies: list[pl.DataFrame] = []
        for rows, export_kw, measured_kw in blocks:
            frame, dups = self._readings.block(
                rows, t_idx, export_kw, measured_kw, register, fdr_v, freq
            )
            main.append(frame)
            if dups is not None:
                copies.append(dups)
        frames = main + copies  # re-sent copies arrive after the chunk's own rows
        readings = frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)
        return readings, grid
