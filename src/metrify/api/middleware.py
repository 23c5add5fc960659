"""One pure-ASGI middleware for what every answer needs (cheaper than a stack of them).

Request id, body-size limits (by Content-Length up front, and counted while streaming
for chunked bodies), security headers, and the Prometheus request metrics.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrify.api.problems import Problem, problem_response

REQUESTS = Counter(
    "metrify_api_requests",
    "API requests by method, route and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "metrify_api_request_seconds",
    "API request latency by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_INGEST = re.compile(r"^/v1/(readings|grid|weather)/?$")
_DOCS = ("/docs", "/redoc", "/docs/oauth2-redirect")
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
]
_API_ONLY = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


class BodyTooLarge(Problem):
    """Raised while reading a body past the limit; the problem handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class Guard:
    def __init__(self, app: ASGIApp, *, max_body: int, max_json: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_json = max_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        given = _header(scope, b"x-request-id")
        rid = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope["metrify.request_id"] = rid
        limit = self.max_body if _INGEST.match(path) else self.max_json
        length = _header(scope, b"content-length")
        status_box = [500]
        extra = [*_HEADERS, *([] if path.startswith(_DOCS) else _API_ONLY)]
        extra.append((b"x-request-id", rid.encode()))

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or "\x00" in path:
            # PostgreSQL text cannot hold NUL; refuse it up front, for every parameter.
            response = problem_response(422, "NUL characters are not allowed", instance=path)
            await response(scope, receive, send_wrapped)
            self._observe(scope, status_box[0], started)
            return
        if length is not None and (not length.isdigit() or int(length) > limit):
            response = problem_response(
                413 if length.isdigit() else 400,
                f"request body larger than {limit} bytes"
                if length.isdigit()
                else "invalid Content-Length",
                instance=path,
            )
            await response(scope, receive, send_wrapped)
            self._observe(scope, status_box[0], started)
            return

        seen = [0]

        async def receive_counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise BodyTooLarge(limit)
            return message

        started_response = [False]

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                started_response[0] = True
            await send_wrapped(message)

        try:
            await self.app(scope, receive_counted, send_tracked)
        except BodyTooLarge:
            if started_response[0]:
                raise
            response = problem_response(
                413, f"request body larger than {limit} bytes", instance=path
            )
            await response(scope, receive, send_wrapped)
        self._observe(scope, status_box[0], started)

    @staticmethod
    def _observe(scope: Scope, status: int, started: float) -> None:
        route: Any = scope.get("route")
        name = getattr(route, "path", None) or "unmatched"
        REQUESTS.labels(scope["method"], name, str(status)).inc()
        LATENCY.labels(name).observe(time.perf_counter() - started)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None
