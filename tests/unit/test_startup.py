"""What importing metrify sets up before Polars loads: the allocator's page decay."""

from __future__ import annotations

import os
import subprocess
import sys

OURS = "background_thread:true,dirty_decay_ms:20000,muzzy_decay_ms:20000"


def _child_conf(env: dict[str, str]) -> str:
    """_RJEM_MALLOC_CONF as a child Python process sees it once it imported metrify."""
    code = "import os, metrify; print(os.environ['_RJEM_MALLOC_CONF'])"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_parent_that_imported_polars_does_not_impose_its_default_on_metrify() -> None:
    # what a Python parent (a bench, an orchestrator) hands down after `import polars`
    code = "import os, polars; print(os.environ['_RJEM_MALLOC_CONF'])"
    clean = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    inherited = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "dirty_decay_ms:500" in inherited  # Polars' own default
    assert _child_conf({**clean, "_RJEM_MALLOC_CONF": inherited}) == OURS
    assert _child_conf(clean) == OURS


def test_a_setting_someone_chose_is_kept() -> None:
    chosen = "dirty_decay_ms:0,muzzy_decay_ms:0"
    assert _child_conf({**os.environ, "_RJEM_MALLOC_CONF": chosen}) == chosen


def test_the_command_starts_without_scikit_learn_or_scipy() -> None:
    # `metrify --help` imports every command group; scikit-learn and SciPy (clustering,
    # baselines' statistics) took about a second of every command's start, a file load's
    # included, so they load when a command first needs them.
    code = (
        "import sys; from metrify.cli import load_commands; load_commands(['--help']);"
        " print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout
    assert "'sklearn'" not in loaded
    assert "'scipy'" not in loaded
    assert "'polars'" in loaded  # the check would pass vacuously if nothing loaded
