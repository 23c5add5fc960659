"""The API's in-process caches never serve what a write has made stale.

Each worker process caches verified credentials (``auth_cache_s``, on by default) and
latest-reading answers (``cache_ttl_s``). Here both TTLs are five minutes, so only
invalidation can explain a fresh answer: in the worker that made the change at once, and
in another worker (a second app over the same database, as a second ``metrify serve``
process would be) within a few NOTIFY round trips. The hot path in front of the router
(:mod:`metrify.api.hot`) must answer exactly as the routed endpoint does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from metrify.api.auth.tokens import TokenService
from metrify.api.cache import TTLCache
from support.api import Api, running_api, seed_reference
from support.tokens import live_family

LONG = 300.0
DAY = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)


def _reading(meter_id: str, minutes: int, kwh: float) -> dict[str, Any]:
    ts = DAY + dt.timedelta(minutes=minutes)
    return {
        "meter_id": meter_id,
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "interval_s": 900,
        "import_kwh": kwh,
    }


def _ingest(api: Api, *rows: dict[str, Any]) -> None:
    response = api.client.post(
        "/v1/readings",
        content=orjson.dumps(list(rows)),
        headers={"X-API-Key": api.tokens["feeder"], "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["summary"]["rejected"] == 0, response.text


def _latest(api: Api, who: str, meter_id: str = "M-N1") -> Any:
    return api.client.get(f"/v1/meters/{meter_id}/latest", headers=api.headers(who))


def _kwh(api: Api, meter_id: str = "M-N1") -> float | None:
    response = _latest(api, "ana", meter_id)
    assert response.status_code == 200, response.text
    reading = response.json()["reading"]
    return None if reading is None else float(reading["import_kwh"])


def _soon(probe: Callable[[], Any], expected: Any, tries: int = 50) -> list[Any]:
    """Probe until it gives ``expected`` (a notification's trip); all answers seen."""
    seen = [probe()]
    while seen[-1] != expected and len(seen) < tries:
        time.sleep(0.02)
        seen.append(probe())
    return seen


@pytest.fixture(scope="module")
def pair(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Api]]:
    """Two workers over one database, both caching for minutes."""
    home: Path = tmp_path_factory.mktemp("cache")
    with running_api(database_url, home, cache_ttl_s=LONG, auth_cache_s=LONG) as a:
        a.add_user("admin", "admin")
        a.add_user("ana", "analyst")
        a.add_user("north", "analyst", ["north"])
        seed_reference(a, "admin")
        a.tokens["feeder"] = a.add_key("feeder", "ingest")["key"]
        with running_api(database_url, home, clean=False, cache_ttl_s=LONG, auth_cache_s=LONG) as b:
            b.tokens = a.tokens  # same JWT secret: a token works in every worker
            yield a, b


def test_latest_follows_an_ingest_in_this_worker_at_once(pair: tuple[Api, Api]) -> None:
    a, _ = pair
    _ingest(a, _reading("M-N1", 0, 0.111))
    assert _kwh(a) == 0.111  # now cached for minutes
    _ingest(a, _reading("M-N1", 15, 0.222))
    assert _kwh(a) == 0.222  # the very next request


def test_latest_follows_an_ingest_in_another_worker(pair: tuple[Api, Api]) -> None:
    a, b = pair
    _ingest(a, _reading("M-N1", 30, 0.333))
    assert _kwh(b) == 0.333  # cached in b
    _ingest(a, _reading("M-N1", 45, 0.444))
    seen = _soon(lambda: _kwh(b), 0.444)
    assert seen[-1] == 0.444 and len(seen) <= 10, seen
    # and the other way round
    _ingest(b, _reading("M-N1", 60, 0.555))
    assert _kwh(b) == 0.555
    seen = _soon(lambda: _kwh(a), 0.555)
    assert seen[-1] == 0.555 and len(seen) <= 10, seen


