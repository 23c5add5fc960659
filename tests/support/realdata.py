"""The real public data in ../shared/data, and how its London households map onto the
readings contract."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import polars as pl
import pytest

from metrify.contracts.records import READING
from support.paths import REPO

#: the options that map the London households' columns onto the contract
LONDON_MAP = [
    "--map",
    "meter_id=LCLid",
    "--map",
    "ts=tstp",
    "--map",
    "import_kwh=energy(kWh/hh)",
    "--interval",
    "1800",
]


def data_folder() -> Path:
    """Where the real data is expected: ``METRIFY_SHARED_DATA`` or ../shared/data."""
    return Path(os.environ.get("METRIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data() -> Path:
    """The real public data folder; missing data fails in CI and skips elsewhere."""
    root = data_folder()
    if not root.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data folder {root} is missing (CI=true)")
        pytest.skip(f"real data folder {root} not found")
    return root


def dutch_register_deltas(name: str, start: str, end: str) -> list[tuple[int, float]]:
    """Hourly increments of one register of the Dutch home (``dutch-home-registers/``,
    headerless ``epoch_seconds,value``, in the display's units): (epoch of the hour's
    start, increment) for consecutive reads exactly an hour apart with ``start`` <= the
    hour < ``end`` (ISO dates, UTC). Reads that go backwards (the register's glitches and
    its reset) give no increment."""
    import datetime as dt

    lo = int(dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC).timestamp())
    hi = int(dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC).timestamp())
    path = shared_data() / "dutch-home-registers" / name
    reads = [tuple(int(x) for x in line.split(",")) for line in path.read_text().split()]
    out = []
    for (t0, v0), (t1, v1) in itertools.pairwise(reads):
        if t1 - t0 == 3600 and v1 >= v0 and lo <= t0 < hi:
            out.append((t0, float(v1 - v0)))
    return out


def london_readings(meters: list[str] | None = None, first: int | None = None) -> pl.DataFrame:
    """London households' half-hours as readings (``meter_id``, ``ts`` UTC start,
    ``import_kwh``; "Null" and padded values read, unreadable ones dropped, one row per
    key, sorted): the named ``meters``, else the ``first`` files, else all of them.
    One reader, so every test that judges real households reads them the same way."""
    folder = shared_data() / "london-smart-meters-2013"
    if meters is not None:
        files = [folder / f"{m}.csv.gz" for m in meters]
    else:
        files = sorted(folder.glob("*.csv.gz"))[:first]
    frames = [
        pl.read_csv(f, infer_schema=False).select(
            meter_id=pl.col("LCLid"),
            ts=pl.col("tstp")
            .str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", strict=False)
            .dt.cast_time_unit("us"),
            import_kwh=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
        )
        for f in files
    ]
    return pl.concat(frames).drop_nulls().unique(["meter_id", "ts"]).sort("meter_id", "ts")


def as_readings(data: pl.DataFrame, interval_s: int = 1800) -> pl.DataFrame:
    """Rows of :func:`london_readings` in the reading contract's columns (its fields in
    order, the interval set, every other field null): what the quality stage takes."""
    return data.with_columns(
        interval_s=pl.lit(interval_s, pl.Int32),
        **{
            c: pl.lit(None, t)
            for c, t in READING.schema.items()
            if c not in ("meter_id", "ts", "import_kwh", "interval_s")
        },
    ).select(READING.fields)
