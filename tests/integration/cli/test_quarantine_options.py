"""``metrify quarantine`` refuses options it cannot answer instead of looking empty or
failing in the database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()


def test_an_unknown_kind_is_refused_not_an_empty_quarantine(settings: Settings) -> None:
    # "--kind reading" (no s) matched no row and printed empty tables with exit 0: a typo
    # that read as "nothing was quarantined"
    result = runner.invoke(app, ["quarantine", "--kind", "reading"])
    assert result.exit_code == 2, result.output
    assert "--kind reading: use one of readings, grid, weather" in result.stderr.replace("\n", "")
    assert runner.invoke(app, ["quarantine", "--kind", "events"]).exit_code == 0


@pytest.mark.parametrize("limit", ["-1", "-20"])
def test_a_negative_limit_is_a_usage_error_not_a_database_error(
    settings: Settings, limit: str
) -> None:
    # it reached PostgreSQL as LIMIT -1: exit 3, "InvalidRowCountInLimitClause"
    result = runner.invoke(app, ["quarantine", "--limit", limit])
    assert result.exit_code == 2, result.output
    assert "InvalidRowCount" not in result.output
