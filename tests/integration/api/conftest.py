"""The running API: one app per test module over the session's real PostgreSQL.

A module shapes its app with two module-level names: ``API_CONFIG`` (the ApiConfig fields
it overrides) and ``seed_api(api)`` (the users, keys and data its tests start from). The
way an app is started and stopped is the same for every module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.api import Api, running_api


@pytest.fixture(scope="module")
def api(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    module = request.module
    config: dict[str, Any] = getattr(module, "API_CONFIG", {})
    seed: Callable[[Api], None] | None = getattr(module, "seed_api", None)
    home = tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[-1])
    with running_api(database_url, home, **config) as running:
        if seed is not None:
            seed(running)
        yield running
