"""Where the repository is, for tests that run its scripts or its virtualenv's Python."""

from __future__ import annotations

from pathlib import Path

#: the repository's root (``tests/support/paths.py`` is two folders below it)
REPO = Path(__file__).resolve().parents[2]
