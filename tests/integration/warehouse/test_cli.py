"""``metrify warehouse build|docs`` through the CLI: exit codes, one-line errors, the
summary, and a docs site that names the models. A day of readings keeps dbt quick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores import warehouse

pytestmark = pytest.mark.slow


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _readings(path: Path) -> Path:
    lines = ["meter_id,ts,import_kwh"]
    lines += [f"W1,2013-01-01T{h:02d}:00:00Z,{0.25 * (h + 1)}" for h in range(24)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_build_then_docs(settings: Settings, tmp_path: Path) -> None:
    loaded = invoke("ingest", "readings", str(_readings(tmp_path / "r.csv")), "--interval", "3600")
    assert loaded.exit_code == 0, loaded.stderr
    built = invoke("warehouse", "build", "--json")
    assert built.exit_code == 0, built.stderr
    result = json.loads(built.stdout)
    assert result["success"] and result["target"] == "duckdb"
    assert result["counts"].get("error", 0) == 0 and result["counts"]["pass"] > 0
    # each finished model is one progress line on stderr
    assert "model fct_consumption_daily" in built.stderr
    expected = sum(0.25 * (h + 1) for h in range(24))
    assert warehouse.query(
        settings, "SELECT meter_id, import_kwh FROM marts.fct_consumption_daily"
    ) == [("W1", pytest.approx(expected))]

    docs = invoke("warehouse", "docs")
    assert docs.exit_code == 0, docs.stderr
    page = Path(docs.stdout.strip())
    assert page.is_file() and "fct_consumption_daily" in page.read_text()


def test_bad_target_is_one_line_and_exit_2(settings: Settings) -> None:
    result = invoke("warehouse", "build", "--target", "oracle")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "--target oracle" in result.stderr


def test_snowflake_without_an_account_is_one_line(settings: Settings) -> None:
    result = invoke("warehouse", "build", "--target", "snowflake")
    assert result.exit_code == 1
    assert "METRIFY_WAREHOUSE__SNOWFLAKE__ACCOUNT" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_dbt_test_fails_the_build(settings: Settings, tmp_path: Path) -> None:
    """A meter on a grid node nobody registered: by default a warning (Metrify accepts
    it, nodes often arrive later), the build succeeds and says so; made an error by the
    dbt var, the relationships test fails and the build exits 1 with one line naming it."""
    meters = tmp_path / "meters.csv"
    meters.write_text("meter_id,node_id\nW1,NO_SUCH_NODE\n")
    assert invoke("ingest", "meters", str(meters)).exit_code == 0
    warned = invoke("warehouse", "build", "--json")  # everything, so later tests have it
    assert warned.exit_code == 0, warned.stderr
    nodes = json.loads(warned.stdout)["nodes"]
    assert [n["failures"] for n in nodes if n["status"] == "warn"] == [1]
    strict = '{"unknown_node_severity": "error"}'
    result = invoke("warehouse", "build", "--select", "staging", "--vars", strict, "--json")
    assert result.exit_code == 1
    *_progress, last = result.stderr.strip().splitlines()
    assert last.startswith("error: ") and "relationships_stg_meters_node_id" in last
    assert "Traceback" not in result.stderr
    failed = [n for n in json.loads(result.stdout)["nodes"] if n["status"] == "fail"]
    assert [n["failures"] for n in failed] == [1]


def test_bad_vars_are_a_one_line_error() -> None:
    result = invoke("warehouse", "build", "--vars", "[1, 2]")
    assert result.exit_code == 2
    assert "expected a JSON object" in result.stderr and "Traceback" not in result.stderr
