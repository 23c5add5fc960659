"""``metrify forecast backtest --help`` says which models it scores by default."""

from __future__ import annotations

from typer.testing import CliRunner

from metrify.cli import app


def test_backtest_help_names_the_default_models() -> None:
    # the help said "default: every model" while a backtest without --model scores
    # metrify and the weekly naive only (lightgbm_linear, asked for, takes minutes more)
    result = CliRunner().invoke(app, ["forecast", "backtest", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "default: metrify and seasonal_naive_weekly" in text
    assert "every model" not in text
