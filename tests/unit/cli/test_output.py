"""User data reaches the terminal as typed: no emoji codes, no markup."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from metrify.cli import app
from metrify.cli.common import console, err, piped_width


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


def test_a_long_error_is_one_line(tmp_path: Path) -> None:
    # errors are promised as one line; Rich folded them at 80 columns in a log or a pipe
    out = tmp_path / ("a-long-folder-name-" * 6) / "export.txt"
    args = ["readings", "export", "M1", "--from", "2025-01-01", "--to", "2025-01-02"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) > 120, lines
    assert lines[0].startswith("error: --out ")


def test_tables_are_wide_when_stdout_is_not_a_terminal() -> None:
    # a log or a cron mail got 80 columns and tables cut their dates to "2013-…"
    class Pipe:
        def isatty(self) -> bool:
            return False

    class Terminal:
        def isatty(self) -> bool:
            return True

    assert piped_width(Pipe(), {}) == 200
    assert piped_width(Pipe(), {"COLUMNS": "100"}) is None  # Rich reads COLUMNS itself
    assert piped_width(Terminal(), {}) is None  # a terminal is measured
