"""The schema head read from the migration files' plain lines (start-up without alembic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrify.stores import database


def test_plain_head_is_alembics_head() -> None:
    assert database.plain_head() is not None
    assert database.plain_head() == database.head_revision()


def _migrations(tmp_path: Path, files: dict[str, str]) -> Path:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "__init__.py").write_text("")
    for name, text in files.items():
        (versions / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "head"),
    [
        (
            {
                "a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision: str = "0002"\ndown_revision: str | None = "0001"\n',
                "c.py": "revision = '0003'\ndown_revision = '0002'\n",
            },
            "0003",
        ),
        # a merge revision names two parents: only alembic can tell
        (
            {
                "a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision = "0002"\ndown_revision = "0001"\n',
                "c.py": 'revision = "0003"\ndown_revision = "0001"\n',
                "d.py": 'revision = "0004"\ndown_revision = ("0002", "0003")\n',
            },
            None,
        ),
        # two heads
        (
            {
                "a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision = "0002"\ndown_revision = "0001"\n',
                "c.py": 'revision = "0003"\ndown_revision = "0001"\n',
            },
            None,
        ),
        # a revision computed, not written: not read plainly
        (
            {
                "a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision = "00" + "02"\ndown_revision = "0001"\n',
            },
            None,
        ),
        # a parent no file holds
        ({"a.py": 'revision = "0002"\ndown_revision = "0001"\n'}, None),
    ],
)
def test_plain_head_only_when_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], head: str | None
) -> None:
    monkeypatch.setattr(database, "MIGRATIONS", _migrations(tmp_path, files))
    assert database.plain_head() == head
