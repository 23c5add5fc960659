"""Where tests leave files for people to look at (screenshots), and how the run names it."""

from __future__ import annotations

from pathlib import Path

import pytest

#: the folder a test wrote artifacts to in this run, printed in the run's summary
SCREENSHOTS = pytest.StashKey[Path]()
