"""The daily quality report: one day's interval counts per region, the fleet's, and the
worst meters, as ``<home>/reports/quality/<date>.json`` and ``.md``.

The daily scores are brought up to date first (:func:`metrify.stores.quality_daily.refresh`),
then read for the day (:func:`metrify.stores.quality_days.day_report`): each meter's own
local day, as the scores count days. Each file is written whole and then renamed into
place, so a reader never sees half a report and a re-run replaces it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import orjson

from metrify.batch.context import JobContext, Outcome
from metrify.stores import quality_daily
from metrify.stores.quality_days import day_report

__all__ = ["WORST", "markdown", "report_paths", "run"]

#: meters listed as the day's worst
WORST = 10


def report_paths(home: Path, day: dt.date) -> tuple[Path, Path]:
    """Where the report of ``day`` goes: (JSON, Markdown)."""
    folder = home / "reports" / "quality"
    return folder / f"{day.isoformat()}.json", folder / f"{day.isoformat()}.md"


def run(ctx: JobContext) -> Outcome:
    rescored = quality_daily.refresh(ctx.conn)
    report = day_report(ctx.conn, ctx.interval.day, WORST)
    json_path, md_path = report_paths(ctx.settings.home, ctx.interval.day)
    _write(json_path, orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    _write(md_path, markdown(report).encode())
    return Outcome(
        rows=int(report["fleet"]["meters"]),
        details={
            "json": str(json_path),
            "markdown": str(md_path),
            "regions": len(report["regions"]),
            "rescored_meter_days": rescored,
        },
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _pct(value: Any) -> str:
    return "" if value is None else f"{100 * float(value):.1f} %"


def _num(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"


def _score(value: Any) -> str:
    return "" if value is None else f"{float(value):.1f}"


def _cell(value: Any) -> str:
    """Free text (a region's name) in a table cell: a ``|`` would end the cell."""
    return str(value).replace("|", "\\|")


_COUNTS = ("expected", "valid", "estimated", "suspect", "rejected", "missing")


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page: fleet totals, a table per region, the worst meters."""
    fleet = report["fleet"]
    lines = [
        f"# Data quality, {report['day']}",
        "",
        "Each meter's own local day; counts are of intervals (`missing`: owed but absent or"
        " gap rows, estimated or not). Energy is the import of the same intervals.",
        "",
        f"Fleet: {fleet['meters']:,} meters, completeness {_pct(fleet['completeness'])},"
        f" mean score {_score(fleet['score'])}, {_num(fleet['import_kwh'])} kWh.",
        "",
        "## Per region",
        "",
    ]
    head = ["region", "meters", *_COUNTS, "completeness", "score", "import kWh"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in [*report["regions"], {**fleet, "region": "**fleet**"}]:
        cells = [_cell(row["region"]), _num(row["meters"]), *(_num(row[c]) for c in _COUNTS)]
        cells += [_pct(row["completeness"]), _score(row["score"]), _num(row["import_kwh"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"## The {len(report['worst'])} worst meters", ""]
    head = ["meter", "region", *_COUNTS, "completeness", "score", "import kWh"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["worst"]:
        cells = [f"`{row['meter_id']}`", _cell(row["region"]), *(_num(row[c]) for c in _COUNTS)]
        cells += [_pct(row["completeness"]), _score(row["score"]), _num(row["import_kwh"])]
        lines.append("| " + " | ".join(cells) + " |")
    if not report["worst"]:
        lines.append("| (no meter scored that day) |" + " |" * (len(head) - 1))
    return "\n".join(lines) + "\n"
