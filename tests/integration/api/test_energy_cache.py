"""Energy answers are cached per worker, and no write, whoever makes it, is hidden by it.

Both workers here keep answers for five minutes (``energy_cache_s``), so only the
database's ``NOTIFY metrify_aggregates`` (migration 0014's triggers) can explain a fresh
answer after a write. The writes are made by hand in SQL, as no Metrify process would
announce them: the notification must come from the database itself.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from support.api import Api, running_api, seed_reference

LONG = 300.0
DAY = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)
#: the readings sent: (meter, minutes after DAY, kWh); no gaps, so nothing is estimated
SENT = [("M-N1", 0, 0.25), ("M-N1", 15, 0.5), ("M-S1", 0, 1.0), ("M-S1", 15, 2.0)]


@pytest.fixture(scope="module")
def pair(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Api]]:
    home: Path = tmp_path_factory.mktemp("energy-cache")
    with running_api(database_url, home, energy_cache_s=LONG, auth_cache_s=LONG) as a:
        a.add_user("admin", "admin")
        a.add_user("ana", "analyst")
        seed_reference(a, "admin")
        key = a.add_key("feeder", "ingest")["key"]
        rows = [
            {
                "meter_id": m,
                "ts": (DAY + dt.timedelta(minutes=t)).isoformat(),
                "interval_s": 900,
                "import_kwh": kwh,
            }
            for m, t, kwh in SENT
        ]
        response = a.client.post(
            "/v1/readings",
            content=orjson.dumps(rows),
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        with running_api(database_url, home, clean=False, energy_cache_s=LONG) as b:
            b.tokens = a.tokens
            yield a, b


def _node_day(api: Api) -> float:
    """The node's import on DAY, from GET /v1/energy at daily resolution."""
    response = api.client.get(
        "/v1/energy",
        params={"node": "N1", "from": "2025-06-02", "to": "2025-06-03", "resolution": "1d"},
        headers=api.headers("ana"),
    )
    assert response.status_code == 200, response.text
    buckets = response.json()["buckets"]
    return round(sum(b["import_kwh"] for b in buckets), 6)


def _soon(probe: Callable[[], Any], expected: Any, tries: int = 50) -> list[Any]:
    seen = [probe()]
    while seen[-1] != expected and len(seen) < tries:
        time.sleep(0.02)
        seen.append(probe())
    return seen


def _sql(api: Api, statement: str, *params: Any) -> None:
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute(statement, params)


def test_a_correction_by_hand_reaches_every_workers_cached_answer(
    pair: tuple[Api, Api],
) -> None:
    a, b = pair
    total = sum(kwh for _, _, kwh in SENT)
    assert _node_day(a) == _node_day(b) == total  # both cached now
    _sql(
        a,
        "UPDATE readings SET import_kwh = 1.5 WHERE meter_id = 'M-N1' AND ts = %s",
        DAY + dt.timedelta(minutes=15),
    )
    changed = round(total - 0.5 + 1.5, 6)
    for api in (a, b):
        seen = _soon(lambda api=api: _node_day(api), changed)
        assert seen[-1] == changed and len(seen) <= 10, seen


def test_a_meter_moved_off_the_node_by_hand_leaves_its_total(pair: tuple[Api, Api]) -> None:
    a, b = pair
    before = _node_day(b)
    s1 = sum(kwh for m, _, kwh in SENT if m == "M-S1")
    _sql(a, "INSERT INTO grid_nodes (node_id, kind) VALUES ('N2', 'feeder')")
    _sql(a, "UPDATE meters SET node_id = 'N2' WHERE meter_id = 'M-S1'")
    seen = _soon(lambda: _node_day(b), round(before - s1, 6))
    assert seen[-1] == round(before - s1, 6) and len(seen) <= 10, seen


def test_answers_are_served_from_the_cache(pair: tuple[Api, Api]) -> None:
    """A change that bypasses the marks (the aggregate rows edited directly, which no
    writer does) is not seen: the answer is the cached one, not a fresh query."""
    a, _ = pair
    cached = _node_day(a)
    _sql(a, "UPDATE agg_group_30m SET import_kwh = import_kwh + 100 WHERE key = 'N1'")
    time.sleep(0.2)
    assert _node_day(a) == cached


