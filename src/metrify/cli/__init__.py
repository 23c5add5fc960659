"""The ``metrify`` command: one module per command group."""

from metrify.cli.main import app, main

__all__ = ["app", "main"]
