"""A server span per HTTP request, when tracing is on (:mod:`metrify.ops.tracing`).

The app adds this middleware only when tracing is on, so with tracing off a request
does not even pass through it. It wraps everything else (the
:class:`~metrify.api.middleware.Guard` included), so the span covers the whole answer,
a crash's 500 too. The span continues a caller's trace (W3C ``traceparent``) and is
named, once the router or a hot path has matched it, after the route's template
(``GET /v1/meters/{meter_id}/latest``), never the raw path, so traces group by route as
the request metrics do. Whatever the request does underneath (a pipeline run, a query)
is a child of it.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrify.ops import tracing


class TraceRequests:
    """Pure ASGI: one ``server`` span per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        span = tracing.start_span(
            method,
            {
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
            },
            kind="server",
            context=tracing.extract_http(scope["headers"]),
        )
        status = [0]

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            with tracing.current(span):
                await self.app(scope, receive, send_traced)
        except BaseException as exc:
            span.record_exception(exc)
            tracing.failed(span, type(exc).__name__)
            raise
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None)
            if template:
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
            code = status[0] or 500
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                tracing.failed(span, str(code))
            span.end()
