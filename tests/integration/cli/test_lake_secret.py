"""A failed lake write is reported without the lake URL's credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings, get_settings
from metrify.stores.lake import Lake


def test_lake_failure_hides_url_password(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRIFY_LAKE_URL", "memory://lakeuser:lakeSECRET9@bucket/lake")
    get_settings.cache_clear()

    def broken(self: Lake, dataset: str, frame: Any) -> int:
        raise OSError("bucket unreachable")

    monkeypatch.setattr(Lake, "write", broken)
    path = tmp_path / "r.csv"
    path.write_text("meter_id,ts,import_kwh\nM1,2025-03-03T00:30:00Z,0.5\n")
    result = CliRunner().invoke(
        app, ["ingest", "readings", str(path), "--interval", "1800", "--json"]
    )
    shown = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "bucket unreachable" in shown  # the failure is reported...
    assert "lakeSECRET9" not in shown  # ...without the secret
    summary = json.loads(result.stdout)
    assert any("memory://lakeuser:***@bucket/lake" in e for e in summary["errors"])
