"""Reads from a streaming replica (issue 25): uncached reads go to the replica while it
keeps up, a caller's reads see that caller's own writes, a client's ``X-Metrify-Min-LSN``
is honoured, and lag is measured, exported and acted on.

A real embedded primary and a real standby made with ``pg_basebackup -R``. The replica
is told apart from the primary by pausing its WAL replay: a row written meanwhile is on
the primary only, so whether a read shows it says which server answered.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from metrify.stores import database, embedded
from support.api import Api, running_api
from support.database import app_url
from support.replica import pause, resume, start_replica

pytestmark = pytest.mark.slow  # two servers, a base backup and a started app

METER = "M-REP"
OTHER = "M-REP2"
T0 = "2025-03-01T00:00:00Z"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """(primary owner URL, replica superuser URL), both embedded, in their own folder."""
    root = Path(tempfile.mkdtemp(prefix="mr", dir="/tmp"))
    try:
        primary = embedded.start(root / "p", keep_running=False)
        database.upgrade(primary)
        app_url(primary)  # the app's login role, before the copy
        replica = start_replica(primary, root / "r")
        yield primary, replica
    finally:
        embedded.stop(root / "r")
        embedded.stop(root / "p")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def api(servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    primary, replica = servers
    resume(replica)
    # the app's role of the primary, which the replica holds too
    read_url = embedded.with_user(replica, urlsplit(app_url(primary)).username or "")
    settings = {"database_read_url": read_url, "replica_check_s": 0.1, "replica_max_lag_s": 30}
    with running_api(primary, tmp_path_factory.mktemp("replica"), settings=settings) as running:
        running.add_user("writer", "admin")
        running.add_user("reader", "admin")
        for meter in (METER, OTHER):
            body = {"meter_id": meter, "region": "north", "interval_s": 900}
            made = running.client.post("/v1/meters", json=body, headers=running.headers("writer"))
            assert made.status_code == 201, made.text
        yield running
    resume(replica)


def _caught_up(api: Api) -> dict[str, Any]:
    """Wait until the replica has replayed everything (lag 0) and return /ready's view."""
    deadline = time.monotonic() + 20
    while True:
        status = api.client.get("/ready").json()["replica"]
        if status["lag_s"] == 0 and status["lag_bytes"] == 0:
            return dict(status)
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def _ingest(api: Api, who: str, kwh: float, meter: str = METER) -> Any:
    body = [{"meter_id": meter, "ts": T0, "interval_s": 900, "import_kwh": kwh}]
    response = api.client.post("/v1/readings", json=body, headers=api.headers(who))
    assert response.status_code in (200, 201), response.text
    return response


def _seen(
    api: Api, who: str, headers: dict[str, str] | None = None, meter: str = METER
) -> list[float]:
    response = api.client.get(
        f"/v1/meters/{meter}/readings",
        params={"from": "2025-03-01T00:00:00Z", "to": "2025-03-02T00:00:00Z", "resolution": "raw"},
        headers={**api.headers(who), **(headers or {})},
    )
    assert response.status_code == 200, response.text
    return [item["import_kwh"] for item in response.json()["items"]]


def test_reads_go_to_the_replica_and_a_callers_own_writes_to_the_primary(
    api: Api, servers: tuple[str, str]
) -> None:
    _, replica = servers
    _ingest(api, "writer", 1.0)
    _caught_up(api)
    assert _seen(api, "reader") == [1.0]

    pause(replica)
    written = _ingest(api, "writer", 2.0)  # a correction the replica does not replay
    lsn = written.headers["x-metrify-lsn"]
    # the writer reads its own write (primary); another caller gets the replica's copy
    assert _seen(api, "writer") == [2.0]
    assert _seen(api, "reader") == [1.0]
    # ... unless it asks for the writer's position, as a client on another worker would
    assert _seen(api, "reader", {"X-Metrify-Min-LSN": lsn}) == [2.0]

    resume(replica)
    _caught_up(api)
    assert _seen(api, "reader") == [2.0]


def test_lag_is_measured_exported_and_past_the_limit_reads_go_to_the_primary(
    api: Api, servers: tuple[str, str]
) -> None:
    primary, replica = servers
    _ingest(api, "writer", 1.0, OTHER)
    assert _caught_up(api)["in_use"] is True
    routing = api.client.app.state.metrify.reads  # type: ignore[attr-defined]
    routing.max_lag_s = 0.5
    try:
        _lag_past_the_limit(api, primary, replica)
    finally:
        routing.max_lag_s = 30
        resume(replica)


def _lag_past_the_limit(api: Api, primary: str, replica: str) -> None:
    pause(replica)
    with psycopg.connect(primary, autocommit=True) as conn:  # a write from elsewhere
        conn.execute("UPDATE readings SET import_kwh = 3.0 WHERE meter_id = %s", (OTHER,))
    assert _seen(api, "reader", meter=OTHER) == [1.0]  # the replica, within the limit
    deadline = time.monotonic() + 20
    while (status := api.client.get("/ready").json()["replica"])["lag_s"] is None or status[
        "lag_s"
    ] <= 0.5:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["lag_bytes"] > 0 and status["in_use"] is False
    metrics = api.client.get("/metrics").text
    lag_line = next(
        line for line in metrics.splitlines() if line.startswith("metrify_replica_lag_seconds")
    )
    assert float(lag_line.split()[-1]) > 0.5
    assert _seen(api, "reader", meter=OTHER) == [3.0]  # too far behind: the primary answers

    resume(replica)
    assert _caught_up(api)["in_use"] is True
    assert _seen(api, "reader", meter=OTHER) == [3.0]
