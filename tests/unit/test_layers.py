"""The import contracts in ``pyproject.toml`` hold for the tree, and they would catch each
wrong-way import the layered design removed.

Each case copies the package, adds one import that once tangled the tree (the settings
importing a stage; a stage importing the pipeline, the stores or a sibling stage; the
metrics importing the pipeline; a router importing a router; the CLI's command modules
importing each other in a ring; the API running SQL itself), and expects
``lint-imports`` to fail on it.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO

LINT = Path(sys.executable).with_name("lint-imports")
SRC = REPO / "src" / "metrify"


def lint(package_root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the repository's contracts against the ``metrify`` package found in
    ``package_root`` (first on the path, before the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo", str(REPO / "pyproject.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    done = lint(REPO / "src", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


# (file under src/metrify, the import added to it, a word of the contract it breaks)
WRONG_WAY = [
    ("settings/__init__.py", "import metrify.anomaly.baseline", "Layers"),
    ("quality/rules.py", "import metrify.pipeline.stages", "Layers"),
    ("anomaly/meters.py", "import metrify.stores.postgres", "Stages touch no storage"),
    ("quality/estimate.py", "import psycopg", "Stages touch no storage"),
    ("ops/metrics.py", "import metrify.pipeline.stages", "Layers"),
    ("contracts/records.py", "import metrify.settings", "Layers"),
    ("sources/decode.py", "import metrify.quality.rules", "Layers"),
    ("simulation/fleet.py", "import metrify.sources.kafka", "Layers"),
    ("api/routers/edits.py", "import metrify.api.routers.query", "No router imports another"),
    ("api/routers/query.py", "import psycopg", "The API speaks HTTP only"),
    ("cli/common.py", "import metrify.cli.ingest", "No import cycles"),
    ("api/auth/principal.py", "import metrify.api.state", "No import cycles"),
]


@pytest.mark.parametrize(("path", "line", "contract"), WRONG_WAY, ids=[w[0] for w in WRONG_WAY])
def test_a_wrong_way_import_fails_the_lint(
    path: str, line: str, contract: str, tmp_path: Path
) -> None:
    root = tmp_path / "src"
    shutil.copytree(SRC, root / "metrify", ignore=shutil.ignore_patterns("__pycache__"))
    target = root / "metrify" / path
    assert target.is_file(), f"{path} no longer exists: update this case"
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    done = lint(root, tmp_path)
    assert done.returncode != 0, done.stdout
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, done.stdout


SQL = re.compile(
    r"^\s*(SELECT|WITH \w+ AS|INSERT INTO|UPDATE \w+ SET|DELETE FROM|COPY \w+|CREATE (TABLE|INDEX)"
    r"|ALTER TABLE|DROP TABLE|TRUNCATE)\b"
)


def sql_outside_the_stores(root: Path) -> list[str]:
    """``file:line`` of every string literal (f-string pieces included) outside
    ``stores/`` that opens with an SQL statement."""
    found: list[tuple[str, int]] = []
    for path in sorted(root.rglob("*.py")):
        if "stores" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and SQL.match(node.value)
            ):
                found.append((str(path.relative_to(root)), node.lineno))
    return [f"{path}:{line}" for path, line in sorted(found)]


def test_sql_is_written_only_in_the_stores() -> None:
    assert sql_outside_the_stores(SRC) == []


def test_the_sql_check_sees_statements_in_any_form(tmp_path: Path) -> None:
    """The check itself: plain, f-string and triple-quoted statements are all found."""
    pkg = tmp_path / "metrify"
    (pkg / "stores").mkdir(parents=True)
    (pkg / "stores" / "ok.py").write_text('Q = "SELECT 1 FROM readings"\n')
    (pkg / "api.py").write_text(
        'A = "SELECT id FROM users WHERE name = %s"\n'
        'B = f"UPDATE anomalies SET status = {1}"\n'
        'C = """\n    INSERT INTO audit_log (actor) VALUES (%s)\n"""\n'
        'D = "Select the rows the caller may see"\n'
    )
    assert sql_outside_the_stores(pkg) == ["api.py:1", "api.py:2", "api.py:3"]
