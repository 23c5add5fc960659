"""A fleet as files: reference tables, labels and weather whole, time series in parts.

What ``metrify simulate --out`` and the benchmarks write, and what ``metrify ingest``
then reads back like any utility's files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import polars as pl

from metrify.simulation.fleet import Fleet

__all__ = ["write_fleet"]

_ISO_Z: Final = "%Y-%m-%dT%H:%M:%SZ"


def write_fleet(
    fleet: Fleet,
    out: Path,
    fmt: Literal["parquet", "csv"] = "parquet",
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write the fleet as files, streaming the time series one part per chunk.

    Layout: ``meters``, ``nodes``, ``stations``, ``weather``, ``labels`` as single files and
    ``readings/part-NNNNN`` / ``grid/part-NNNNN`` parts. Old parts of the same format in
    those two folders are removed first, so a smaller rerun never leaves stale data behind.
    CSV times are ISO 8601 with ``Z``. ``progress`` gets the number of readings each chunk
    wrote (an increment). Returns rows written per dataset.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}; expected parquet or csv")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def write(frame: pl.DataFrame, path: Path) -> None:
        if fmt == "parquet":
            frame.write_parquet(path)
        else:
            frame.write_csv(path, datetime_format=_ISO_Z, date_format="%Y-%m-%d")

    counts: dict[str, int] = {}
    for name, frame in (
        ("meters", fleet.meters),
        ("nodes", fleet.nodes),
        ("stations", fleet.stations),
        ("weather", fleet.weather()),
        ("labels", fleet.labels()),
    ):
        write(frame, out / f"{name}.{fmt}")
        counts[name] = frame.height
    for part in ("readings", "grid"):
        folder = out / part
        folder.mkdir(exist_ok=True)
        for old in folder.glob(f"part-*.{fmt}"):
            old.unlink()
        counts[part] = 0
    for i, (readings, grid) in enumerate(fleet.chunks()):
        write(readings, out / "readings" / f"part-{i:05d}.{fmt}")
        write(grid, out / "grid" / f"part-{i:05d}.{fmt}")
        counts["readings"] += readings.height
        counts["grid"] += grid.height
        if progress is not None:
            progress(readings.height)
    return counts
