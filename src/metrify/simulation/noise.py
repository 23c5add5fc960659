"""Counter-based random numbers: every value is a hash of (seed, stream, row, column).

Not a stateful generator on purpose: the noise of one (meter, interval) never depends on
which other meters or intervals are generated alongside it, so any meter at any time can
be simulated on its own and gives the same value as inside the full fleet. That is what
makes the rollover fault exact and the data independent of ``chunk_days``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from metrify.simulation.arrays import F64Array, U64Array

__all__ = [
    "S_AUX",
    "S_FLICKER",
    "S_FREQ",
    "S_GRID",
    "S_LOAD",
    "S_PV",
    "S_WEATHER",
    "hash_pairs",
    "normalish",
    "salts",
    "uniform",
    "uniforms3",
]

# Hash streams: one per kind of randomness, so that adding one never changes another.
S_LOAD, S_AUX, S_PV, S_FLICKER, S_GRID, S_FREQ, S_WEATHER = range(1, 8)

_M64: Final = (1 << 64) - 1
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_MASK21 = np.uint64((1 << 21) - 1)


def _splitmix(x: int) -> int:
    """The splitmix64 finaliser on a Python int (used to derive per-stream salts)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def hash_pairs(salt: int, a: U64Array, b: U64Array) -> U64Array:
    """64 random bits for every pair (a[i], b[j]): a stateless, vectorised splitmix64.

    Counter-based on purpose: the value for one (meter, interval) never depends on which
    other meters or intervals are generated alongside it.
    """
    z: U64Array = np.left_shift(a, np.uint64(32))[:, None] | b[None, :]
    z ^= np.uint64(salt)
    z *= _C1
    tmp = np.right_shift(z, np.uint64(30))
    z ^= tmp
    z *= _C2
    np.right_shift(z, np.uint64(27), out=tmp)
    z ^= tmp
    z *= _C3
    np.right_shift(z, np.uint64(31), out=tmp)
    z ^= tmp
    return z


def uniform(bits: U64Array) -> F64Array:
    """A uniform in (0, 1) from 53 of the bits."""
    u: F64Array = np.right_shift(bits, np.uint64(11)).astype(np.float64)
    u += 0.5
    u *= 2.0**-53
    return u


def uniforms3(bits: U64Array) -> tuple[F64Array, F64Array, F64Array]:
    """Three independent uniforms in (0, 1) from the three 21-bit slices of the bits."""
    out = []
    for shift in (43, 22, 0):
        piece = np.right_shift(bits, np.uint64(shift)) & _MASK21
        u: F64Array = piece.astype(np.float64)
        u += 0.5
        u *= 2.0**-21
        out.append(u)
    return out[0], out[1], out[2]


def normalish(bits: U64Array) -> F64Array:
    """Approximately standard normal (Irwin-Hall of three 21-bit uniforms), bounded +-3.

    Cheaper than Box-Muller (no log or trig) and good enough for measurement noise.
    """
    s = np.right_shift(bits, np.uint64(43))
    s += np.right_shift(bits, np.uint64(22)) & _MASK21
    s += bits & _MASK21
    z: F64Array = s.astype(np.float64)
    z *= 2.0 / 2**21
    z -= 3.0 - 3.0 / 2**21
    return z


def salts(seed: int) -> dict[int, int]:
    """The salt of every hash stream for a seed (already reduced to 64 bits)."""
    return {s: _splitmix(_splitmix(seed) ^ s) for s in range(1, 8)}
