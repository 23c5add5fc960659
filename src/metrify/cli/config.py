"""``metrify config``: the effective settings, secrets masked."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.table import Table

from metrify.cli.apps import app
from metrify.cli.common import console, friendly, load_settings

__all__ = ["config_cmd"]


@app.command("config")
@friendly
def config_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Print the effective settings (secrets masked)."""
    values = load_settings().masked()
    if as_json:
        sys.stdout.write(orjson.dumps(values).decode() + "\n")
        return
    table = Table(show_header=True)
    table.add_column("setting")
    table.add_column("value")
    for key, value in values.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
