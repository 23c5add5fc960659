"""The monthly report as a PDF, written by fpdf2 with matplotlib's plots as PNG images.

Why fpdf2 and not WeasyPrint: WeasyPrint needs the system's Pango libraries (a Debian
package on a fresh machine), fpdf2 and matplotlib install from PyPI alone. The text is
real PDF text in DejaVu Sans (the font matplotlib ships, embedded as a subset, so any
character of a meter id prints and the figures can be searched and copied); each plot
has a page of its own with its title and caption.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

import matplotlib
from fpdf import FPDF
from fpdf.enums import Align, TableCellFillMode

from metrify.reports.monthly import MonthlyReport
from metrify.reports.plots import Plot, plots
from metrify.reports.tables import Table, tables

__all__ = ["render_pdf"]

FONT: Final = "DejaVu"
_FONTS: Final = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


class _Report(FPDF):
    """A4 pages with the report's title and page numbers in the footer."""

    def __init__(self, title: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.report_title = title
        self.add_font(FONT, "", str(_FONTS / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(_FONTS / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(title)
        self.set_creator("Metrify")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.set_text_color(120)
        self.cell(0, 6, f"{self.report_title}  ·  page {self.page_no()}", align="C")
        self.set_text_color(0)


def _heading(pdf: FPDF, text: str, size: int = 13) -> None:
    pdf.set_font(FONT, "B", size)
    pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _table(pdf: FPDF, table: Table) -> None:
    _heading(pdf, table.title, 12)
    pdf.set_font(FONT, "", 8)
    if not table.rows:
        pdf.set_text_color(110)
        pdf.multi_cell(0, 5, "none this month", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
        pdf.ln(3)
        return
    align = tuple("RIGHT" if n else "LEFT" for n in table.numeric)
    with pdf.table(
        text_align=align,
        first_row_as_headings=any(table.headers),
        cell_fill_color=245,
        cell_fill_mode=TableCellFillMode.ROWS,
        line_height=5,
        align=Align.L,
        width=pdf.epw,
    ) as out:
        if any(table.headers):
            out.row(table.headers)
        for row in table.rows:
            out.row(row)
    if table.note:
        pdf.set_text_color(90)
        pdf.multi_cell(0, 4.5, table.note, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
    pdf.ln(4)


def _plot(pdf: FPDF, plot: Plot) -> None:
    pdf.add_page()
    _heading(pdf, plot.title)
    pdf.image(io.BytesIO(plot.render("png", dpi=150)), w=pdf.epw)
    pdf.ln(2)
    pdf.set_font(FONT, "", 9)
    pdf.multi_cell(0, 5, plot.caption, new_x="LMARGIN", new_y="NEXT")


def render_pdf(report: MonthlyReport) -> bytes:
    """The whole report as PDF bytes: the tables first, then one page per plot."""
    pdf = _Report(report.title)
    pdf.add_page()
    _heading(pdf, report.title, 16)
    pdf.set_font(FONT, "", 9)
    pdf.multi_cell(
        0,
        5,
        f"Local month {report.month.first:%Y-%m-%d} to {report.month.after:%Y-%m-%d}"
        f" (exclusive) in {report.month.tz}.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    for table in tables(report):
        _table(pdf, table)
    for plot in plots(report):
        _plot(pdf, plot)
    return bytes(pdf.output())
