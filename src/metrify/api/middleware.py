"""One pure-ASGI middleware for what every answer needs (cheaper than a stack of them).

Request id, body-size limits (by Content-Length up front, and counted while streaming
for chunked bodies), security headers, the Prometheus request metrics, and the hand-off
to the hot paths (:mod:`metrify.api.hot`). It runs on every request, so it does little:
request ids come from a counter (not an ``os.urandom`` call each), header lists and
metric children are built once.

It is also where an unhandled error becomes its 500: Starlette answers crashes from its
outermost layer, outside every user middleware, so that answer would carry neither the
security headers nor the request id the log line names. Catching here keeps every
answer, a crash's included, the same shape.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrify.api.problems import Problem, internal_error_response, problem_response

log = logging.getLogger(__name__)

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

DENIED = Counter(
    "metrify_api_denied",
    "API requests refused for who sent them: 401 (no or bad credential), 403 (not "
    "permitted), 429 (rate limited)",
    ["status"],
)
#: children made up front: the series exist (at 0) before the first refusal, and the
#: per-request cost is one dict lookup, no ``labels()`` call
_DENIED = {status: DENIED.labels(str(status)) for status in (401, 403, 429)}

#: a client's own request id is kept only when it is short and plain: it goes into a
#: response header, log lines and audit rows. ``fullmatch``: ``$`` would let a trailing
#: newline through.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
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
_EXTRA_API = (*_HEADERS, *_API_ONLY)
_EXTRA_DOCS = tuple(_HEADERS)

#: answers a request and returns True, or returns False having sent nothing
HotPath = Callable[[Scope, Receive, Send], Awaitable[bool]]


class _RequestIds:
    """32 hex characters, unique per process: a random prefix and a counter. Ids name
    requests in logs and audit rows; they need not be unguessable, only unique, and a
    counter is cheaper than a random UUID per request. Re-seeded in forked workers."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _RequestIds()
_observers: dict[tuple[str, str, int], tuple[Any, Any]] = {}


class BodyTooLarge(Problem):
    """Raised while reading a body past the limit; the problem handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class Guard:
    def __init__(
        self, app: ASGIApp, *, max_body: int, max_json: int, hot: HotPath | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_json = max_json
        self.hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        given = length = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                if given is None:
                    given = value.decode("latin-1")
            elif key == b"content-length" and length is None:
                length = value.decode("latin-1")
        rid = given if given and _REQUEST_ID.fullmatch(given) else _ids.next()
        scope["metrify.request_id"] = rid
        status_box = [0]  # the status sent; 0 until the answer has started
        extra = (
            *(_EXTRA_DOCS if path.startswith(_DOCS) else _EXTRA_API),
            (b"x-request-id", rid.encode()),
        )

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        query: bytes = scope.get("query_string", b"")
        try:
            if b"%00" in query or "\x00" in path:
                # PostgreSQL text cannot hold NUL; refuse it up front, for every parameter.
                response = problem_response(422, "NUL characters are not allowed", instance=path)
                await response(scope, receive, send_wrapped)
            # A hot read (no body) is answered here, past the framework; see metrify.api.hot.
            elif (
                self.hot is None
                or length is not None
                or not await self.hot(scope, receive, send_wrapped)
            ):
                await self._dispatch(scope, receive, send_wrapped, path, length)
        except Exception as exc:
            if status_box[0]:  # the answer has begun: too late for another
                self._observe(scope, status_box[0], started)
                raise
            if isinstance(exc, BodyTooLarge):
                response = problem_response(413, exc.detail, instance=path)
            else:
                log.error(
                    "unhandled error on %s %s (request %s): %s",
                    scope["method"],
                    path,
                    rid,
                    type(exc).__name__,
                    exc_info=exc,
                )
                response = internal_error_response(path)
            await response(scope, receive, send_wrapped)
        # an app that returned without answering: the server answers 500
        self._observe(scope, status_box[0] or 500, started)

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, path: str, length: str | None
    ) -> None:
        """The body limits, then the app: a declared length past the limit is refused
        before anything is read, an undeclared one is counted while it streams in."""
        limit = self.max_body if _INGEST.match(path) else self.max_json
        if length is not None and (not length.isdigit() or int(length) > limit):
            response = problem_response(
                413 if length.isdigit() else 400,
                f"request body larger than {limit} bytes"
                if length.isdigit()
                else "invalid Content-Length",
                instance=path,
            )
            await response(scope, receive, send)
            return

        seen = [0]

        async def receive_counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, receive_counted, send)

    @staticmethod
    def _observe(scope: Scope, status: int, started: float) -> None:
        route: Any = scope.get("route")
        name = getattr(route, "path", None) or "unmatched"
        key = (scope["method"], name, status)
        children = _observers.get(key)
        if children is None:
            children = (REQUESTS.labels(key[0], name, str(status)), LATENCY.labels(name))
            if len(_observers) < 10_000:  # methods come from clients: stay bounded
                _observers[key] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)
        denied = _DENIED.get(status)
        if denied is not None:
            denied.inc()
