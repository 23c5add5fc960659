"""The ASGI entry point ``metrify serve`` runs (``metrify.web.serve:app``): the API and
the dashboard in one app, built by each worker from the environment ``metrify serve``
prepared."""

from __future__ import annotations

from metrify.ops.logging import configure
from metrify.settings import get_settings
from metrify.web.app import create_app

_settings = get_settings()
configure(_settings.log_level)
app = create_app(_settings)
