"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) that work offline.

FastAPI's own pages load their scripts and styles from a public CDN, so on a utility's
closed network they are blank. Here the assets come from the PyPI package
``fastapi-offline`` (installed with Metrify, version pinned) and are served by this
server under ``/docs/static``: every URL a page names is on the server's own origin.

Each page carries a Content-Security-Policy that allows exactly that: scripts and
styles from this origin, plus the page's own inline script by its SHA-256 hash (never
``'unsafe-inline'`` for scripts). Styles may be inline (both UIs set style attributes);
ReDoc runs a worker from a ``blob:`` URL. Both pages were checked in a headless
Chromium under this policy: complete, with no violation but ReDoc's footer logo, which
it names on its vendor's CDN and which the policy (rightly) does not load.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

__all__ = ["DOCS", "OAUTH2_REDIRECT", "REDOC", "STATIC", "install"]

DOCS = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
STATIC = "/docs/static"

#: Swagger UI's settings: FastAPI's defaults, without the badge that asks a public
#: validator about the schema
_SWAGGER_PARAMETERS = {
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "showExtensions": True,
    "showCommonExtensions": True,
    "validatorUrl": None,
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_POLICY = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def assets() -> Path:
    """The folder of the packaged Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    """``page`` with a Content-Security-Policy that admits its own inline scripts."""
    body = bytes(page.body).decode()
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(body)
    )
    page.headers["content-security-policy"] = _POLICY.format(hashes=hashes)
    return page


def install(app: FastAPI) -> None:
    """Serve the pages and their assets on ``app`` (made with ``docs_url=None`` and
    ``redoc_url=None``, so FastAPI's CDN pages are not there as well)."""
    openapi = app.openapi_url or "/openapi.json"
    app.mount(STATIC, StaticFiles(directory=assets()), name="docs-static")

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
                swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
                swagger_favicon_url=f"{root}{STATIC}/favicon.png",
                swagger_ui_parameters=_SWAGGER_PARAMETERS,
            )
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_policy(
            get_redoc_html(
                openapi_url=f"{root}{openapi}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{STATIC}/favicon.png",
                with_google_fonts=False,
            )
        )
