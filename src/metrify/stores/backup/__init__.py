"""Backup and restore of a whole Metrify installation: the operational store and the lake.

:func:`backup` writes a folder: ``store/`` (a ``pg_dump`` of the database, see
:mod:`.store` for why a dump), ``lake/`` (each Delta table's files, see :mod:`.lake`)
and ``manifest.json`` (what, when, versions, checksums; :mod:`.manifest`), written last.
The store is dumped first and the lake copied second: the lake is then at or ahead of
the store, never behind it, and the days the dumped lake outbox still lists are brought
into the lake again after a restore, as after a crash.

:func:`restore` refuses a target that holds anything, checks every checksum and the
versions before it writes a byte, loads the store, writes the lake, and then compares
what it restored with what the manifest says was backed up: rows per table, the
readings' total, the audit chain's head and each lake table's version.

The warehouse (DuckDB) is not in a backup: dbt rebuilds it from the lake and the store.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import metrify
from metrify.stores.backup import lake as lake_copy
from metrify.stores.backup import store
from metrify.stores.backup.manifest import FORMAT, MANIFEST, BackupError, Manifest

__all__ = [
    "FORMAT",
    "MANIFEST",
    "BackupError",
    "Manifest",
    "Progress",
    "Restored",
    "backup",
    "ensure_out",
    "remove_partial",
    "restore",
]


class Progress:
    """Where a long backup or restore is: a phase, and work done of a total (``None``:
    unknown). The CLI draws it as a bar; the default does nothing."""

    def phase(self, name: str, total: int | None, unit: str) -> None:
        """A new phase begins (``unit``: ``tables`` or ``bytes``)."""

    def advance(self, amount: int) -> None:
        """``amount`` more units of the current phase are done."""


def ensure_out(out: Path) -> bool:
    """Refuse an output that exists and is not an empty folder, else create it; returns
    whether the folder existed (empty) before."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not an empty folder: give a new one")
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    return existed


def backup(
    owner_url: str,
    lake_url: str | None,
    out: Path,
    progress: Progress | None = None,
    *,
    jobs: int = 2,
) -> Manifest:
    """Back up the store at ``owner_url`` and the lake at ``lake_url`` (``None``: no
    lake) into the new folder ``out``; returns the manifest written last."""
    progress = progress or Progress()
    ensure_out(out)
    started = dt.datetime.now(dt.UTC)
    with_tables = _counting(progress)
    progress.phase("dumping the store", None, "tables")
    store_entry = store.dump(owner_url, out / "store", jobs=jobs, on_table=with_tables)
    lake_entry: dict[str, Any] = {"path": None, "tables": {}}
    files: dict[str, dict[str, Any]] = {}
    if lake_url is not None:
        progress.phase("copying the lake", None, "bytes")
        lake_entry, files = lake_copy.copy_out(lake_url, out / "lake", progress.advance)
        lake_entry["url"] = _without_secrets(lake_url)
    manifest = Manifest(
        created_at=started.isoformat(),
        metrify_version=metrify.__version__,
        store=store_entry,
        lake=lake_entry,
    )
    dumped = sorted(p for p in (out / "store").rglob("*") if p.is_file())
    progress.phase("checksumming the dump", sum(p.stat().st_size for p in dumped), "bytes")
    for path in dumped:
        rel = path.relative_to(out).as_posix()
        manifest.files[rel] = {
            "size": path.stat().st_size,
            "sha256": _sha(path, progress),
        }
    manifest.files.update(files)
    manifest.write(out)
    return manifest


def _sha(path: Path, progress: Progress) -> str:
    from metrify.stores.backup.manifest import sha256_file

    return sha256_file(path, progress.advance)


def _counting(progress: Progress) -> Callable[[str], None]:
    def on_table(_name: str) -> None:
        progress.advance(1)

    return on_table


def _without_secrets(url: str) -> str:
    from metrify.settings.masking import mask_url

    return mask_url(url)


