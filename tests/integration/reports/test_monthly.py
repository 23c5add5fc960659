"""``metrify report monthly`` on four real London households in June 2013: the PDF is
read back (its text with pypdf, its pages as images with pypdfium2) and the HTML is
parsed, and their figures are compared with values computed here from the files;
bad questions get one line and exit 2."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg
import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from metrify.settings import Settings

from .june import June, load_june

runner = CliRunner()
PLOT_TITLES = (
    "Consumption and peak demand by segment",
    "Load profiles by segment",
    "Data quality and estimation",
    "Anomalies and their outcome",
    "Grid loading",
)
#: anomalies recorded by the test: (kind, subject type, subject, start, status)
ANOMALIES = (
    ("spike", "meter", "MAC000002", dt.datetime(2013, 6, 3, 18, tzinfo=dt.UTC), "open"),
    ("spike", "meter", "MAC000005", dt.datetime(2013, 6, 9, 7, tzinfo=dt.UTC), "resolved"),
    (
        "flatline",
        "meter",
        "MAC000003",
        dt.datetime(2013, 6, 20, 1, tzinfo=dt.UTC),
        "false_positive",
    ),
    ("overload", "node", "F1", dt.datetime(2013, 6, 14, 17, tzinfo=dt.UTC), "acknowledged"),
    # ends before local June begins: not in the report
    ("spike", "meter", "MAC000002", dt.datetime(2013, 5, 31, 20, tzinfo=dt.UTC), "open"),
)


def _report(*args: str) -> Any:
    from metrify.cli import app

    return runner.invoke(app, ["report", "monthly", *args])


def _record_anomalies(owner_url: str) -> None:
    """Replace whatever the detectors found with the test's own anomalies, so what the
    report must count is known here."""
    with psycopg.connect(owner_url) as conn:
        conn.execute("DELETE FROM anomalies")
        for kind, subject_type, subject, start, status in ANOMALIES:
            conn.execute(
                "INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end,"
                " score, severity, detector, detector_version, evidence, intervals, status)"
                " VALUES (%s, %s, %s, %s, %s, 5.0, 'high', 'test', '1', '{}', 2, %s)",
                (kind, subject_type, subject, start, start + dt.timedelta(hours=1), status),
            )


def _one_line(output: str) -> str:
    """The CLI's message with the terminal's line wrapping undone."""
    return " ".join(output.split())


def _number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def _row(text: str, label: str, cells: int, *, section: str = "") -> list[str]:
    """The ``cells`` words after the first ``label`` (after heading ``section``) in the
    extracted text; a table cell too wide for its column wraps onto lines of its own."""
    words = text[text.index(section) :].split() if section else text.split()
    want = label.split()
    for i in range(len(words)):
        if words[i : i + len(want)] == want:
            return words[i + len(want) : i + len(want) + cells]
    raise AssertionError(f"no {label!r} in:\n{text}")


def _ink(page: Any) -> float:
    """The share of a page's pixels that are not (nearly) white."""
    pixels = np.asarray(page.render(scale=0.5).to_pil().convert("L"))
    return float((pixels < 230).mean())


def _check_segments(text: str, june: June, region: str | None) -> None:
    month = june.month()
    if region:
        month = month.filter(pl.col("region") == region)
    per = month.group_by("tariff").agg(
        kwh=pl.col("kwh").sum(), meters=pl.col("meter_id").n_unique()
    )
    coincident = month.group_by("tariff", "ts").agg(kw=pl.col("kwh").sum() * 2)
    for tariff, kwh, meters in per.iter_rows():
        cells = _row(text, tariff, 7, section="Energy and peak by segment")
        # segment, meters, energy kWh, share, peak kW, peak at (two cells), load factor
        assert int(cells[0]) == meters
        assert _number(cells[1]) == pytest.approx(kwh, abs=0.051)
        assert _number(cells[2]) == pytest.approx(100 * kwh / month["kwh"].sum(), abs=0.051)
        peak = coincident.filter(pl.col("tariff") == tariff).sort(
            "kw", "ts", descending=[True, False]
        )
        assert _number(cells[3]) == pytest.approx(peak["kw"][0], abs=0.0051)
        local = peak["ts"][0] + dt.timedelta(hours=1)  # BST
        assert f"{cells[4]} {cells[5]}" == f"{local:%Y-%m-%d %H:%M}"
        mean = kwh / (30 * 24)
        assert _number(cells[6]) == pytest.approx(mean / peak["kw"][0], abs=0.0051)


