"""The grid: one synchronous frequency, and every node's load, generation, voltage and price.

Feeders carry what their meters really draw (before faults and theft, as a real feeder
would) plus losses that grow with loading; substations and regions sum their children.
Each feeder's voltage sag is handed back so the meters' own voltage readings start from it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from metrify.contracts.records import GRID, TS
from metrify.simulation.arrays import F64Array, I64Array
from metrify.simulation.noise import S_FREQ, S_GRID, hash_pairs, normalish
from metrify.simulation.reference import Reference
from metrify.simulation.spec import Window

__all__ = ["Grid"]


class Grid:
    """Measurements of the grid nodes (regions, substations, feeders) of one fleet."""

    def __init__(self, ref: Reference, window: Window, salt: dict[int, int]) -> None:
        self._ref = ref
        self._window = window
        self._salt = salt

    def frequency(self, t_s: F64Array, t_idx: I64Array) -> F64Array:
        """System frequency: one synchronous grid, slow swings plus jitter, ~50 Hz."""
        ref = self._ref
        swing = np.zeros(t_s.shape)
        for p, ph in zip(ref.freq_p.tolist(), ref.freq_ph.tolist(), strict=True):
            swing += np.sin(2.0 * np.pi * t_s / p + ph)
        jitter = normalish(
            hash_pairs(self._salt[S_FREQ], np.zeros(1, dtype=np.uint64), t_idx.astype(np.uint64))
        )[0]
        f: F64Array = np.clip(50.0 + 0.03 * swing + 0.012 * jitter, 49.8, 50.2)
        return f

    def measure(
        self, t_idx: I64Array, feeder_kw: F64Array, feeder_gen_kw: F64Array, freq: F64Array
    ) -> tuple[pl.DataFrame, F64Array]:
        """One row per node per interval: feeders carry their meters' real import plus losses.

        ``feeder_kw`` is the sum of the meters' true (pre-fault, pre-theft) import. Also
        returns each feeder's per-unit voltage at its customers (1.01 when light, about
        0.98 near capacity), which the meters' voltage readings start from.
        """
        ref, window = self._ref, self._window
        n = t_idx.size
        ratio = np.minimum(feeder_kw / ref.fdr_cap_kw[:, None], 1.0)
        loss = 1.0 + ref.loss0[:, None] + ref.loss1[:, None] * ratio
        feeder_load = feeder_kw * loss / 1000.0
        feeder_gen = feeder_gen_kw / 1000.0
        sub_load = np.add.reduceat(feeder_load, ref.sub_starts, axis=0)
        sub_gen = np.add.reduceat(feeder_gen, ref.sub_starts, axis=0)
        reg_load = np.add.reduceat(sub_load, ref.reg_starts, axis=0)
        reg_gen = np.add.reduceat(sub_gen, ref.reg_starts, axis=0)
        load = np.concatenate([reg_load, sub_load, feeder_load])
        gen = np.concatenate([reg_gen, sub_gen, feeder_gen])
        nodes = load.shape[0]
        node_ix = np.arange(nodes, dtype=np.uint64)
        bits = hash_pairs(self._salt[S_GRID], node_ix, t_idx.astype(np.uint64))
        noise = normalish(bits)
        util = np.minimum(load / ref.node_cap[:, None], 1.5)
        volt = ref.node_kv[:, None] * (1.02 - 0.04 * util + 0.002 * noise)
        price = np.full((nodes, n), np.nan)
        rel = reg_load / ref.reg_typical[:, None]
        price[: ref.n_reg] = 25.0 + 45.0 * rel**1.5 + 5.0 * noise[: ref.n_reg]
        ts_us = (t_idx * window.interval_s + window.epoch_s) * 1_000_000
        fdr_util = feeder_load * 1000.0 / ref.fdr_cap_kw[:, None]
        fdr_v: F64Array = 1.01 - 0.03 * np.minimum(fdr_util, 1.5)
        frame = pl.DataFrame(
            {
                "node_id": ref.node_ids.gather(np.repeat(np.arange(nodes), n)),
                "ts": pl.Series("ts", np.tile(ts_us, nodes)).cast(TS),
                "interval_s": pl.Series(np.full(nodes * n, window.interval_s, np.int32)),
                "load_mw": pl.Series(np.round(load, 6).ravel()),
                "generation_mw": pl.Series(np.round(gen, 6).ravel()),
                "frequency_hz": pl.Series(np.round(np.tile(freq, nodes), 3)),
                "voltage_kv": pl.Series(np.round(volt, 3).ravel()),
                "price_per_mwh": pl.Series(np.round(price, 2).ravel(), nan_to_null=True),
            },
            schema=GRID.schema,
        )
        return frame, fdr_v
