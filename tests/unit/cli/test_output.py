"""User data reaches the terminal as typed: no emoji codes, no markup."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from metrify.cli import app
from metrify.cli.common import console, err


def test_user_data_prints_without_emoji_codes() -> None:
    for target in (console, err):
        with target.capture() as captured:
            target.print("api:key:north and :smile:")
        assert captured.get().strip() == "api:key:north and :smile:"


def test_error_naming_user_data_is_not_markup(tmp_path: Path) -> None:
    out = tmp_path / "[/x].txt"  # a closing tag to rich, a file name to the user
    args = ["readings", "export", "M1", "--from", "2025-01-01", "--to", "2025-01-02"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    error = result.stderr.replace("\n", "")
    assert result.exit_code == 2, result.exception
    assert f"--out {out}: use a .csv" in error
