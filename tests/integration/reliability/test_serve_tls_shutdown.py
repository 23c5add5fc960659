"""``metrify serve`` over TLS, and its shutdown on SIGTERM, on one real server.

* TLS: with ``--ssl-certfile/--ssl-keyfile`` (a self-signed pair made here with
  ``cryptography``) the API answers HTTPS to a client that trusts the certificate,
  refuses one that does not, and does not speak plain HTTP on that port.
* SIGTERM, sent to the first process only (what Kubernetes and ``docker stop`` do; with
  ``--workers 2`` it is uvicorn's supervisor, which passes it on), lets a request in
  flight finish: its response arrives whole, its rows are stored, and the server exits 0
  afterwards, not before. The request is held in flight by a lock the test takes on the
  audit table (the last thing an ingest writes), so SIGTERM lands while it certainly runs.

One server start for both (a start of two workers is most of the test's time).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from metrify.api import users
from metrify.api.rbac import Role
from metrify.settings import Settings
from support.server import free_port
from support.waiting import until

pytestmark = pytest.mark.slow

METERS, INTERVALS = 5, 8
START = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, valid for a day, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "api.crt", folder / "api.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyfile.chmod(0o600)
    return certfile, keyfile


def _body() -> bytes:
    lines = ["meter_id,ts,interval_s,import_kwh"]
    for m in range(METERS):
        for i in range(INTERVALS):
            ts = START + dt.timedelta(minutes=15 * i)
            lines.append(f"TERM{m},{ts:%Y-%m-%dT%H:%M:%SZ},900,{0.25 + i * 0.01:.2f}")
    return ("\n".join(lines) + "\n").encode()


def _one(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_https_and_a_request_in_flight_outlives_sigterm(
    settings: Settings, conn: psycopg.Connection[tuple[object, ...]], tmp_path: Path
) -> None:
    certfile, keyfile = self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=str(certfile))
    key = users.create_key(conn, "head-end", Role.INGEST, created_by="test")["key"]
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("metrify")),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--ssl-certfile",
            str(certfile),
            "--ssl-keyfile",
            str(keyfile),
        ],
        env={
            **os.environ,
            "METRIFY_LOG_LEVEL": "WARNING",
            "METRIFY_API__JWT_SECRET": "graceful-" + "g" * 40,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"https://127.0.0.1:{port}"
    holder = psycopg.connect(conn.info.dsn, autocommit=False)
    answers: list[httpx.Response | BaseException] = []
    try:

        def ready() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return httpx.get(f"{base}/ready", timeout=1, verify=trusted).status_code == 200
            except httpx.HTTPError:
                return False

        until(ready, timeout=120)
        # TLS: the system's trust store does not know the certificate; plain HTTP is no
        # answer on this port
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/health", timeout=5)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert httpx.get(f"{base}/health", verify=trusted, timeout=5).json() == {"status": "ok"}

        holder.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")

        def post() -> None:
            try:
                answers.append(
                    httpx.post(
                        f"{base}/v1/readings",
                        content=_body(),
                        headers={"X-API-Key": key, "Content-Type": "text/csv"},
                        timeout=60,
                        verify=trusted,
                    )
                )
            except BaseException as exc:  # kept for the assertions below
                answers.append(exc)

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'audit_log'::regclass"
        )
        until(lambda: _one(conn, waiting) > 0, timeout=60)
        os.kill(proc.pid, signal.SIGTERM)  # the first process only, as an orchestrator does
        time.sleep(1.5)
        assert proc.poll() is None, "the server exited with a request in flight"
        assert not answers, "the request ended before its lock was released"
        holder.rollback()  # the request may go on now
        thread.join(timeout=60)
        assert proc.wait(timeout=60) == 0
    finally:
        holder.rollback()
        holder.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert len(answers) == 1
    answer = answers[0]
    assert isinstance(answer, httpx.Response), repr(answer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"]["inserted"] == METERS * INTERVALS
    stored = _one(conn, "SELECT count(*) FROM readings WHERE meter_id LIKE 'TERM%'")
    assert stored == METERS * INTERVALS
    assert _one(conn, "SELECT count(*) FROM audit_log WHERE action = 'ingest.readings'") == 1
