"""The Grafana generator (deploy/grafana/build.py, outside the package) loaded as a
module, and every query its dashboards hold."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from support.paths import REPO

FOLDER = REPO / "deploy" / "grafana"


def load_build() -> ModuleType:
    """deploy/grafana/build.py as the module ``grafana_build``."""
    spec = importlib.util.spec_from_file_location("grafana_build", FOLDER / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["grafana_build"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def targets(source: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard file, panel, target) of every target on ``source`` (``postgres`` or
    ``prometheus``) in the checked-in dashboards, read from the JSON files themselves."""
    import json

    for path in sorted((FOLDER / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] == source:
                    yield path.name, panel, target
