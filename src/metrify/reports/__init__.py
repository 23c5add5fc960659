"""Reports: a month of the fleet (or of a region) as HTML or PDF with plots.

:mod:`~metrify.reports.monthly` gathers the figures from the stores' read queries,
:mod:`~metrify.reports.plots` draws them (matplotlib, Agg), :mod:`~metrify.reports.tables`
formats them once for both writers, and :mod:`~metrify.reports.html` and
:mod:`~metrify.reports.pdf` write the file. :func:`write_report` picks the writer by the
file's suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from metrify.reports.monthly import (
    BadReportQuery,
    Month,
    MonthlyReport,
    NoData,
    build_monthly,
    parse_month,
)

__all__ = [
    "FORMATS",
    "BadReportQuery",
    "Month",
    "MonthlyReport",
    "NoData",
    "build_monthly",
    "parse_month",
    "render",
    "report_format",
]

#: file suffix -> format
FORMATS: Final = {".pdf": "pdf", ".html": "html", ".htm": "html"}


def report_format(path: Path) -> str:
    """The format ``path``'s suffix asks for; BadReportQuery for any other suffix."""
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise BadReportQuery(f"--out {path}: the file must end in .pdf or .html")
    return found


def render(report: MonthlyReport, fmt: str) -> bytes:
    """The report in ``fmt`` (``pdf`` or ``html``) as bytes. The writers are imported
    here, by need: matplotlib and fpdf2 take a moment to load, and only reports use them."""
    if fmt == "pdf":
        from metrify.reports.pdf import render_pdf

        return render_pdf(report)
    from metrify.reports.html import render_html

    return render_html(report).encode()