@dataclass(frozen=True)
class Restored:
    """What a restore brought back, checked against the manifest."""

    manifest: Manifest
    store: dict[str, Any]
    lake: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "created_at": self.manifest.created_at,
            "schema_revision": self.manifest.store.get("schema_revision"),
            "rows": self.store.get("rows", {}),
            "readings_import_kwh": self.store.get("readings_import_kwh"),
            "audit_head": self.store.get("audit_head"),
            "lake_versions": self.lake,
        }


def check(source: Path, migrations: Path, progress: Progress | None = None) -> Manifest:
    """Read and verify a backup without touching any target: format, every file's
    checksum, a schema revision this release knows, tools that read the dump."""
    from alembic.script import ScriptDirectory  # here: alembic is slow to import
    from alembic.util import CommandError

    progress = progress or Progress()
    manifest = Manifest.read(source)
    revision = manifest.store.get("schema_revision")
    scripts = ScriptDirectory(str(migrations))
    try:
        known = revision is not None and scripts.get_revision(str(revision)) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"the backup's schema is at revision {revision!r}, which this release of "
            f"Metrify ({metrify.__version__}) does not know: restore it with the release "
            f"that made it ({manifest.metrify_version}) or a newer one"
        )
    store.check_tools(manifest.store)
    progress.phase("verifying checksums", manifest.total_bytes, "bytes")
    manifest.verify(source, progress.advance)
    return manifest


def restore(
    source: Path,
    owner_url: str,
    lake_url: str | None,
    migrations: Path,
    progress: Progress | None = None,
    *,
    jobs: int = 2,
) -> Restored:
    """Restore the backup in ``source`` into the empty store at ``owner_url`` and the
    empty lake at ``lake_url``; raises :class:`BackupError` before writing anything when
    a target is not empty or the backup does not verify, and after restoring when what
    came back differs from what the manifest recorded."""
    progress = progress or Progress()
    store.ensure_empty(owner_url)
    manifest_tables = Manifest.read(source).lake.get("tables") or {}
    if manifest_tables and lake_url is None:
        raise BackupError("the backup holds a lake but the lake is disabled here")
    if lake_url is not None:
        lake_copy.ensure_empty(lake_url)
    manifest = check(source, migrations, progress)
    dump_dir = source / str(manifest.store["path"])
    progress.phase("restoring the store", store.table_data_count(dump_dir), "tables")
    store.restore(owner_url, dump_dir, jobs=jobs, on_table=_counting(progress))
    versions: dict[str, int] = {}
    if manifest_tables and lake_url is not None:
        lake_bytes = sum(
            int(e["size"]) for rel, e in manifest.files.items() if rel.startswith("lake/")
        )
        progress.phase("writing the lake", lake_bytes, "bytes")
        lake_copy.copy_in(source, manifest.lake, lake_url, progress.advance)
        versions = lake_copy.versions(lake_url)
    progress.phase("comparing with the manifest", None, "tables")
    now = store.read_facts(owner_url)
    _compare(manifest, now, versions)
    return Restored(manifest, now, versions)


def _compare(manifest: Manifest, now: dict[str, Any], versions: dict[str, int]) -> None:
    """Raise naming the first fact of the restored data that differs from the backup's."""
    for key in ("rows", "readings_import_kwh", "readings_meters", "audit_head"):
        if manifest.store.get(key) != now.get(key):
            raise BackupError(
                f"restored store differs from the backup in {key}: "
                f"{now.get(key)!r}, backed up {manifest.store.get(key)!r}"
            )
    wanted = {k: int(v["version"]) for k, v in (manifest.lake.get("tables") or {}).items()}
    if wanted != versions:
        raise BackupError(f"restored lake versions {versions}, backed up {wanted}")


def remove_partial(out: Path, *, keep_folder: bool) -> None:
    """Remove what a failed backup wrote into ``out`` (a folder that was new or empty
    before it began, and has no manifest: not a backup); ``keep_folder`` keeps the
    folder itself (it existed before)."""
    if not out.is_dir() or (out / MANIFEST).exists():
        return
    if not keep_folder:
        shutil.rmtree(out, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
