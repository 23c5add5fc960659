"""The lake's part of a backup: each Delta table's files, copied so that the copy is a
consistent table even while writers commit.

A Delta table is its ``_delta_log`` (one JSON commit per version, checkpoints) plus the
Parquet files those commits add. A writer first writes its data files, then commits a
log entry naming them; vacuum deletes only files no version within the retention still
needs. So the copy pins each table's latest version first, copies the data files found
then, and copies the log up to the pinned version last: every file a copied commit
names was there before that commit, hence copied. Files a later commit adds may come
along unnamed; a reader ignores them and ``metrify lake vacuum`` removes them. A
restore writes in the same order (data, then log), so a table appears only whole.

Every version up to the pinned one is kept, so time travel (``metrify lake history``)
works on the restored lake as on the original.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from metrify.stores.backup.manifest import BackupError
from metrify.stores.lake.location import _filesystem

LOG = "_delta_log"
_VERSIONED = re.compile(r"^(\d{20})\.")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class TableFiles:
    """One table's pinned version and the files to copy, data before log."""

    kind: str
    version: int
    data: list[str]  # paths relative to the table root
    log: list[str]


def _version_of(name: str) -> int | None:
    match = _VERSIONED.match(name)
    return None if match is None else int(match.group(1))


def _tables(fs: pafs.FileSystem, root: str) -> list[str]:
    info = fs.get_file_info(root)
    if info.type != pafs.FileType.Directory:
        return []
    found = fs.get_file_info(pafs.FileSelector(root, recursive=False))
    kinds = []
    for entry in found:
        if entry.type != pafs.FileType.Directory:
            continue
        log = fs.get_file_info(f"{entry.path}/{LOG}")
        if log.type == pafs.FileType.Directory:
            kinds.append(entry.base_name)
    return sorted(kinds)


def plan(url: str) -> list[TableFiles]:
    """What to copy of each Delta table under the lake ``url``, versions pinned now."""
    fs, root = _filesystem(url)
    plans = []
    for kind in _tables(fs, root):
        table = f"{root.rstrip('/')}/{kind}"
        log_entries = fs.get_file_info(pafs.FileSelector(f"{table}/{LOG}", recursive=False))
        commits = [
            v
            for e in log_entries
            if e.type == pafs.FileType.File
            and e.base_name.endswith(".json")
            and (v := _version_of(e.base_name)) is not None
        ]
        if not commits:
            continue
        pinned = max(commits)  # listed before the data files: see the module's docstring
        log = sorted(
            f"{LOG}/{e.base_name}"
            for e in log_entries
            if e.type == pafs.FileType.File
            and (v := _version_of(e.base_name)) is not None
            and v <= pinned
            and not e.base_name.endswith(".tmp")
        )
        data = sorted(
            e.path[len(table) + 1 :]
            for e in fs.get_file_info(pafs.FileSelector(table, recursive=True))
            if e.type == pafs.FileType.File and not e.path[len(table) + 1 :].startswith(LOG)
        )
        plans.append(TableFiles(kind, pinned, data, log))
    return plans


def _copy(
    src_fs: pafs.FileSystem,
    src: str,
    dst_fs: pafs.FileSystem,
    dst: str,
    progress: Callable[[int], None] | None,
) -> tuple[int, str]:
    """Copy one file, returning its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    parent = dst.rsplit("/", 1)[0]
    dst_fs.create_dir(parent, recursive=True)
    with src_fs.open_input_stream(src) as reader, dst_fs.open_output_stream(dst) as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return size, digest.hexdigest()


def copy_out(
    url: str, out: Path, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Copy every table of the lake at ``url`` into ``out``; returns the manifest's
    ``lake`` entry and the copied files' sizes and checksums (keyed under ``out.name``)."""
    fs, root = _filesystem(url)
    local = pafs.LocalFileSystem()
    tables: dict[str, Any] = {}
    files: dict[str, dict[str, Any]] = {}
    for table in plan(url):
        base = f"{root.rstrip('/')}/{table.kind}"
        for rel in [*table.data, *table.log]:
            dst = out / table.kind / rel
            try:
                size, sha = _copy(fs, f"{base}/{rel}", local, str(dst), progress)
            except FileNotFoundError:
                if rel.startswith(LOG):
                    raise BackupError(
                        f"lake table {table.kind}: {rel} vanished during the copy"
                    ) from None
                continue  # a data file vacuumed meanwhile: no pinned version names it
            files[f"{out.name}/{table.kind}/{rel}"] = {"size": size, "sha256": sha}
        tables[table.kind] = {"version": table.version, "files": len(table.data)}
    return {"path": out.name, "tables": tables}, files


def ensure_empty(url: str) -> None:
    """Refuse a lake location that holds any file."""
    fs, root = _filesystem(url)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        return
    if info.type != pafs.FileType.Directory:
        raise BackupError(f"lake {url} is a file, not a folder")
    for entry in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if entry.type == pafs.FileType.File:
            raise BackupError(
                f"lake {url} is not empty ({entry.path}): restore only into an empty lake"
            )


def copy_in(
    backup: Path, entry: dict[str, Any], url: str, progress: Callable[[int], None] | None = None
) -> None:
    """Write the backed-up tables into the lake at ``url``: each table's data files,
    then its log in version order (``_last_checkpoint`` is not copied: a reader finds
    the checkpoints by listing the log)."""
    fs, root = _filesystem(url)
    local = pafs.LocalFileSystem()
    src_root = backup / str(entry["path"])
    for kind in sorted(entry["tables"]):
        table = src_root / kind
        files = sorted(p for p in table.rglob("*") if p.is_file())
        data = [p for p in files if p.relative_to(table).parts[0] != LOG]
        # a version's commit before its checkpoint: a checkpoint never runs ahead
        log = sorted(
            (p for p in files if p.relative_to(table).parts[0] == LOG),
            key=lambda p: (_version_of(p.name) or 0, not p.name.endswith(".json")),
        )
        for path in [*data, *log]:
            rel = path.relative_to(table).as_posix()
            _copy(local, str(path), fs, f"{root.rstrip('/')}/{kind}/{rel}", progress)


def versions(url: str) -> dict[str, int]:
    """The latest committed version of each table in the lake at ``url``."""
    return {t.kind: t.version for t in plan(url)}
