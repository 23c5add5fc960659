"""``metrify db``: the operational PostgreSQL store's schema, URL and embedded server."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from metrify.cli.apps import db_app
from metrify.cli.common import UserError, console, friendly, load_settings
from metrify.stores import database, embedded

__all__ = ["db_stop", "db_upgrade", "db_url"]


@db_app.command("upgrade")
@friendly
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create or upgrade the schema as its owner (runs automatically on first use)."""
    settings = load_settings()
    url = database.owner_url(settings)
    database.upgrade(url, revision)
    database.database_url(settings)  # on the embedded server: its app role, up to date
    console.print(f"schema at {database.current_revision(url)}")


@db_app.command("url")
@friendly
def db_url(
    owner: Annotated[bool, typer.Option("--owner", help="the URL migrations run with")] = False,
) -> None:
    """Print the URL the app connects with (starts the embedded server if needed)."""
    settings = load_settings()
    url = database.owner_url(settings) if owner else database.database_url(settings)
    sys.stdout.write(url + "\n")


@db_app.command("stop")
@friendly
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    settings = load_settings()
    if settings.database_url is not None:
        raise UserError("METRIFY_DATABASE_URL is set: that server is not Metrify's to stop")
    stopped = embedded.stop(settings.home)
    console.print("stopped" if stopped else "not running")
