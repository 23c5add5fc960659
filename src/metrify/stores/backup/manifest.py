"""The backup's manifest: what a backup holds, when and from what it was made, and a
checksum of every file, so a restore can refuse a damaged or foreign backup before it
writes anything.

``manifest.json`` is written last: a folder without one is a backup that did not finish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

#: the layout this code writes and reads; a restore refuses any other
FORMAT = "metrify-backup/1"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class BackupError(ValueError):
    """A backup cannot be made or restored (message fit for a user)."""


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """The file's sha256, reading it in 1 MiB chunks (``progress`` gets each chunk's size)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


@dataclass
class Manifest:
    """Everything :func:`metrify.stores.backup.restore` checks before and after writing.

    ``store`` holds the dump's method, the server and tool versions, the schema revision
    and what the dumped snapshot held (rows per table, the readings' total, the audit
    chain's head), all read in the snapshot the dump was taken from; ``lake`` the Delta
    version and file count of each table; ``files`` maps each file's path in the backup
    to its size and sha256.
    """

    created_at: str
    metrify_version: str
    store: dict[str, Any]
    lake: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: str = FORMAT

    def add(self, root: Path, paths: Iterable[Path]) -> None:
        """Record size and checksum of ``paths`` (files under ``root``)."""
        for path in paths:
            rel = path.relative_to(root).as_posix()
            self.files[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}

    @property
    def total_bytes(self) -> int:
        return sum(int(entry["size"]) for entry in self.files.values())

    def write(self, root: Path) -> Path:
        path = root / MANIFEST
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(vars(self), option=orjson.OPT_INDENT_2))
        tmp.rename(path)  # a manifest is either whole or absent
        return path

    @classmethod
    def read(cls, root: Path) -> Manifest:
        path = root / MANIFEST
        if not root.is_dir():
            raise BackupError(f"{root}: no such folder")
        if not path.is_file():
            raise BackupError(
                f"{root} holds no {MANIFEST}: not a Metrify backup, or one that did not finish"
            )
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise BackupError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise BackupError(f"{path}: format {found!r}, this release reads {FORMAT!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise BackupError(f"{path}: unexpected fields ({exc})") from None

    def verify(self, root: Path, progress: Callable[[int], None] | None = None) -> None:
        """Check that every listed file is there with its size and checksum, and that the
        backup holds no file the manifest does not list; raises :class:`BackupError`
        naming the first problem."""
        present = {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.name != MANIFEST
        }
        extra = sorted(present - self.files.keys())
        if extra:
            raise BackupError(f"{root}: {len(extra)} file(s) not in the manifest, e.g. {extra[0]}")
        for rel, entry in sorted(self.files.items()):
            path = root / rel
            if not path.is_file():
                raise BackupError(f"{root}: {rel} is missing")
            size = path.stat().st_size
            if size != entry["size"]:
                raise BackupError(
                    f"{root}: {rel} has {size} bytes, the manifest says {entry['size']}"
                )
            if sha256_file(path, progress) != entry["sha256"]:
                raise BackupError(f"{root}: {rel} does not match its checksum (damaged)")
