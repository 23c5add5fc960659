"""The FastAPI application: ``create_app(settings)`` wires routers, errors and guards.

One app per worker process. Everything below ``/v1`` needs a principal whose role grants
the route's permission (see :mod:`metrify.api.deps`); ``/health``, ``/ready``,
``/metrics``, ``/openapi.json``, ``/docs`` and ``/redoc`` (served offline, see
:mod:`metrify.api.docs`) are open. The busiest read also has a hot
path in front of the router (:mod:`metrify.api.hot`) that makes the same decisions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from metrify import __version__
from metrify.api import docs, problems
from metrify.api.hot import HotPaths
from metrify.api.middleware import Guard
from metrify.api.replica import ReadYourWrites
from metrify.api.responses import ORJSONResponse
from metrify.api.routers import (
    admin,
    anomalies,
    auth,
    baselines,
    edits,
    energy,
    export,
    forecasts,
    grid,
    ingest,
    ops,
    patterns,
    query,
    reference,
)
from metrify.api.state import AppState
from metrify.ops import exposition, tracing
from metrify.settings import Settings, get_settings

DESCRIPTION = """
Smart-metering data over HTTP: push readings, grid measurements and weather through the
same pipeline as files and Kafka; read them back aggregated in SQL; export in bulk.

Authenticate with `POST /v1/auth/token` (OAuth2 password grant) and send
`Authorization: Bearer <access token>`, or send an API key as `X-API-Key` (or as the
bearer token). Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # first: the pools the state builds trace their statements when tracing is on
    traced = tracing.configure(settings.tracing)
    state = AppState.build(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        exposition.forget_dead()  # a worker killed outright left its live gauges
        await state.open()
        try:
            yield
        finally:
            await state.close()
            exposition.mark_dead()

    # FastAPI traces requests itself (a server span per request, named by its route,
    # continuing a caller's traceparent, outside every middleware): on when Metrify's
    # tracing is, with its provider; never its OpenTelemetry metrics or logs (Prometheus
    # and the JSON log have those)
    app = FastAPI(
        telemetry={
            "tracing": traced,
            "tracer_provider": tracing.provider(),
            "metrics": False,
            "logs": False,
        },
        title="Metrify API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
        docs_url=None,  # FastAPI's pages load from a CDN; ours are served offline
        redoc_url=None,
    )
    app.state.metrify = state
    problems.install(app)
    docs.install(app)
    for module in (
        ops,
        auth,
        ingest,
        reference,
        query,
        energy,
        grid,
        patterns,
        baselines,
        export,
        edits,
        admin,
        anomalies,
        forecasts,
    ):
        for route in module.router.routes:
            # FastAPI answers a body it cannot parse (broken JSON) with 400 before the
            # route runs: every route that takes a body documents it
            if isinstance(route, APIRoute) and route.body_field is not None:
                route.responses.setdefault(400, problems.PROBLEM_SCHEMA)
        # every route but the probes needs the database: its 503 is part of its contract
        app.include_router(
            module.router, responses=None if module is ops else problems.UNAVAILABLE_RESPONSES
        )
    cfg = settings.api
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "Idempotency-Key",
                "X-Request-ID",
                "X-Metrify-Min-LSN",
            ],
            expose_headers=["X-Request-ID", "Retry-After", "Idempotency-Replayed", "X-Metrify-LSN"],
            max_age=600,
        )
    if state.reads is not None:
        app.add_middleware(ReadYourWrites, routing=state.reads)
    app.add_middleware(
        Guard,
        max_body=cfg.max_body_bytes,
        max_json=cfg.max_json_bytes,
        hot=HotPaths(app, state) if cfg.hot_paths else None,
    )
    return app
