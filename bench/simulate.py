"""How fast the fleet simulator generates readings (it must never limit a benchmark).

Times ``Fleet.chunks()`` (readings and grid, faults included) for a few fleet sizes,
several runs each, and prints the median readings per second. Writes nothing.

    .venv/bin/python bench/simulate.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from metrify.simulation import Fleet, FleetSpec

#: (meters, days, interval_s, chunk_days)
SIZES: list[tuple[int, int, int, int]] = [
    (500, 7, 900, 1),
    (2000, 7, 900, 1),
    (2000, 7, 900, 7),
    (10000, 2, 900, 1),
    (500, 2, 60, 1),
]
TARGET = 1_000_000


def measure(spec: FleetSpec, runs: int) -> tuple[int, float]:
    """Readings per chunk pass and the median readings/s over ``runs`` passes."""
    rates: list[float] = []
    count = 0
    for _ in range(runs):
        fleet = Fleet(spec)
        started = time.perf_counter()
        count = sum(readings.height for readings, _ in fleet.chunks())
        rates.append(count / (time.perf_counter() - started))
    return count, statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per size (median is reported)")
    args = parser.parse_args()
    header = ("meters", "days", "interval", "chunk", "readings", "readings/s")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (7, 4, 8, 5, 11, 12), strict=True)))
    worst = float("inf")
    for meters, days, interval_s, chunk_days in SIZES:
        spec = FleetSpec(
            meters=meters, days=days, interval_s=interval_s, seed=1, chunk_days=chunk_days
        )
        count, rate = measure(spec, args.runs)
        worst = min(worst, rate)
        print(f"{meters:>7} {days:>4} {interval_s:>7}s {chunk_days:>5} {count:>11,} {rate:>12,.0f}")
    verdict = "ok" if worst >= TARGET else "BELOW TARGET"
    print(f"slowest median: {worst:,.0f} readings/s (target {TARGET:,}): {verdict}")


if __name__ == "__main__":
    main()
