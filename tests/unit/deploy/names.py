"""What the deployment files may name: Metrify's settings as environment variables, the
``metrify`` commands they run, and where those files are.

The names come from the code (``metrify.settings`` and the ``os.environ`` reads in
``src/metrify``), never from the deployment files, so a misspelt or removed setting in a
compose file or a manifest fails a test instead of being silently ignored at run time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import typer
from pydantic import BaseModel

# typer 0.29 carries its own copy of click; its commands are of these classes
from typer._click.core import Command, Context
from typer._click.exceptions import UsageError

from metrify.cli import app
from metrify.settings import Settings
from metrify.settings.kafka import ENV_PREFIX as KAFKA_PREFIX
from metrify.settings.kafka import KafkaSettings
from support.paths import REPO

DEPLOY = REPO / "deploy"
SRC = REPO / "src" / "metrify"


def _nested(prefix: str, model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        names.add(env)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _nested(env + "__", annotation)
    return names


def setting_names() -> set[str]:
    """Every ``METRIFY_*`` variable Metrify reads: the settings (nested ones with ``__``),
    the Kafka client's named settings, and the few read directly from the environment."""
    names = _nested("METRIFY_", Settings)
    names |= {KAFKA_PREFIX + n.upper() for n in KafkaSettings.model_fields if n != "options"}
    read = re.compile(r"""environ(?:\.get\(|\[)\s*["'](METRIFY_[A-Z0-9_]+)["']""")
    for path in SRC.rglob("*.py"):
        names |= set(read.findall(path.read_text()))
    return names


def unknown_settings(env: Sequence[str]) -> list[str]:
    """The ``METRIFY_*`` names among ``env`` that Metrify does not read."""
    known = setting_names()
    return sorted(n for n in env if n.startswith("METRIFY_") and n not in known)


def parse_command(args: Sequence[str]) -> Context:
    """Parse ``metrify ARGS`` with the real CLI (options, types, choices) without running
    it; a wrong command or option raises the CLI's usage error."""
    command: Command = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "get_command"):  # a group: descend by the next word
        name, rest = rest[0], rest[1:]
        sub = command.get_command(Context(command), name)
        if sub is None:
            raise UsageError(f"no command {name!r} in metrify")
        command = sub
    return command.make_context("metrify", rest)


def files(pattern: str, under: Path = DEPLOY) -> list[Path]:
    return sorted(under.glob(pattern))
