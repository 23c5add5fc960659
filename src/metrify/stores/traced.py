"""A span per SQL statement, when tracing is on: psycopg cursors that trace ``execute``.

Every connection Metrify opens (the pools of a server, a command's connections) takes
:func:`cursor_options`: while tracing is off that is nothing at all, so the driver's own
cursor runs untouched; on, it names these cursor classes, whose ``execute`` is a client
span ``postgres SELECT`` (the statement's first keyword, so names stay few) carrying the
statement's text, never its parameters (a reading's value, a password hash). The store's
larger steps (a batch write, a history load) have spans of their own around these
(:func:`metrify.ops.tracing.db`); COPY streams show in those.
"""

from __future__ import annotations

from typing import Any, Self

import psycopg
from psycopg.abc import Params, Query
from psycopg.rows import Row

from metrify.ops import tracing

__all__ = ["TracedAsyncCursor", "TracedCursor", "cursor_options"]

#: the longest statement text a span carries (a generated upsert can be long)
MAX_TEXT = 2_000


def cursor_options(asynchronous: bool = False) -> dict[str, Any]:
    """Keyword arguments for a psycopg connection: the traced cursor class when tracing
    is on, else none."""
    if not tracing.enabled():
        return {}
    return {"cursor_factory": TracedAsyncCursor if asynchronous else TracedCursor}


def _attributes(query: Query, conn: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(query, str):
        text = query
    elif isinstance(query, bytes):
        text = query.decode("utf-8", "replace")
    else:
        try:
            text = query.as_string(conn) if hasattr(query, "as_string") else ""
        except Exception:  # a span never fails a statement
            text = ""
    words = text.split(None, 1)
    verb = words[0].upper() if words else "SQL"
    return f"postgres {verb}", {**tracing.DB_SYSTEM, "db.query.text": text[:MAX_TEXT]}


class TracedCursor(psycopg.Cursor[Row]):
    """A cursor whose ``execute`` is a span (see the module)."""

    def execute(self, query: Query, params: Params | None = None, **kwargs: Any) -> Self:
        if not tracing.enabled():
            return super().execute(query, params, **kwargs)  # type: ignore[arg-type]
        name, attributes = _attributes(query, self.connection)
        with tracing.span(name, attributes, kind="client"):
            return super().execute(query, params, **kwargs)  # type: ignore[arg-type]


class TracedAsyncCursor(psycopg.AsyncCursor[Row]):
    """The async twin of :class:`TracedCursor` (the API's reads)."""

    async def execute(self, query: Query, params: Params | None = None, **kwargs: Any) -> Self:
        if not tracing.enabled():
            return await super().execute(query, params, **kwargs)  # type: ignore[arg-type]
        name, attributes = _attributes(query, self.connection)
        with tracing.span(name, attributes, kind="client"):
            return await super().execute(query, params, **kwargs)  # type: ignore[arg-type]
