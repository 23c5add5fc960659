"""State shared by API instances (issue 25): two app instances over one database stand
for two workers or two hosts behind a load balancer.

With Redis configured a principal's request rate is counted across both instances;
without it each counts its own. Idempotency keys live in PostgreSQL, in the transaction
of the work they guard, so a request retried on the other instance gets the first
answer whatever the cache backend.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from support.api import Api, running_api, seed_reference

REDIS_URL = "redis://127.0.0.1:6379/0"
BURST = 4


def redis_client() -> Any:
    module = pytest.importorskip("redis")
    client = module.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except module.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return client


@contextlib.contextmanager
def two_instances(
    database_url: str, home: Path, *, redis: bool, clean: bool = True, **config: Any
) -> Iterator[tuple[Api, Api]]:
    prefix = f"metrify-test-{uuid.uuid4().hex}:"
    client: Any = None
    if redis:
        client = redis_client()
        config = {**config, "redis_url": REDIS_URL, "redis_prefix": prefix}
    try:
        with (
            running_api(database_url, home / "a", clean=clean, **config) as a,
            running_api(database_url, home / "b", clean=False, **config) as b,
        ):
            yield a, b
    finally:
        if client is not None:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)


#: a rate so slow that no token comes back during a test: only the burst counts
LIMITS = {"rate_limit_per_s": 0.001, "rate_limit_burst": BURST}


@pytest.fixture(scope="module")
def shared(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, Api]]:
    """Two instances sharing a Redis."""
    with two_instances(
        database_url, tmp_path_factory.mktemp("shared"), redis=True, **LIMITS
    ) as pair:
        yield pair


@pytest.fixture(scope="module")
def apart(
    shared: tuple[Api, Api], database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, Api]]:
    """Two instances without Redis (over the same database as ``shared``)."""
    home = tmp_path_factory.mktemp("apart")
    with two_instances(database_url, home, redis=False, clean=False, **LIMITS) as pair:
        yield pair


def _user(a: Api, b: Api) -> str:
    """A new user of its own (its own rate bucket), signed in; its token works on both."""
    name = f"u{uuid.uuid4().hex[:10]}"
    a.add_user(name, "admin")
    b.tokens[name] = a.tokens[name]  # one JWT secret: a token is good on either
    return name


def _statuses(api: Api, who: str, n: int) -> list[int]:
    return [
        api.client.get("/v1/meters/NO-SUCH/latest", headers=api.headers(who)).status_code
        for _ in range(n)
    ]


def test_with_redis_the_rate_limit_counts_requests_on_both_instances(
    shared: tuple[Api, Api],
) -> None:
    a, b = shared
    who = _user(a, b)
    seen = _statuses(a, who, 2) + _statuses(b, who, 2)
    assert seen == [404] * BURST  # allowed (the meter is unknown), four in all
    refused = b.client.get("/v1/meters/NO-SUCH/latest", headers=b.headers(who))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert _statuses(a, who, 1) == [429]
    other = _user(a, b)  # a bucket per caller: another user is not held back
    assert _statuses(b, other, 1) == [404]


def test_without_redis_each_instance_counts_its_own(apart: tuple[Api, Api]) -> None:
    a, b = apart
    who = _user(a, b)
    assert _statuses(a, who, BURST + 1) == [404] * BURST + [429]
    assert _statuses(b, who, BURST) == [404] * BURST  # b's own, untouched budget


@pytest.mark.parametrize("pair", ["shared", "apart"])
def test_an_idempotent_request_is_replayed_by_the_other_instance(
    pair: str, request: pytest.FixtureRequest
) -> None:
    a, b = request.getfixturevalue(pair)
    who = _user(a, b)
    meter = f"M-IDEM-{pair}"
    body = [{"meter_id": meter, "ts": "2025-01-01T00:00:00Z", "interval_s": 900, "import_kwh": 0.5}]
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = a.client.post("/v1/readings", json=body, headers={**a.headers(who), **key})
    assert first.status_code in (200, 201), first.text
    again = b.client.post("/v1/readings", json=body, headers={**b.headers(who), **key})
    assert again.status_code == first.status_code
    assert again.headers.get("Idempotency-Replayed") == "true"
    assert again.json() == first.json()
    with a.conn() as conn:
        row = conn.execute("SELECT count(*) FROM readings WHERE meter_id = %s", (meter,)).fetchone()
    assert row == (1,)


def _node_day(api: Api) -> Any:
    response = api.client.get(
        "/v1/energy",
        params={"node": "N1", "from": "2025-06-02", "to": "2025-06-03", "resolution": "1d"},
        headers=api.headers("ops"),
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_with_redis_energy_answers_are_shared_and_a_write_retires_them(
    database_url: str, tmp_path: Path
) -> None:
    config = {"energy_cache_s": 300.0}
    with two_instances(database_url, tmp_path, redis=True, clean=False, **config) as (a, b):
        a.add_user("ops", "admin")
        b.tokens.update(a.tokens)
        seed_reference(a, "ops")
        rows = [
            {
                "meter_id": "M-N1",
                "ts": "2025-06-02T00:00:00Z",
                "interval_s": 900,
                "import_kwh": 0.25,
            },
            {
                "meter_id": "M-N1",
                "ts": "2025-06-02T00:15:00Z",
                "interval_s": 900,
                "import_kwh": 0.5,
            },
        ]
        sent = a.client.post("/v1/readings", json=rows, headers=a.headers("ops"))
        assert sent.status_code == 200, sent.text
        first = _node_day(a)
        assert sum(x["import_kwh"] for x in first["buckets"]) == pytest.approx(0.75)

        # the answer a computed is in Redis; make it recognisable there
        client = redis_client()
        keys = [k for k in client.scan_iter(match=a.settings.api.redis_prefix + "cache:energy:*")]
        entries = [k for k in keys if not k.endswith(b":gen")]
        assert len(entries) == 1
        marked = {**first, "buckets": [{**x, "import_kwh": 99.0} for x in first["buckets"]]}
        client.set(entries[0], orjson.dumps(marked), ex=300)
        # b never asked: its answer can only come from the shared entry
        assert _node_day(b) == marked

        # a write the database announces retires the shared answers on every instance
        with a.conn() as conn:
            conn.execute(
                "UPDATE readings SET import_kwh = 1.0 WHERE meter_id = 'M-N1'"
                " AND ts = '2025-06-02T00:00:00Z'"
            )
        deadline = time.monotonic() + 10
        while (seen := _node_day(b)) == marked or sum(
            x["import_kwh"] for x in seen["buckets"]
        ) != pytest.approx(1.5):
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
