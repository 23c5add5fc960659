"""``metrify report``: reports with plots from the stored data.

``monthly`` writes one local calendar month of the fleet (or of a region) as a PDF or a
self-contained HTML file (:mod:`metrify.reports`): energy and peak by segment, load
profiles, data quality and estimation, anomalies and their outcome, grid loading.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from metrify.cli.apps import report_app
from metrify.cli.common import UserError, console, friendly, load_settings
from metrify.pipeline.session import open_session
from metrify.reports import BadReportQuery, build_monthly, parse_month, render, report_format

__all__ = ["monthly"]


def _writable(out: Path) -> None:
    """Fail before any work when ``out`` cannot be written: its folder must exist and
    take a new file (tried, not guessed from permission bits: root passes those on a
    read-only mount), and ``out`` must not be a folder."""
    folder = out.parent
    if not folder.is_dir():
        raise UserError(f"--out {out}: folder {folder} does not exist")
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".metrify-report-"):
            pass
    except OSError as exc:
        raise UserError(f"--out {out}: not writable ({exc.strerror or exc})") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write(out: Path, data: bytes) -> None:
    """Write ``out`` whole or not at all: a temporary file beside it, then a rename, so
    a reader never opens half a report and a failure leaves the old one."""
    try:
        with tempfile.NamedTemporaryFile(
            dir=out.parent, prefix=".metrify-report-", delete=False
        ) as tmp:
            tmp.write(data)
        # a temporary file is private (0600); the report gets what any new file would
        os.chmod(tmp.name, 0o666 & ~_umask())
        os.replace(tmp.name, out)
    except OSError as exc:
        Path(tmp.name).unlink(missing_ok=True)
        raise UserError(f"--out {out}: {exc.strerror or exc}") from None


@report_app.command("monthly")
@friendly
def monthly(
    month: Annotated[str, typer.Option("--month", help="the local month, e.g. 2013-06")],
    out: Annotated[Path, typer.Option("--out", help="report.pdf or report.html")],
    region: Annotated[
        str | None, typer.Option("--region", help="only the meters of this region")
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="zone of the month (default: the meters', else the fleet's)"),
    ] = None,
) -> None:
    """One month as PDF or HTML: consumption and peak by segment, load profiles, data
    quality and estimation, anomalies and their outcome, grid loading."""
    settings = load_settings()
    try:
        fmt = report_format(out)
        parse_month(month, tz or settings.fleet_timezone)  # fails before the database opens
    except BadReportQuery as exc:
        raise UserError(str(exc)) from None
    _writable(out)
    with open_session(settings) as session:
        try:
            report = build_monthly(
                session.conn, month, tz=tz, fleet_tz=settings.fleet_timezone, region=region
            )
        except BadReportQuery as exc:
            raise UserError(str(exc)) from None
    data = render(report, fmt)
    _write(out, data)
    console.print(
        f"wrote {escape(str(out))} ({len(data):,} bytes): {escape(report.title)}",
        highlight=False,
    )
