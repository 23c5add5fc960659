"""``metrify ingest``: files into the store through the one pipeline."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

from metrify.cli import options as opts
from metrify.cli.apps import app
from metrify.cli.common import UserError, friendly, load_settings, print_summary
from metrify.cli.progress import LoadProgress, tallied_alerts
from metrify.contracts.records import CONTRACTS, Contract, contract
from metrify.pipeline.session import ingest_files, open_session
from metrify.sources import ReaderError, read_batches
from metrify.sources.mapping import Mapping, MappingError, build_mapping, check_mapped_columns

__all__ = ["KINDS", "ingest_cmd"]

KINDS = ", ".join(CONTRACTS)

#: rows read from each file before the load to see its columns (JSON lines may differ
#: in their keys; a mapped key in none of the first rows is taken as a wrong name).
_PEEK_ROWS = 1_000
#: rows read from each file before a load without --interval, to refuse a file whose
#: interval cannot be detected before anything is stored
_INTERVAL_PEEK_ROWS = 50_000
#: files checked at once before a load (reading and decoding release the GIL)
_CHECK_WORKERS = 4


def _check_mapped(path: Path, mapping: Mapping) -> None:
    """Refuse the whole command, before anything is stored, when ``--map`` names a
    column a file does not have: the option is wrong for every row of the file, so
    loading it would store the field as nulls. Files that cannot be read are left to
    the load, which reports them the usual way."""
    try:
        batches = read_batches(path, _PEEK_ROWS, **mapping.file_options)
        try:
            first = next(batches, None)
        finally:
            if isinstance(batches, Generator):  # let the reader close its file now
                batches.close()
    except (ReaderError, OSError):
        return
    if first is None:
        return
    try:
        check_mapped_columns(mapping, first.data.columns)
    except MappingError as exc:
        raise UserError(f"{path.name}: {exc}") from None


def _check_intervals(path: Path, spec: Contract, mapping: Mapping) -> dict[str, int]:
    """Refuse the command, before anything is stored, when the first rows of a file
    without an interval (no ``--interval``, no interval column) show a meter whose
    interval cannot be detected from its timestamps (see
    :mod:`metrify.sources.intervals`). Meters not yet conclusive in those rows are
    judged during the load.

    Returns the intervals decided for the meters of a file read whole (none given the
    others' interval for want of timestamps: the load decides those with all files')."""
    from metrify.sources.intervals import detect_intervals, needs_detection, refusal

    try:
        batches = read_batches(path, _INTERVAL_PEEK_ROWS, **mapping.file_options)
        try:
            first = next(batches, None)
            complete = first is not None and next(batches, None) is None
        finally:
            if isinstance(batches, Generator):
                batches.close()
    except (ReaderError, OSError):
        return {}
    if first is None or not needs_detection(spec, mapping, first.data.columns):
        return {}
    detector = detect_intervals([first], spec, mapping, complete=complete)
    if detector.refused:
        meter, verdict = next(iter(detector.refused.items()))
        more = len(detector.refused) - 1
        others = f" (and {more} more meter{'s' if more != 1 else ''})" if more else ""
        raise UserError(f"{path.name}: {refusal(meter, verdict)}{others}")
    if not complete:
        return {}
    return {m: s for m, s in detector.decided.items() if m not in detector.assumed}


def _check_files(paths: list[Path], spec: Contract, mapping: Mapping) -> dict[str, int]:
    """The checks of every file before anything is stored (:func:`_check_mapped`,
    :func:`_check_intervals`), files side by side on the machine's cores; the first
    file in the command's order that fails them refuses the command.

    Without ``--interval`` the check reads the first 50,000 rows of each file: one after
    the other, a hundred files took three seconds before the load began. Returns the
    intervals it decided for meters each found whole in one file only: the load takes
    them as decided instead of parsing those meters' first rows again (a meter in
    several files is left to the load, which decides it with the files in order)."""
    workers = min(len(paths), os.cpu_count() or 1, _CHECK_WORKERS)
    with ThreadPoolExecutor(max(workers, 1), thread_name_prefix="check-files") as pool:
        if mapping.columns:  # every file's columns first: a wrong --map is the likelier slip
            for _ in pool.map(lambda path: _check_mapped(path, mapping), paths):
                pass  # (map re-raises the first failure in path order)
        if not mapping.detect_interval:
            return {}
        decided: dict[str, int] = {}
        shared: set[str] = set()
        for found in pool.map(lambda path: _check_intervals(path, spec, mapping), paths):
            shared.update(decided.keys() & found.keys())
            decided.update(found)
    return {m: s for m, s in decided.items() if m not in shared}


@app.command("ingest")
@friendly
def ingest_cmd(
    kind: Annotated[str, typer.Argument(help=f"one of: {KINDS}")],
    paths: opts.Paths,
    maps: opts.Maps = [],  # noqa: B006
    sets: opts.Sets = [],  # noqa: B006
    scales: opts.Scales = [],  # noqa: B006
    interval: opts.Interval = None,
    tz: opts.Tz = None,
    ts_end: opts.TsEnd = False,
    ts_format: opts.TsFormat = None,
    units: opts.Units = [],  # noqa: B006
    no_header: opts.NoHeader = False,
    encoding: opts.Encoding = None,
    skip_lines: opts.SkipLines = 0,
    sheet: opts.Sheet = None,
    wide: opts.Wide = None,
    channels: opts.Channels = None,
    register_digits: opts.RegisterDigits = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the summary as one JSON object")
    ] = False,
) -> None:
    """Load files into the store through the pipeline; bad rows go to quarantine.

    Progress goes to stderr: a bar on a terminal, plain lines otherwise. Alerts raised
    by the load are counted per severity at the end (metrify anomalies list shows them).
    Without --interval, a file with no interval column has each meter's interval
    detected from its timestamps (reported in the summary; a file whose interval
    cannot be told is refused, naming the candidates).
    """
    try:
        spec = contract(kind)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    mapping = build_mapping(
        spec,
        maps=maps,
        sets=sets,
        scales=scales,
        interval_s=interval,
        tz=tz,
        ts_end=ts_end,
        ts_format=ts_format,
        units=units,
        header=not no_header,
        encoding=encoding,
        skip_lines=skip_lines,
        sheet=sheet,
        wide=wide,
        channels=channels,
        register_digits=register_digits,
        detect_interval=True,
    )
    intervals = _check_files(paths, spec, mapping)
    settings = load_settings()
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    with (
        tallied_alerts() as alerts,
        open_session(settings) as session,
        LoadProgress(f"ingest {kind}", total, len(paths)) as progress,
    ):
        summary = ingest_files(
            session,
            spec,
            paths,
            mapping,
            progress=progress.advance,
            file_done=progress.file_done,
            intervals=intervals,
        )
    print_summary(summary, as_json=as_json)
    if alerts is not None:
        alerts.report()
    if summary.errors:
        raise typer.Exit(1)
