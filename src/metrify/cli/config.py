"""``metrify config``: the effective settings, secrets masked.

Every setting is shown, the Kafka client's too (``METRIFY_KAFKA_*`` are read by their own
settings class, not by :class:`~metrify.settings.Settings`), and nothing secret is: both
displays go through :mod:`metrify.settings.masking`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from metrify.cli.apps import app
from metrify.cli.common import UserError, console, friendly, load_settings, settings_error
from metrify.settings.kafka import KafkaSettings

__all__ = ["config_cmd"]


def _kafka() -> dict[str, Any]:
    """The Kafka settings for display, configured or not; a bad value is a one-line error."""
    try:
        kafka = KafkaSettings()
    except Exception as exc:  # pydantic ValidationError: a bad METRIFY_KAFKA_* value
        raise UserError(f"invalid Kafka configuration: {settings_error(exc)}") from None
    return kafka.masked()


@app.command("config")
@friendly
def config_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Print the effective settings, Kafka's included (secrets masked)."""
    values = load_settings().masked()
    values["kafka"] = _kafka()
    if as_json:
        sys.stdout.write(orjson.dumps(values).decode() + "\n")
        return
    table = Table(show_header=True)
    table.add_column("setting")
    table.add_column("value")
    for key, value in values.items():
        # Text, not a markup string: a value holding "[" or ":name:" is shown as it is
        table.add_row(key, Text("" if value is None else str(value)))
    console.print(table)
