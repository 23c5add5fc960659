"""The app ``metrify serve`` runs (the API with the dashboard) over the session's
PostgreSQL, one per test module, seeded by the module's ``seed_api(api)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support.api import Api, running_api
from support.artifacts import SCREENSHOTS


@pytest.fixture(scope="module")
def api(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    module = request.module
    seed: Callable[[Api], None] | None = getattr(module, "seed_api", None)
    home = tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[-1])
    with running_api(database_url, home, dashboard=True) as running:
        if seed is not None:
            seed(running)
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the browser tests left their screenshots (the run's artifacts)."""
    folder = terminalreporter.config.stash.get(SCREENSHOTS, None)
    if folder is not None:
        terminalreporter.write_line(f"dashboard screenshots: {folder}")
