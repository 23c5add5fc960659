"""The API's app with the dashboard in it: one app, one sign-in, one access table."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from metrify.api import create_app as create_api
from metrify.settings import Settings, get_settings
from metrify.web import pages
from metrify.web.session import NoSession

STATIC = Path(__file__).parent / "static"


class Static(StaticFiles):
    """The packaged assets, cached by browsers for an hour (they change with a release)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def install(app: FastAPI) -> None:
    """Add the pages (``/``, ``/meters``, ``/anomalies``, ``/grid``, ``/live``) and the
    packaged static files (``/static``) to an API app."""
    app.include_router(pages.router)
    app.mount("/static", Static(directory=STATIC), name="static")

    @app.exception_handler(NoSession)
    async def _signed_out(request: Request, exc: Exception) -> Response:
        return pages.to_sign_in(request)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app (:func:`metrify.api.create_app`) with the dashboard installed."""
    app = create_api(settings or get_settings())
    install(app)
    return app
