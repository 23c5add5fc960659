"""One ``Idempotency-Key`` sent twice while the first is still queued: the two requests
must not both be processed, whichever run of the group commit they land in.

Two requests that name the same meters never share a run (the grouping keeps them
apart), so the case that can reach one run is a body that names no meter at all: every
row is bad and goes to quarantine. Sent twice with one key, both used to be grouped into
the same run; the second then met its twin's uncommitted claim in its own transaction
and answered 409 at once, although the first was about to commit its answer
(docs/guides/api.md: a retry of a running request waits for it and gets its answer).
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import psycopg

from support.api import Api
from support.waiting import until

# one run at a time, so which requests share a run does not depend on timing
API_CONFIG = {"ingest_runs": 1}

KEY = "same-key-twice"


def seed_api(api: Api) -> None:
    api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]


def _headers(api: Api, key: str) -> dict[str, str]:
    return {
        "X-API-Key": api.tokens["feeder"],
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }


def test_same_key_twice_while_queued_gets_the_first_answer_and_stores_once(api: Api) -> None:
    # the run that holds the only slot: a good reading of its own meter
    holder = orjson.dumps(
        [{"meter_id": "IK0", "ts": "2025-06-02T00:00:00Z", "interval_s": 900, "import_kwh": 0.5}]
    )
    # no meter id anywhere: two copies of this body are not kept apart by their meters
    twin = orjson.dumps(
        [
            {"meter_id": None, "ts": "2025-06-02T00:00:00Z", "interval_s": 900, "import_kwh": 1},
            {"meter_id": None, "ts": "2025-06-02T00:15:00Z", "interval_s": 900, "import_kwh": 2},
        ]
    )
    answers: dict[str, Any] = {}

    def post(name: str, body: bytes, key: str) -> None:
        answers[name] = api.client.post("/v1/readings", content=body, headers=_headers(api, key))

    state = api.client.app.state.metrify  # type: ignore[attr-defined]
    threads = {
        "holder": threading.Thread(target=post, args=("holder", holder, "holder-key")),
        "first": threading.Thread(target=post, args=("first", twin, KEY)),
        "second": threading.Thread(target=post, args=("second", twin, KEY)),
    }
    with psycopg.connect(api.url) as lock:
        lock.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        threads["holder"].start()
        until(
            lambda: (
                "readings" in state.ingest_groups and state.ingest_groups["readings"].running == 1
            )
        )
        group = state.ingest_groups["readings"]
        runs_before, entries_before = group.runs, group.entries
        threads["first"].start()
        until(lambda: group.waiting == 1)
        threads["second"].start()
        until(lambda: group.waiting == 2)  # both queued behind the held run
        lock.rollback()
    for thread in threads.values():
        thread.join(60)
        assert not thread.is_alive()

    assert answers["holder"].status_code == 200, answers["holder"].text
    first, second = answers["first"], answers["second"]
    assert first.status_code == 200, first.text
    assert "idempotency-replayed" not in first.headers
    # the retry is the first's answer, word for word, marked as a replay
    assert second.status_code == 200, second.text
    assert second.headers.get("idempotency-replayed") == "true"
    assert second.content == first.content
    summary = first.json()["summary"]
    assert (summary["read"], summary["accepted"], summary["quarantined"]) == (2, 0, 2)
    # the holder's run, then each twin alone: the second queued behind the first
    assert (group.runs - runs_before, group.entries - entries_before) == (3, 3)
    with api.conn() as conn:
        quarantined = conn.execute(
            "SELECT count(*) FROM quarantine WHERE source = %s", (first.json()["source"],)
        ).fetchone()
        everywhere = conn.execute("SELECT count(*) FROM quarantine").fetchone()
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'ingest.readings' AND target = %s",
            (first.json()["source"],),
        ).fetchone()
        keys = conn.execute(
            "SELECT status_code FROM idempotency_keys WHERE key = %s", (KEY,)
        ).fetchall()
    assert quarantined == (2,)  # the two bad rows once, not once per request
    assert everywhere == (2,)
    assert audited == (1,)
    assert keys == [(200,)]