@pytest.mark.realdata
@pytest.mark.slow
def test_monthly_report_pdf_and_html(settings: Settings, database_url: str, tmp_path: Path) -> None:
    june = load_june(tmp_path)
    _record_anomalies(database_url)

    pdf_path = tmp_path / "june.pdf"
    done = _report("--month", "2013-06", "--out", str(pdf_path))
    assert done.exit_code == 0, done.output
    umask = os.umask(0o022)
    os.umask(umask)
    assert pdf_path.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temp file's 0600
    reader = PdfReader(pdf_path)
    pages = [p.extract_text() for p in reader.pages]
    text = "\n".join(pages)
    assert "Metrify monthly report 2013-06, the whole fleet" in text

    # energy and peak per segment, from the files
    _check_segments(text, june, None)
    month = june.month()
    total = float(month["kwh"].sum())
    assert _number(_row(text, "energy, kWh", 1)[0]) == pytest.approx(total, abs=0.051)
    fleet_peak = month.group_by("ts").agg(kw=pl.col("kwh").sum() * 2)["kw"].max()
    assert _number(_row(text, "coincident peak, kW", 1)[0]) == pytest.approx(fleet_peak, abs=0.0051)
    assert int(_row(text, "meters with readings", 1)[0]) == 4

    # quality: 30 days of 48 half-hours per meter owed, every one present
    owed = 4 * 30 * 48
    present = month.filter(pl.col("kwh").is_not_null()).height
    readings = _row(text, "readings", 7, section="Data quality")
    assert _number(readings[0]) == owed
    assert _number(readings[1]) == present
    assert _number(readings[-1]) == owed - present
    assert sum(_number(c) for c in readings[2:6]) == present  # valid+estimated+suspect+rejected
    assert _number(_row(text, "data completeness", 1)[0]) == pytest.approx(
        100 * present / owed, abs=0.051
    )

    # anomalies overlapping local June, by outcome (the one of 31 May 20:00 UTC is out)
    assert _row(text, "anomalies", 10) == (
        ["4", "(1", "open,", "1", "acknowledged,", "1", "resolved,", "1", "false", "positive)"]
    )
    assert _row(text, "spike", 5) == ["1", "0", "1", "0", "2"]
    assert _row(text, "overload", 5) == ["0", "1", "0", "0", "1"]

    # grid loading of F1: June's peak is 95% of capacity by construction
    loads = june.month_load()
    # node, kind, capacity MW, peak MW, peak at (two cells), utilisation, h > 80%, h > 100%
    f1 = _row(text, "F1 feeder", 7, section="Grid loading")
    assert _number(f1[0]) == pytest.approx(june.capacity_mw, rel=1e-3)
    assert _number(f1[1]) == pytest.approx(loads["load_mw"].max(), rel=1e-3)
    peak_at = loads.sort("load_mw", "ts", descending=[True, False])["ts"][0]
    assert f"{f1[2]} {f1[3]}" == f"{peak_at + dt.timedelta(hours=1):%Y-%m-%d %H:%M}"  # BST
    assert f1[4] == "95.0%"
    above80 = 0.5 * loads.filter(pl.col("load_mw") > 0.8 * june.capacity_mw).height
    assert _number(f1[5]) == pytest.approx(above80, abs=0.051)
    assert _number(f1[6]) == 0

    # every plot has a page of its own, and it is not blank
    document = pdfium.PdfDocument(pdf_path)
    for title in PLOT_TITLES:
        index = next(i for i, p in enumerate(pages) if p.lstrip().startswith(title))
        assert _ink(document[index]) > 0.02, f"plot page {title!r} is (nearly) blank"

    # the HTML: the same figures, five inline SVG plots, nothing fetched from elsewhere
    html_path = tmp_path / "june.html"
    done = _report("--month", "2013-06", "--out", str(html_path))
    assert done.exit_code == 0, done.output
    page = html_path.read_text()
    assert page.count("<svg") == len(PLOT_TITLES)
    for title in PLOT_TITLES:
        assert f"<h2>{title}</h2>" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", page), "an external asset"
    assert "<script" not in page
    assert f'<td class="num">{total:,.1f}</td>' in page

    # a region: only its meters, its meters' anomalies (not the node's)
    north = tmp_path / "north.pdf"
    done = _report("--month", "2013-06", "--region", "north", "--out", str(north))
    assert done.exit_code == 0, done.output
    text = "\n".join(p.extract_text() for p in PdfReader(north).pages)
    assert "Metrify monthly report 2013-06, region north" in text
    _check_segments(text, june, "north")
    assert int(_row(text, "meters with readings", 1)[0]) == 2
    assert _row(text, "anomalies", 10) == (
        ["2", "(1", "open,", "0", "acknowledged,", "1", "resolved,", "0", "false", "positive)"]
    )
    assert "overload" not in text
    assert _row(text, "F1", 1, section="Grid loading") == ["feeder"]  # north's meters' node


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2013-13", "--out", "r.pdf"], "expected a month like 2013-06"),
        (["--month", "June", "--out", "r.pdf"], "expected a month like 2013-06"),
        (["--month", "2013-06", "--out", "r.docx"], "must end in .pdf or .html"),
        (["--month", "2013-06", "--out", "/no/such/folder/r.pdf"], "does not exist"),
        (["--month", "2013-06", "--region", "atlantis", "--out", "r.pdf"], "no meters in region"),
        (["--month", "2013-06", "--tz", "Mars/Olympus", "--out", "r.pdf"], "unknown time zone"),
        (["--month", "2013-08", "--out", "r.html"], "no data for 2013-08"),
    ],
)
def test_bad_questions_get_one_line(
    settings: Settings, database_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO meters (meter_id, region) VALUES ('M1', 'north')")
    out = [a if not a.startswith("r.") else str(tmp_path / a) for a in args]
    done = _report(*out)
    assert done.exit_code == 2, done.output
    assert message in _one_line(done.output)
    assert "Traceback" not in done.output
    assert not any(tmp_path.glob("r.*")), "no file is written on an error"


def test_unwritable_out_is_one_line(settings: Settings, database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    done = _report("--month", "2013-06", "--out", str(folder))
    assert done.exit_code == 2, done.output
    assert "must end in .pdf or .html" in _one_line(done.output)
    taken = tmp_path / "taken.pdf"
    taken.mkdir()
    done = _report("--month", "2013-06", "--out", str(taken))
    assert done.exit_code == 2, done.output
    assert "is a folder" in _one_line(done.output)
    done = _report("--month", "2013-06", "--out", "/proc/metrify-report.pdf")
    assert done.exit_code == 2, done.output
    assert "not writable" in _one_line(done.output)


def test_meters_without_a_tariff_are_their_own_segment(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """A meter registered without a tariff is in no segment group of the aggregates;
    the fleet's report shows it as ``(none)`` (the fleet's buckets less the segments'),
    and a region's report (summed from its meters) agrees."""
    from metrify.cli import app
    from metrify.reports import build_monthly
    from metrify.stores.database import connect

    (tmp_path / "meters.csv").write_text(
        "meter_id,region,timezone,tariff\nA,west,UTC,Std\nB,west,UTC,\nC,west,UTC,\n"
    )
    start = dt.datetime(2013, 6, 10, tzinfo=dt.UTC)
    kwh = {"A": 0.5, "B": 0.25, "C": 0.125}
    lines = ["meter_id,ts,interval_s,import_kwh"] + [
        f"{m},{start + dt.timedelta(minutes=30 * i):%Y-%m-%dT%H:%M:%SZ},1800,{v * (1 + i % 3)}"
        for i in range(48)
        for m, v in kwh.items()
    ]
    (tmp_path / "readings.csv").write_text("\n".join(lines) + "\n")
    for args in (
        ["ingest", "meters", str(tmp_path / "meters.csv")],
        ["ingest", "readings", str(tmp_path / "readings.csv")],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    day = sum(1 + i % 3 for i in range(48))  # each meter's kWh over its base value
    with connect(settings) as conn:
        for region in (None, "west"):
            report = build_monthly(conn, "2013-06", region=region)
            rows = {r["segment"]: r for r in report.segments.iter_rows(named=True)}
            assert set(rows) == {"Std", "(none)"}
            assert rows["Std"]["kwh"] == pytest.approx(0.5 * day)
            assert rows["(none)"]["kwh"] == pytest.approx((0.25 + 0.125) * day)
            assert rows["(none)"]["meters"] == 2
            # the coincident peak: the half-hours at 3x base, B and C together
            assert rows["(none)"]["peak_kw"] == pytest.approx(3 * 0.375 / 0.5)
            assert report.month.tz == "UTC"
