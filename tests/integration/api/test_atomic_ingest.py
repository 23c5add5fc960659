"""An ingest request is all or nothing: its rows, quarantine, audit row and stored
answer commit in one transaction. Another connection sees none of its rows while it
runs; a request that fails leaves nothing and its Idempotency-Key is free for the
retry; a second request with the key while the first runs never runs it twice.

A request is held at its very end (the audit row) by a lock the test takes on the audit
table, so "while it runs" is a state the test waits for, not a moment it guesses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from support.api import Api
from support.waiting import until

START = dt.datetime(2025, 9, 1, tzinfo=dt.UTC)
API_CONFIG = {"ingest_runs": 2}


def seed_api(api: Api) -> None:
    api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]


def big_csv(prefix: str, meters: int, intervals: int) -> bytes:
    """``meters`` x ``intervals`` quarter-hourly readings, all new."""
    lines = ["meter_id,ts,interval_s,import_kwh"]
    stamps = [
        f"{START + dt.timedelta(minutes=15 * i):%Y-%m-%dT%H:%M:%SZ}" for i in range(intervals)
    ]
    for m in range(meters):
        meter = f"{prefix}{m:04d}"
        lines += [f"{meter},{ts},900,{0.1 + (i % 7) * 0.05:.2f}" for i, ts in enumerate(stamps)]
    return ("\n".join(lines) + "\n").encode()


def _post(api: Api, body: bytes, key: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": api.tokens["feeder"], "Content-Type": "text/csv"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.client.post("/v1/readings", content=body, headers=headers)


def _count(conn: psycopg.Connection[Any], prefix: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM readings WHERE meter_id LIKE %s", (prefix + "%",)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _audited(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT request_id FROM audit_log WHERE action = 'ingest.readings' ORDER BY id"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _waiting_on_audit(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'audit_log'::regclass"
    ).fetchone()
    assert row is not None
    return int(row[0])


@contextlib.contextmanager
def audit_held(api: Api) -> Iterator[psycopg.Connection[Any]]:
    """Block every INSERT into the audit log (reads still go) until the block ends."""
    with api.conn() as holder:
        holder.autocommit = False
        holder.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
        try:
            yield holder
        finally:
            holder.rollback()


def _in_thread(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target)
    thread.start()
    return thread


@pytest.mark.parametrize(("meters", "intervals"), [(200, 1000)])
def test_no_row_of_a_large_body_is_visible_before_it_answers(
    api: Api, meters: int, intervals: int
) -> None:
    """200,000 rows, written in ten pipeline batches (batch_size 20,000): none is
    visible from another connection until the request has its audit row and answers."""
    api.settings.batch_size = 20_000
    body = big_csv("VIS", meters, intervals)
    answer: dict[str, httpx.Response] = {}
    with api.conn() as conn:
        with audit_held(api):
            thread = _in_thread(lambda: answer.update(r=_post(api, body)))
            until(lambda: _waiting_on_audit(conn) > 0, timeout=300)
            # every row has been written by now, in the request's open transaction
            assert _count(conn, "VIS") == 0
            assert _audited(conn) == []
        thread.join()
        response = answer["r"]
        assert response.status_code == 200, response.text
        assert response.json()["summary"]["inserted"] == meters * intervals
        assert _count(conn, "VIS") == meters * intervals
        assert _audited(conn).count(response.json()["request_id"]) == 1


def test_a_failed_request_leaves_nothing_and_its_key_is_free(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request fails after its rows are written (its audit row cannot be stored):
    no row, no audit row, no claim is left, and the retry with the same key runs."""
    api.settings.batch_size = 500
    body = big_csv("FAIL", 3, 400)
    from metrify.api import audit

    real = audit.record

    def broken(conn: Any, event: Any) -> None:
        raise RuntimeError("audit store unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(audit, "record", broken)
        failed = _post(api, body, key="retry-me")
    assert failed.status_code == 500
    assert audit.record is real
    with api.conn() as conn:
        assert _count(conn, "FAIL") == 0
        assert conn.execute(
            "SELECT count(*) FROM idempotency_keys WHERE key = 'retry-me'"
        ).fetchone() == (0,)
        retry = _post(api, body, key="retry-me")
        assert retry.status_code == 200, retry.text
        assert "idempotency-replayed" not in retry.headers
        assert retry.json()["summary"]["inserted"] == 3 * 400
        assert _count(conn, "FAIL") == 3 * 400
        assert _audited(conn).count(retry.json()["request_id"]) == 1
        again = _post(api, body, key="retry-me")
        assert again.headers["idempotency-replayed"] == "true"
        assert again.json() == retry.json()


def test_the_same_key_while_the_first_runs_is_never_run_twice(api: Api) -> None:
    """The same body again waits for the first (it shares its meters) and gets its
    answer; another body under the key waits on the uncommitted claim, then 409."""
    body = big_csv("KEY", 2, 96)
    first: dict[str, httpx.Response] = {}
    second: dict[str, httpx.Response] = {}
    with api.conn() as conn:
        with audit_held(api):
            one = _in_thread(lambda: first.update(r=_post(api, body, key="k-busy")))
            until(lambda: _waiting_on_audit(conn) > 0)
            two = _in_thread(lambda: second.update(r=_post(api, body, key="k-busy")))
            # another body, same key: its run claims the key and waits on the first's
            other = _post(api, big_csv("OTHER", 1, 4), key="k-busy")
            assert other.status_code == 409
            assert "still being processed" in other.json()["detail"]
        one.join()
        two.join()
        assert first["r"].status_code == 200
        assert second["r"].status_code == 200
        assert second["r"].headers["idempotency-replayed"] == "true"
        assert second["r"].json() == first["r"].json()
        assert _count(conn, "KEY") == 2 * 96
        assert _count(conn, "OTHER") == 0
        assert _audited(conn).count(first["r"].json()["request_id"]) == 1


def test_every_committed_request_of_a_group_has_exactly_one_audit_row(api: Api) -> None:
    """Requests that share runs, one of them failing its run: each answered request's
    rows are stored and audited once, the failed one leaves neither."""
    bodies = [big_csv(f"GRP{k}-", 2, 48) for k in range(6)]
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def post(k: int) -> None:
        answers[k] = _post(api, bodies[k], key=f"grp-{k}")

    with api.conn() as conn:
        with audit_held(api):
            threads = [_in_thread(lambda k=k: post(k)) for k in range(len(bodies))]
            until(lambda: _waiting_on_audit(conn) > 0)
        for thread in threads:
            thread.join()
        audited = _audited(conn)
        for k, response in enumerate(answers):
            assert response is not None and response.status_code == 200, k
            assert audited.count(response.json()["request_id"]) == 1
            assert _count(conn, f"GRP{k}-") == 2 * 48
        assert len(audited) == len(set(audited))
