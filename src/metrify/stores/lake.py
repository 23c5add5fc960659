"""The data lake: every accepted version of a record, as Parquet, partitioned by day.

Layout: ``<lake>/<dataset>/date=YYYY-MM-DD/part-<batch>.parquet`` (Hive partitioning,
zstd). The location is a local folder or any fsspec URL (``s3://bucket/prefix``), so the
same code writes a laptop folder and a bucket. Only rows the database actually inserted
or changed are written, which keeps the lake idempotent: re-sending a file adds nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import fsspec
import polars as pl
import pyarrow.dataset as pads
import pyarrow.fs as pafs


def _filesystem(url: str) -> tuple[Any, str]:
    """A pyarrow filesystem and root path for a lake URL or folder."""
    if "://" not in url or url.startswith("file://"):
        path = url.removeprefix("file://")
        return pafs.LocalFileSystem(), path
    fs, root = fsspec.core.url_to_fs(url)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root


class Lake:
    """Writes contract batches under one lake root."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.root = _filesystem(url)
        self.fsspec, _ = fsspec.core.url_to_fs(url)

    def dataset_path(self, dataset: str) -> str:
        return f"{self.root.rstrip('/')}/{dataset}"

    def write(self, dataset: str, frame: pl.DataFrame) -> int:
        """Append one batch, one file per day it covers; return the number of files.

        Polars writes each day's slice straight to an fsspec file: several times faster
        than pyarrow's dataset writer for the many small partitions a batch spans.
        """
        if not frame.height:
            return 0
        batch = uuid.uuid4().hex
        days = frame.with_columns(pl.col("ts").dt.date().alias("date")).partition_by(
            "date", as_dict=True, include_key=False
        )
        for (day,), part in days.items():
            folder = f"{self.dataset_path(dataset)}/date={day}"
            self.fsspec.makedirs(folder, exist_ok=True)
            with self.fsspec.open(f"{folder}/part-{batch}.parquet", "wb") as handle:
                part.write_parquet(handle, compression="zstd")
        return len(days)

    def read(self, dataset: str) -> pl.DataFrame:
        """Read a whole dataset back (for tests and small exports)."""
        ds = pads.dataset(
            self.dataset_path(dataset), format="parquet", partitioning="hive", filesystem=self.fs
        )
        return pl.from_arrow(ds.to_table())  # type: ignore[return-value]
