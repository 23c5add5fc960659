"""What every benchmark script reports the same way: the machine, and run statistics."""

from __future__ import annotations

import os
import platform
import statistics

import psutil


def machine() -> dict[str, object]:
    """The facts a reader needs to compare figures across machines."""
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def stats(values: list[float]) -> dict[str, float]:
    """Median of several runs, with min and max so the spread is visible."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
