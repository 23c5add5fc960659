"""``metrify readings export``: text as the API writes it. A Wh file scaled to kWh stores
1520.4 x 0.001 = 1.5204000000000002; the export writes 1.5204 (15 significant digits, all
a double holds exactly). A meter id a spreadsheet would run as a formula (``-2-3``) gets a
leading ``'`` in CSV; numbers stay numbers; times are ISO 8601 UTC like the API's."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()
FORMULA_ID = "-2-3"


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr


def _export(out: Path) -> None:
    _invoke(
        "readings", "export",
        "--from", "2025-03-03T00:00:00Z", "--to", "2025-03-04T00:00:00Z", "--out", str(out),
        "--", FORMULA_ID, "M.1",  # "--": an id may start with "-"
    )  # fmt: skip


def test_cli_export_is_clean_text(settings: Settings, tmp_path: Path) -> None:
    wh = tmp_path / "wh.csv"
    wh.write_text(
        "meter_id,ts,import_kwh,export_kwh\n"
        f"{FORMULA_ID},2025-03-03T00:30:00Z,1520.4,500\n"
        "M.1,2025-03-03T00:30:00Z,250,0\n"
    )
    _invoke(
        "ingest", "readings", str(wh), "--interval", "1800",
        "--scale", "import_kwh=0.001", "--scale", "export_kwh=-0.001",
    )  # fmt: skip
    assert 1520.4 * 0.001 == 1.5204000000000002  # what the store holds
    _export(tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text()
    assert "1.5204000000000002" not in text
    rows = {r["meter_id"]: r for r in csv.DictReader(text.splitlines())}
    assert set(rows) == {"'" + FORMULA_ID, "M.1"}
    first = rows["'" + FORMULA_ID]
    assert first["import_kwh"] == "1.5204"
    assert first["export_kwh"] == "-0.5"  # a negative number is not neutralised
    assert first["ts"] == "2025-03-03T00:30:00+00:00"  # the API's format
    assert rows["M.1"]["import_kwh"] == "0.25"

    _export(tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    by_id = {line["meter_id"]: line for line in lines}
    assert by_id[FORMULA_ID]["import_kwh"] == 1.5204  # JSON is typed: no prefix
    assert "1.5204000000000002" not in (tmp_path / "out.jsonl").read_text()

    _export(tmp_path / "out.parquet")  # binary: the stored double, untouched
    stored = pl.read_parquet(tmp_path / "out.parquet").filter(pl.col("meter_id") == FORMULA_ID)
    assert stored["import_kwh"].to_list() == [1520.4 * 0.001]


def test_an_export_that_cannot_hold_readings_is_refused(settings: Settings, tmp_path: Path) -> None:
    # an unknown meter or a reversed range wrote an empty file and "wrote 0 readings",
    # exit 0: indistinguishable from a meter without readings in the range
    (tmp_path / "r.csv").write_text("meter_id,ts,import_kwh\nM.1,2025-03-03T00:30:00Z,0.25\n")
    _invoke("ingest", "readings", str(tmp_path / "r.csv"), "--interval", "1800")
    out = tmp_path / "out.csv"
    for args, message in (
        (["M.1", "NOPE", "--from", "2025-03-03", "--to", "2025-03-04"], "no meter NOPE"),
        (["M.1", "--from", "2025-03-04", "--to", "2025-03-03"], "--to must be after --from"),
    ):
        result = runner.invoke(app, ["readings", "export", *args, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert message in result.stderr
        assert not out.exists()
    # the known meter alone still exports
    _invoke("readings", "export", "M.1", "--from", "2025-03-03", "--to", "2025-03-04",
            "--out", str(out))  # fmt: skip
    assert len(out.read_text().splitlines()) == 2


def test_a_quality_report_date_error_names_the_option(settings: Settings) -> None:
    # it said only "error: day is out of range for month"
    result = runner.invoke(app, ["quality", "report", "--date", "2013-02-30"])
    assert result.exit_code == 2, result.output
    assert "--date 2013-02-30: day is out of range for month" in result.stderr