# --- the hot path says what the router says ---------------------------------------------


def _same(response: Any) -> tuple[int, bytes, dict[str, str]]:
    skip = ("x-request-id", "content-length", "date", "server")
    return (
        response.status_code,
        response.content,
        {k: v for k, v in response.headers.items() if k not in skip},
    )


def test_hot_path_answers_energy_exactly_like_the_routed_endpoint(
    pair: tuple[Api, Api], tmp_path: Path
) -> None:
    a, _ = pair
    a.add_user("north", "analyst", ["north"])
    feeder = a.add_key("ingest-only", "ingest")["key"]
    day = "from=2025-06-02&to=2025-06-03"
    cases: list[tuple[str, dict[str, str]]] = [
        (f"/v1/energy?node=N1&{day}&resolution=1h", a.headers("ana")),
        (f"/v1/energy?{day}&node=N1&resolution=1h&tz=Europe/Paris", a.headers("ana")),
        (f"/v1/energy?fleet=true&{day}", a.headers("ana")),
        (f"/v1/energy?fleet=1&{day}", a.headers("ana")),
        (f"/v1/energy?meter=M-N1&{day}", a.headers("ana")),
        (f"/v1/energy?meter=M-N1&{day}", a.headers("north")),
        (f"/v1/energy?meter=M-S1&{day}", a.headers("north")),  # other region: 404
        (f"/v1/energy?node=N1&{day}", a.headers("north")),  # spans regions: 403
        (f"/v1/energy?region=north&{day}", a.headers("north")),
        (f"/v1/energy?region=south&{day}", a.headers("north")),
        (f"/v1/energy?node=N1&{day}", {}),
        (f"/v1/energy?node=N1&{day}", {"X-API-Key": feeder}),  # role ingest: 403
        (f"/v1/energy?node=N1&node=N2&{day}", a.headers("ana")),
        (f"/v1/energy?node=N1&meter=M-N1&{day}", a.headers("ana")),
        (f"/v1/energy?node=N1&{day}&resolution=2h", a.headers("ana")),
        (f"/v1/energy?node=N1&{day}&tz=Mars/Base", a.headers("ana")),
        (f"/v1/energy?node=bad%20id&{day}", a.headers("ana")),
        ("/v1/energy?node=N1&from=2025-06-03&to=2025-06-02", a.headers("ana")),
    ]
    with running_api(
        a.url, tmp_path, clean=False, energy_cache_s=LONG, auth_cache_s=LONG, hot_paths=False
    ) as routed:
        routed.tokens = a.tokens
        for path, headers in cases:
            for _ in range(2):  # uncached (the router fills the cache), then cached
                hot, plain = (
                    a.client.get(path, headers=headers),
                    routed.client.get(path, headers=headers),
                )
                assert _same(hot) == _same(plain), path
    metrics = a.client.get("/metrics").text
    assert 'route="/v1/energy",status="200"' in metrics


def test_the_hot_path_serves_a_cached_answer(pair: tuple[Api, Api]) -> None:
    """Called as the middleware calls it, the hot path answers a cached query itself and
    passes an uncached one on to the router (returns False, having sent nothing)."""
    from metrify.api.hot import HotPaths

    a, _ = pair
    app: Any = a.client.app
    hot = HotPaths(app, app.state.metrify)
    query = b"node=N1&from=2025-06-02&to=2025-06-03&resolution=30m"
    headers = [(k.lower().encode(), v.encode()) for k, v in a.headers("ana").items()]
    scope = {"type": "http", "method": "GET", "path": "/v1/energy", "headers": headers}

    def run(query: bytes) -> tuple[bool, list[dict[str, Any]]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        import asyncio

        done = asyncio.run(hot({**scope, "query_string": query}, receive, send))
        return done, sent

    assert run(query) == (False, [])  # not cached yet: the router's
    routed = a.client.get("/v1/energy?" + query.decode(), headers=a.headers("ana"))
    assert routed.status_code == 200
    done, sent = run(query)
    assert done and sent[0]["status"] == 200 and sent[1]["body"] == routed.content
