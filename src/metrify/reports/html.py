"""The monthly report as one self-contained HTML file: styles inline, every plot an
inline SVG, no script and no external asset, so it opens offline, mails as one
attachment and archives as it is."""

from __future__ import annotations

import html
import re

from metrify.reports.monthly import MonthlyReport
from metrify.reports.plots import Plot, plots
from metrify.reports.tables import Table, tables

__all__ = ["render_html"]

_STYLE = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 64em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note, p.caption { color: #555; font-size: 0.9em; }
p.none { color: #777; font-style: italic; }
figure { margin: 1em 0; } figure svg { width: 100%; height: auto; }
"""

_XML_HEAD = re.compile(r"^\s*<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", re.S)


def _table(table: Table) -> str:
    parts = [f'<section class="table"><h2>{html.escape(table.title)}</h2>']
    if not table.rows:
        parts.append('<p class="none">none this month</p></section>')
        return "".join(parts)
    parts.append("<table>")
    if any(table.headers):
        parts.append(
            "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr>"
        )
    for row in table.rows:
        cells = (
            f'<td class="num">{html.escape(c)}</td>' if num else f"<td>{html.escape(c)}</td>"
            for c, num in zip(row, table.numeric, strict=True)
        )
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    if table.note:
        parts.append(f'<p class="note">{html.escape(table.note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _plot(plot: Plot) -> str:
    svg = _XML_HEAD.sub("", plot.render("svg").decode())
    return (
        f'<section class="plot" id="plot-{plot.key}"><h2>{html.escape(plot.title)}</h2>'
        f'<figure>{svg}<figcaption><p class="caption">{html.escape(plot.caption)}</p>'
        "</figcaption></figure></section>"
    )


def render_html(report: MonthlyReport) -> str:
    """The whole report as one HTML document."""
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head><body>"
    )
    intro = (
        f"<h1>{html.escape(report.title)}</h1>"
        f"<p>Local month {report.month.first:%Y-%m-%d} to {report.month.after:%Y-%m-%d}"
        f" (exclusive) in {html.escape(report.month.tz)}.</p>"
    )
    body = "".join(_table(t) for t in tables(report))
    figures = "".join(_plot(p) for p in plots(report))
    return f"{head}{intro}{body}{figures}</body></html>\n"
