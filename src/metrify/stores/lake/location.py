"""Where the lake lives: a local folder or an object store URL, as each library wants it.

Delta tables are opened by delta-rs, which takes a URI and a dict of ``storage_options``
(its object_store reads the usual ``AWS_*`` variables too); the old-layout check and the
conversion list files through fsspec and pyarrow. One lake URL feeds all three:
``/srv/lake``, ``file:///srv/lake`` or ``s3://bucket/prefix``, where credentials may ride
in the URL (``s3://KEY:SECRET@bucket/prefix``) and are then passed as options, never kept
in a table URI that could be logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import fsspec
import pyarrow.fs as pafs


def _filesystem(url: str) -> tuple[Any, str]:
    """A pyarrow filesystem and root path for a lake URL or folder."""
    if "://" not in url or url.startswith("file://"):
        path = url.removeprefix("file://")
        return pafs.LocalFileSystem(), path
    fs, root = fsspec.core.url_to_fs(url)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root


@dataclass(frozen=True)
class Location:
    """A lake root as delta-rs opens it: ``base`` (no credentials) and its options."""

    base: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return "://" not in self.base

    def table(self, kind: str) -> str:
        """The URI of one kind's table."""
        return f"{self.base.rstrip('/')}/{kind}"


def _s3_options() -> dict[str, str]:
    """What delta-rs needs beyond what its object_store finds in the environment.

    A plain-HTTP endpoint (an S3-compatible server in a test or on premises) must be
    allowed explicitly. Commits on S3 rely on its conditional writes (``If-None-Match``,
    which AWS and current S3-compatible servers honour), so no lock table is needed."""
    options: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["AWS_REGION"] = region
    return options


def locate(url: str) -> Location:
    """The delta-rs location of a lake URL or folder."""
    if "://" not in url:
        return Location(os.path.abspath(url))
    if url.startswith("file://"):
        return Location(os.path.abspath(url.removeprefix("file://")))
    parts = urlsplit(url)
    options = _s3_options() if parts.scheme in ("s3", "s3a") else {}
    host = parts.hostname or ""
    if parts.username:
        options["AWS_ACCESS_KEY_ID"] = unquote(parts.username)
        options["AWS_SECRET_ACCESS_KEY"] = unquote(parts.password or "")
    return Location(f"{parts.scheme}://{host}{parts.path}".rstrip("/"), options)