def test_latest_follows_an_edit(pair: tuple[Api, Api]) -> None:
    a, b = pair
    _ingest(a, _reading("M-N1", 75, 0.666))
    assert _kwh(a) == _kwh(b) == 0.666
    edit = {
        "from": (DAY + dt.timedelta(minutes=75)).isoformat(),
        "to": (DAY + dt.timedelta(minutes=90)).isoformat(),
        "value": 0.9,
        "reason": "meter exchange",
    }
    response = a.client.post("/v1/meters/M-N1/edits", json=edit, headers=a.headers("admin"))
    assert response.status_code == 200 and response.json()["rows"] == 1, response.text
    assert _kwh(a) == 0.9
    seen = _soon(lambda: _kwh(b), 0.9)
    assert seen[-1] == 0.9 and len(seen) <= 10, seen


def test_a_meter_moved_to_another_region_leaves_scoped_caches(pair: tuple[Api, Api]) -> None:
    """The cached answer carries the meter's region: a move must reach region scope."""
    a, b = pair
    assert _latest(a, "north").status_code == _latest(b, "north").status_code == 200
    moved = a.client.patch("/v1/meters/M-N1", json={"region": "south"}, headers=a.headers("admin"))
    assert moved.status_code == 200, moved.text
    try:
        assert _latest(a, "north").status_code == 404
        seen = _soon(lambda: _latest(b, "north").status_code, 404)
        assert seen[-1] == 404 and len(seen) <= 10, seen
    finally:
        back = a.client.patch(
            "/v1/meters/M-N1", json={"region": "north"}, headers=a.headers("admin")
        )
        assert back.status_code == 200
    assert _soon(lambda: _latest(b, "north").status_code, 200)[-1] == 200


def test_a_revoked_key_is_refused_by_every_worker(pair: tuple[Api, Api]) -> None:
    a, b = pair
    key = a.add_key("reader", "analyst")
    h = {"X-API-Key": key["key"]}
    for api in (a, b):  # cached in both workers, on the hot path and a routed one
        assert api.client.get("/v1/meters/M-N1/latest", headers=h).status_code == 200
        assert api.client.get("/v1/auth/me", headers=h).status_code == 200
    revoked = a.client.delete(f"/v1/admin/keys/{key['key_id']}", headers=a.headers("admin"))
    assert revoked.status_code == 200
    assert a.client.get("/v1/meters/M-N1/latest", headers=h).status_code == 401
    assert a.client.get("/v1/auth/me", headers=h).status_code == 401
    seen = _soon(lambda: b.client.get("/v1/meters/M-N1/latest", headers=h).status_code, 401)
    assert seen[-1] == 401 and len(seen) <= 10, seen
    assert b.client.get("/v1/auth/me", headers=h).status_code == 401


def test_a_disabled_user_is_refused_by_every_worker(pair: tuple[Api, Api]) -> None:
    a, b = pair
    a.add_user("dora", "viewer")
    b.tokens = a.tokens
    for api in (a, b):
        assert _latest(api, "dora").status_code == 200
    disabled = a.client.patch(
        "/v1/admin/users/dora", json={"disabled": True}, headers=a.headers("admin")
    )
    assert disabled.status_code == 200, disabled.text
    assert _latest(a, "dora").status_code == 401
    seen = _soon(lambda: _latest(b, "dora").status_code, 401)
    assert seen[-1] == 401 and len(seen) <= 10, seen


def test_a_role_change_reaches_the_hot_path(pair: tuple[Api, Api]) -> None:
    a, b = pair
    assert _latest(a, "ana").status_code == _latest(b, "ana").status_code == 200
    demoted = a.client.patch(
        "/v1/admin/users/ana", json={"role": "ingest"}, headers=a.headers("admin")
    )
    assert demoted.status_code == 200
    try:
        assert _latest(a, "ana").status_code == 403
        seen = _soon(lambda: _latest(b, "ana").status_code, 403)
        assert seen[-1] == 403 and len(seen) <= 10, seen
    finally:
        back = a.client.patch(
            "/v1/admin/users/ana", json={"role": "analyst"}, headers=a.headers("admin")
        )
        assert back.status_code == 200
    assert _soon(lambda: _latest(b, "ana").status_code, 200)[-1] == 200


