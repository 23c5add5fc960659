"""``metrify serve`` as a real server process on a free port, for tests over TCP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``metrify serve ARGS`` on a free port (environment: this process's, plus
    ``env``), wait until ``/ready`` says ready, yield its base URL; stop it (SIGTERM to
    its process group: the supervisor and its workers) on the way out."""
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("metrify")), "serve", "--port", str(port), *args],
        env={**os.environ, "METRIFY_LOG_LEVEL": "WARNING", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).json()["status"] == "ready":
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
