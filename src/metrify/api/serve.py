"""The ASGI entry point the server processes import (``metrify.api.serve:app``).

Each worker builds its own app (pools, caches, limits) from the environment that
``metrify serve`` prepared.
"""

from __future__ import annotations

from metrify.api.app import create_app
from metrify.ops.logging import configure
from metrify.settings import get_settings

_settings = get_settings()
configure(_settings.log_level)
app = create_app(_settings)
