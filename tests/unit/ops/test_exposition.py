"""Where the workers of one server share their metrics, and what is dropped when."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from metrify.ops import exposition


@pytest.fixture(autouse=True)
def _no_shared_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(exposition.ENV, raising=False)


def test_one_worker_shares_nothing() -> None:
    with exposition.sharing(1) as path:
        assert path is None
        assert exposition.ENV not in os.environ


def test_several_workers_get_a_fresh_private_directory_removed_after() -> None:
    with exposition.sharing(2) as path:
        assert path is not None and path.is_dir()
        assert os.environ[exposition.ENV] == str(path)
        assert list(path.iterdir()) == []
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert not path.exists()
    assert exposition.ENV not in os.environ
    with exposition.sharing(2) as again:
        assert again != path  # per server start


def test_a_directory_the_operator_chose_is_emptied_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "metrics"
    chosen.mkdir()
    (chosen / "counter_123.db").write_bytes(b"old")
    (chosen / "notes.txt").write_text("not ours")
    monkeypatch.setenv(exposition.ENV, str(chosen))
    with exposition.sharing(4) as path:
        assert path == chosen
        assert sorted(p.name for p in chosen.iterdir()) == ["notes.txt"]
    assert chosen.is_dir()


def test_live_gauges_of_processes_gone_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(exposition.ENV, str(tmp_path))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    names = [
        f"gauge_livesum_{dead}.db",
        f"gauge_livemostrecent_{dead}.db",
        f"gauge_livesum_{os.getpid()}.db",
        f"counter_{dead}.db",  # counts of a process gone stay in the sums
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    exposition.forget_dead()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
    exposition.mark_dead()  # this process exits: its live gauges go too
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{dead}.db"]