# --- the hot path says what the router says ---------------------------------------------


def _answer(response: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {
        k: v
        for k, v in response.headers.items()
        if k not in ("x-request-id", "content-length", "date", "server")
    }
    return response.status_code, response.content, headers


def test_hot_path_answers_exactly_like_the_routed_endpoint(
    pair: tuple[Api, Api], tmp_path: Path
) -> None:
    a, _ = pair
    feeder = a.tokens["feeder"]
    reader = a.add_key("equal", "viewer", regions=["north"])["key"]
    cases: list[tuple[str, dict[str, str]]] = [
        ("/v1/meters/M-N1/latest", {"Authorization": f"Bearer {reader}"}),
        ("/v1/meters/M-S1/latest", {"X-API-Key": reader}),
        ("/v1/meters/M-N1/latest", {"X-API-Key": ""}),
        ("/v1/meters/M-N1/latest", {"X-API-Key": reader, **a.headers("ana")}),
        ("/v1/meters/M-N1/latest", a.headers("ana")),
        ("/v1/meters/M-N1/latest?ignored=1", a.headers("ana")),
        ("/v1/meters/M-S1/latest", a.headers("north")),  # other region: as if unknown
        ("/v1/meters/NOPE/latest", a.headers("ana")),
        ("/v1/meters/M-N1/latest", {}),
        ("/v1/meters/M-N1/latest", {"Authorization": "Basic abc"}),
        ("/v1/meters/M-N1/latest", {"X-API-Key": "mk_000000000000_" + "x" * 43}),
        ("/v1/meters/M-N1/latest", {"Authorization": "Bearer not.a.jwt"}),
        ("/v1/meters/M-N1/latest", {"X-API-Key": feeder}),  # role ingest: 403
        ("/v1/meters/bad%20id/latest", a.headers("ana")),  # the router's 422
        ("/v1/meters/" + "x" * 65 + "/latest", a.headers("ana")),
        ("/v1/meters/M-N1/latest/", a.headers("ana")),
    ]
    with running_api(
        a.url, tmp_path, clean=False, cache_ttl_s=LONG, auth_cache_s=LONG, hot_paths=False
    ) as routed:
        for path, headers in cases:
            for _ in range(2):  # uncached, then cached
                hot, plain = (
                    a.client.get(path, headers=headers),
                    routed.client.get(path, headers=headers),
                )
                assert _answer(hot) == _answer(plain), path
                assert hot.headers["x-request-id"] and plain.headers["x-request-id"]
        a.client.get("/v1/meters/M-N1/latest", headers=a.headers("ana"))
        metrics = a.client.get("/metrics").text
        assert 'route="/v1/meters/{meter_id}/latest",status="200"' in metrics


def test_hot_path_rate_limits_like_the_router(pair: tuple[Api, Api], tmp_path: Path) -> None:
    a, _ = pair
    answers = {}
    for hot in (True, False):
        with running_api(
            a.url,
            tmp_path / str(hot),
            clean=False,
            rate_limit_per_s=0.01,
            rate_limit_burst=3,
            hot_paths=hot,
        ) as api:
            key = api.add_key(f"limited-{hot}", "analyst")["key"]
            codes = [
                api.client.get("/v1/meters/M-N1/latest", headers={"X-API-Key": key})
                for _ in range(5)
            ]
            answers[hot] = [(r.status_code, r.headers.get("retry-after")) for r in codes]
    assert answers[True] == answers[False]
    assert [c for c, _ in answers[True]] == [200, 200, 200, 429, 429]
    assert answers[True][-1][1] is not None


# --- the cache itself -------------------------------------------------------------------


def test_a_value_read_before_an_invalidation_is_not_kept() -> None:
    """An answer read from the database before a revocation or an ingest committed, but
    stored after the cache was cleared, would otherwise be served until its TTL."""
    cache: TTLCache[str] = TTLCache(LONG)
    since = cache.generation
    cache.clear()  # e.g. NOTIFY metrify_auth while the query ran
    cache.put("k", "stale", since=since)
    assert cache.get("k") is None
    since = cache.generation
    cache.discard_many(["other"])
    cache.put("k", "maybe stale", since=since)
    assert cache.get("k") is None
    cache.put("k", "fresh", since=cache.generation)
    assert cache.get("k") == "fresh"
    cache.put("short", "v", ttl_s=0.05)  # bounded by the entry's own life (key expiry)
    time.sleep(0.06)
    assert cache.get("short") is None
    cache.put("expired", "v", ttl_s=-1.0)
    assert cache.get("expired") is None


def test_a_cached_token_does_not_outlive_its_expiry(pair: tuple[Api, Api]) -> None:
    """The cache keeps a verified token at most until its ``exp`` (here a minute away),
    however long ``auth_cache_s`` is (five minutes here)."""
    a, _ = pair
    state = a.client.app.state.metrify  # type: ignore[attr-defined]
    with a.conn() as conn:
        row = conn.execute("SELECT user_id FROM users WHERE username = 'ana'").fetchone()
    assert row is not None
    short = TokenService(a.settings.api.model_copy(update={"access_token_minutes": 1}), Path())
    family = uuid.UUID(live_family(a, "ana"))
    token = short.issue_access(row[0], "ana", version=0, family=family)
    me = a.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    deadline, _ = state.principals._items[hashlib.sha256(token.encode()).digest()]
    assert deadline <= time.monotonic() + 60.5


# --- daily quality scores, refreshed in the background ----------------------------------


def test_quality_scores_are_current_after_an_http_ingest(pair: tuple[Api, Api]) -> None:
    """Ingest requests leave the re-scoring to a background refresh, yet a reader of
    the scores never sees them behind what was ingested (read-your-writes)."""
    a, b = pair
    day = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)
    rows = [
        {
            "meter_id": "M-S1",
            "ts": (day + i * dt.timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
            "interval_s": 900,
            "import_kwh": round(0.1 + (i % 7) * 0.01, 3),
        }
        for i in range(40)
    ]
    _ingest(a, *rows)
    params = {"from": "2025-06-02T00:00:00Z", "to": "2025-06-03T00:00:00Z"}
    for api in (b, a):  # another worker, and the one that ingested
        days = api.client.get(
            "/v1/meters/M-S1/quality", params=params, headers=api.headers("ana")
        ).json()["days"]
        assert [d["present"] for d in days] == [40], days
    fleet = a.client.get("/v1/fleet/summary", params=params, headers=a.headers("ana"))
    assert fleet.status_code == 200


def test_the_background_refresh_scores_without_a_reader(
    pair: tuple[Api, Api], tmp_path: Path
) -> None:
    a, _ = pair
    day = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    rows = [
        {
            "meter_id": "M-N1",
            "ts": (day + i * dt.timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
            "interval_s": 900,
            "import_kwh": 0.2,
        }
        for i in range(8)
    ]
    with running_api(a.url, tmp_path, clean=False, settings={"quality_refresh_s": 0.2}) as api:
        api.tokens = a.tokens
        _ingest(api, *rows)
        with psycopg.connect(a.url, autocommit=True) as conn:

            def pending() -> int:
                row = conn.execute("SELECT count(*) FROM quality_dirty").fetchone()
                return int(row[0]) if row else -1

            seen = _soon(pending, 0, tries=100)
            assert seen[-1] == 0, seen
            row = conn.execute(
                "SELECT present FROM quality_daily WHERE meter_id = 'M-N1' AND day = %s",
                (day.date(),),
            ).fetchone()
        assert row == (8,)
