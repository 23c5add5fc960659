"""``metrify ingest``: files into the store through the one pipeline."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from metrify.cli import options as opts
from metrify.cli.apps import app
from metrify.cli.common import UserError, friendly, load_settings, print_summary, progress_bar
from metrify.contracts.records import CONTRACTS, contract
from metrify.pipeline.session import ingest_files, open_session
from metrify.sources.mapping import build_mapping

__all__ = ["KINDS", "ingest_cmd"]

KINDS = ", ".join(CONTRACTS)


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
    as_json: Annotated[
        bool, typer.Option("--json", help="print the summary as one JSON object")
    ] = False,
) -> None:
    """Load files into the store through the pipeline; bad rows go to quarantine."""
    try:
        spec = contract(kind)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    mapping = build_mapping(
        spec, maps=maps, sets=sets, scales=scales, interval_s=interval, tz=tz, ts_end=ts_end
    )
    settings = load_settings()
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    with open_session(settings) as session, progress_bar(total, unit="bytes") as bar:
        task = bar.add_task(f"ingest {kind}", total=total or None)
        summary = ingest_files(
            session, spec, paths, mapping, progress=lambda n: bar.advance(task, n)
        )
    print_summary(summary, as_json=as_json)
    if summary.errors:
        raise typer.Exit(1)
