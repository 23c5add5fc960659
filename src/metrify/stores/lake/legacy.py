"""The plain-Parquet layout of earlier releases, read once to convert it.

Before the lake became Delta tables it was ``<lake>/<kind>/date=YYYY-MM-DD/part-<hex>.parquet``
(Hive partitioning, one file per batch per day, no log). Such a folder is not a table, so
:class:`~metrify.stores.lake.Lake` refuses it with a pointer to ``metrify lake convert``,
which moves each day into the Delta table (an upsert, so a conversion cut short is
simply run again) and only then deletes that day's old files.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import fsspec
import polars as pl

#: the old writer's file names (a Delta writer's are ``part-00000-<uuid>-c000...``)
_OLD_FILE = re.compile(r"^part-[0-9a-f]{32}\.parquet$")


def _fs(url: str) -> tuple[Any, str]:
    """An fsspec filesystem and root for the lake URL; credentials in an ``s3://`` URL
    become the filesystem's key and secret."""
    parts = urlsplit(url)
    options: dict[str, str] = {}
    if "://" in url and parts.username and parts.scheme in ("s3", "s3a"):
        options = {"key": unquote(parts.username), "secret": unquote(parts.password or "")}
        url = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
    fs, root = fsspec.core.url_to_fs(url, **options)
    return fs, str(root).rstrip("/")


def files(url: str, kind: str) -> dict[dt.date, list[str]]:
    """The old layout's files of ``kind`` by day (empty: none)."""
    try:
        fs, root = _fs(url)
        folder = f"{root}/{kind}"
        if not fs.exists(folder):
            return {}
        paths = fs.glob(f"{folder}/date=*/part-*.parquet")
    except ImportError:  # no fsspec driver (s3fs): the old writer needed it, so no old files
        return {}
    except OSError:
        return {}
    out: dict[dt.date, list[str]] = {}
    for path in sorted(str(p) for p in paths):
        day_name, name = path.rsplit("/", 2)[-2:]
        if _OLD_FILE.match(name) and day_name.startswith("date="):
            out.setdefault(dt.date.fromisoformat(day_name.removeprefix("date=")), []).append(path)
    return out


def holds_files(url: str, kind: str) -> bool:
    """Whether ``kind``'s folder still has files of the old layout."""
    return bool(files(url, kind))


def read(url: str, paths: list[str]) -> pl.DataFrame | None:
    """The rows of some old files (None: none)."""
    fs, _ = _fs(url)
    parts = []
    for path in paths:
        with fs.open(path, "rb") as handle:
            parts.append(pl.read_parquet(handle))
    return pl.concat(parts, how="diagonal_relaxed") if parts else None


def remove(url: str, paths: list[str]) -> None:
    """Delete old files (once their rows are committed to the table)."""
    fs, _ = _fs(url)
    for path in paths:
        fs.rm(path)
