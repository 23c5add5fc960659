"""``metrify CMD`` imports only CMD's module; the table that says which is complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer

import metrify.cli
from metrify.cli import COMMANDS, MODULES

CLI = Path(metrify.cli.__file__).parent
#: modules of the CLI that declare no command
SHARED = {"__init__", "apps", "common", "options", "progress"}


def _declaring(app: typer.Typer) -> set[str]:
    """Modules whose functions are the commands (and group callbacks) of ``app``."""
    found = {c.callback.__module__ for c in app.registered_commands if c.callback}
    for group in app.registered_groups:
        assert group.typer_instance is not None
        found |= _declaring(group.typer_instance)
    if app.registered_callback is not None and app.registered_callback.callback is not None:
        found.add(app.registered_callback.callback.__module__)
    return found


def _top_level() -> dict[str, set[str]]:
    """Every top-level command and group of the full app, with the modules declaring it."""
    app = metrify.cli.app
    names: dict[str, set[str]] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        name = command.name or command.callback.__name__.replace("_", "-")
        names[name] = {command.callback.__module__}
    for group in app.registered_groups:
        assert group.name is not None and group.typer_instance is not None
        names[group.name] = _declaring(group.typer_instance)
    return names


def test_the_table_names_every_command_and_the_modules_declaring_it() -> None:
    declared = _top_level()
    assert set(COMMANDS) == set(declared)
    for name, modules in declared.items():
        assert modules == {f"metrify.cli.{m}" for m in COMMANDS[name]}, name


def test_every_command_module_is_listed_once() -> None:
    on_disk = {p.stem for p in CLI.glob("*.py")} - SHARED
    assert sorted(MODULES) == sorted(on_disk)
    assert len(set(MODULES)) == len(MODULES)


def _loaded_after(args: list[str]) -> list[str]:
    """The CLI modules a fresh interpreter holds once ``metrify ARGS`` has built its app."""
    code = (
        "import json, sys; from metrify.cli import load_commands;"
        f" load_commands({args!r});"
        " print(json.dumps(sorted(m for m in sys.modules if m.startswith('metrify.cli.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout)
    return [m.removeprefix("metrify.cli.") for m in loaded]


def test_a_command_loads_its_own_module_only() -> None:
    loaded = set(_loaded_after(["ingest", "readings", "x.csv"]))
    assert "ingest" in loaded
    assert not loaded & (set(MODULES) - {"ingest"})


def test_help_and_unknown_words_load_every_command() -> None:
    for args in ([], ["--help"], ["ingset"]):
        assert set(MODULES) <= set(_loaded_after(args)), args


def _metrify(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from metrify.cli import main; sys.argv[0] = 'metrify'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )


def test_a_group_lists_its_commands_and_a_typo_gets_a_suggestion() -> None:
    done = _metrify("grid", "--help")
    assert done.returncode == 0
    for command in ("loading", "losses"):
        assert command in done.stdout
    typo = _metrify("ingset")
    assert typo.returncode == 2
    assert "ingest" in typo.stderr
