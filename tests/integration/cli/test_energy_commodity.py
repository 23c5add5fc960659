"""``metrify energy --commodity``: a feeder holding an electricity and a water meter
answers each commodity apart, with its unit on every JSON line; the sums are the file's
values added here by hand; a meter asked for another commodity than its own, or an
unknown commodity, is exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()
#: half-hourly values on 2025-06-02 (UTC): E1 in kWh, W1 in m³
VALUES = {"E1": [0.5, 0.25, 1.0, 0.75], "W1": [0.02, 0.03, 0.01, 0.04]}


def _load(tmp_path: Path) -> None:
    meters = tmp_path / "meters.csv"
    meters.write_text("meter_id,node_id,commodity,unit\nE1,F1,electricity,kWh\nW1,F1,water,m3\n")
    lines = ["meter_id,ts,interval_s,import_kwh"]
    for meter, values in VALUES.items():
        for i, value in enumerate(values):
            lines.append(f"{meter},2025-06-02T{i // 2:02d}:{30 * (i % 2):02d}:00Z,1800,{value}")
    readings = tmp_path / "readings.csv"
    readings.write_text("\n".join(lines) + "\n")
    for kind, path in (("meters", meters), ("readings", readings)):
        result = runner.invoke(app, ["ingest", kind, str(path)])
        assert result.exit_code == 0, result.output


def _energy(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(
        app,
        ["energy", "--from", "2025-06-02", "--to", "2025-06-03", "--tz", "UTC", *args, "--json"],
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_energy_per_commodity(settings: Settings, tmp_path: Path) -> None:
    _load(tmp_path)
    (power,) = _energy("--node", "F1")
    assert (power["commodity"], power["unit"]) == ("electricity", "kWh")
    assert power["import_kwh"] == pytest.approx(sum(VALUES["E1"]))
    (water,) = _energy("--node", "F1", "--commodity", "water")
    assert (water["commodity"], water["unit"]) == ("water", "m3")
    assert water["import_kwh"] == pytest.approx(sum(VALUES["W1"]))
    (own,) = _energy("--meter", "W1")
    assert (own["commodity"], own["unit"], own["present"]) == ("water", "m3", 4)
    assert _energy("--fleet", "--commodity", "heat") == []
    for args, said in (
        (["--meter", "W1", "--commodity", "gas"], "meter W1 measures water, not gas"),
        (["--node", "F1", "--commodity", "steam"], "unknown commodity 'steam'"),
    ):
        result = runner.invoke(app, ["energy", "--from", "2025-06-02", "--to", "2025-06-03", *args])
        assert result.exit_code == 2, result.output
        assert said in " ".join(result.output.split()) and "Traceback" not in result.output
