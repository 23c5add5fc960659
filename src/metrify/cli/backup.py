"""``metrify backup --out DIR`` and ``metrify restore DIR``: the store and the lake.

A backup is a folder (:mod:`metrify.stores.backup`): a dump of the store, the lake's
Delta tables and a manifest with every file's checksum. A restore goes only into an
empty target (an empty ``METRIFY_HOME``, or an empty database given by
``METRIFY_DATABASE_OWNER_URL``/``METRIFY_DATABASE_URL``, and an empty lake); anything
else is refused with exit status 2 before a byte is written. Both show a bar per
phase on a terminal, and one line per phase otherwise (a cron job's log).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import Progress as Bar
from rich.progress import TaskID

from metrify.cli.apps import app
from metrify.cli.common import audit_act, console, err, friendly, load_settings, progress_bar
from metrify.stores import backup as backups
from metrify.stores import database

__all__ = ["backup_cmd", "restore_cmd"]

Jobs = Annotated[int, typer.Option(min=1, max=16, help="parallel dump/restore processes")]
AsJson = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


class _CliProgress(backups.Progress):
    """One bar per phase on a terminal; a line per phase (with its duration) otherwise."""

    def __init__(self) -> None:
        self.bar: Bar | None = None
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.name = ""

    def phase(self, name: str, total: int | None, unit: str) -> None:
        self.close()
        self.name, self.started = name, time.monotonic()
        if err.is_terminal:
            self.bar = progress_bar(total, unit="bytes" if unit == "bytes" else "rows")
            self.bar.start()
            self.task = self.bar.add_task(name, total=total)
        else:
            size = "" if total is None else f" ({total:,} {unit})"
            err.print(f"{name}{size}...", highlight=False)

    def advance(self, amount: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, amount)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.name:
            err.print(f"{self.name}: {time.monotonic() - self.started:.1f} s", highlight=False)
            self.name = ""


@app.command("backup")
@friendly
def backup_cmd(
    out: Annotated[Path, typer.Option("--out", help="a new (or empty) folder for the backup")],
    jobs: Jobs = 2,
    as_json: AsJson = False,
) -> None:
    """Back up the store and the lake into a new folder, with a manifest of checksums."""
    settings = load_settings()
    database.prepare(settings)  # a store never used yet: its (empty) schema
    owner = database.owner_url(settings)
    lake = settings.lake if settings.lake_enabled else None
    existed = backups.ensure_out(out)  # refused before anything is written
    progress = _CliProgress()
    started = time.monotonic()
    try:
        manifest = backups.backup(owner, lake, out, progress, jobs=jobs)
    except BaseException:
        progress.close()
        backups.remove_partial(out, keep_folder=existed)
        raise
    progress.close()
    summary: dict[str, Any] = {
        "out": str(out),
        "files": len(manifest.files),
        "bytes": manifest.total_bytes,
        "seconds": round(time.monotonic() - started, 2),
        "rows": manifest.store.get("rows", {}),
        "lake_versions": {k: v["version"] for k, v in manifest.lake["tables"].items()},
    }
    if as_json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
        return
    readings = summary["rows"].get("readings", 0)
    console.print(
        f"backed up {readings:,} readings, {len(summary['rows'])} tables and "
        f"{len(summary['lake_versions'])} lake tables into {out}: {manifest.total_bytes:,} "
        f"bytes in {summary['seconds']} s",
        highlight=False,
        soft_wrap=True,
    )


@app.command("restore")
@friendly
def restore_cmd(
    source: Annotated[Path, typer.Argument(help="a folder written by metrify backup")],
    jobs: Jobs = 2,
    as_json: AsJson = False,
) -> None:
    """Restore a backup into an empty METRIFY_HOME or an empty database and lake."""
    settings = load_settings()
    backups.Manifest.read(source)  # not a backup: say so before starting any server
    owner = database.owner_url(settings)  # starts the embedded server; migrates nothing
    lake = settings.lake if settings.lake_enabled else None
    progress = _CliProgress()
    started = time.monotonic()
    try:
        restored = backups.restore(source, owner, lake, database.MIGRATIONS, progress, jobs=jobs)
    finally:
        progress.close()
    # the app's login role (embedded server), and the schema up to this release's head
    with database.connect(settings) as conn:
        audit_act(
            conn,
            "backup.restore",
            str(source),
            {"created_at": restored.manifest.created_at, "from": restored.manifest.metrify_version},
        )
    summary = {**restored.as_dict(), "seconds": round(time.monotonic() - started, 2)}
    if as_json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
        return
    readings = summary["rows"].get("readings", 0)
    console.print(
        f"restored {readings:,} readings ({len(summary['rows'])} tables, "
        f"{len(summary['lake_versions'])} lake tables) from the backup of "
        f"{restored.manifest.created_at} in {summary['seconds']} s; counts, totals, audit "
        "head and lake versions match the manifest",
        highlight=False,
        soft_wrap=True,
    )
