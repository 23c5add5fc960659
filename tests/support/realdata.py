"""The real public data in ../shared/data, and how its London households map onto the
readings contract."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.paths import REPO

#: the options that map the London households' columns onto the contract
LONDON_MAP = [
    "--map",
    "meter_id=LCLid",
    "--map",
    "ts=tstp",
    "--map",
    "import_kwh=energy(kWh/hh)",
    "--interval",
    "1800",
]


def data_folder() -> Path:
    """Where the real data is expected: ``METRIFY_SHARED_DATA`` or ../shared/data."""
    return Path(os.environ.get("METRIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data() -> Path:
    """The real public data folder; missing data fails in CI and skips elsewhere."""
    root = data_folder()
    if not root.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data folder {root} is missing (CI=true)")
        pytest.skip(f"real data folder {root} not found")
    return root
