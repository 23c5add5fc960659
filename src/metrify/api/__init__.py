"""The REST API: FastAPI app, routers, authentication, RBAC, audit.

Importing this package is cheap (the settings import :mod:`metrify.settings.api`);
:func:`create_app` loads FastAPI only when a server or a test asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metrify.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from metrify.api.app import create_app

        return create_app
    raise AttributeError(name)
