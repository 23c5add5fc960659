"""``metrify ingest``'s reading options refuse bad values with one line and exit 2,
before anything is opened or stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from metrify.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--unit", "temperature_c=degQ"], "--unit temperature_c=degQ: unknown unit 'degQ'"),
        (["--unit", "import_kwh=m^3"], "'m^3' cannot be converted to kWh, the unit of import_kwh"),
        (["--tz", "+25:00"], "--tz +25:00: a UTC offset lies between -14:00 and +14:00"),
        # one register read: no interval to detect from its spacing
        (
            ["--map", "ts=#1", "--map", "register_kwh=#2", "--set", "meter_id=M"],
            "too few timestamps to tell (0 differences; candidates: none); pass --interval SECONDS",
        ),
        (["--register-digits", "0"], "--register-digits 0: must be 1..15"),
    ],
)
def test_bad_reading_options_exit_2_with_a_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("1704067200,1\n")
    kind = "weather" if "temperature_c" in args[-1] else "readings"
    result = runner.invoke(app, ["ingest", kind, str(path), "--no-header", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout
