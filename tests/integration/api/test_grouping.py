"""Group commit of concurrent ingest requests over HTTP, against the real pipeline and
store: requests queued behind a held run share the next one, and each still gets its own
answer."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import psycopg
import pytest

from support.api import Api
from support.waiting import until

START = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)


def _csv(meter: str, values: list[str], first: int = 0) -> bytes:
    lines = ["meter_id,ts,interval_s,import_kwh"]
    for i, value in enumerate(values, start=first):
        ts = START + dt.timedelta(minutes=15 * i)
        lines.append(f"{meter},{ts:%Y-%m-%dT%H:%M:%SZ},900,{value}")
    return ("\n".join(lines) + "\n").encode()


# one run at a time, so which requests share a run does not depend on timing
API_CONFIG = {"ingest_runs": 1}


def seed_api(api: Api) -> None:
    api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]


def test_concurrent_requests_share_a_run_and_each_is_answered_for_its_own_body(
    api: Api,
) -> None:
    """The first request's run is held by a lock on the readings table, so the next
    three queue behind it and go through the pipeline together; each answer counts only
    its own body, and its rejects carry its own indices."""
    bodies = {
        "first": _csv("G0", ["0.31", "0.42", "0.36", "0.49"]),
        # a bad value at index 3 (CSV line 5), after the good ones: no gap
        "bad": _csv("G1", ["0.21", "0.32", "0.26", "lots"]),
        # one line sent twice: an identical duplicate
        "dup": _csv("G2", ["0.51", "0.62", "0.56", "0.56"]).replace(
            _csv("G2", ["0.56"], 3).split(b"\n")[1], _csv("G2", ["0.56"], 2).split(b"\n")[1]
        ),
        # the first request's meter again: two values corrected, two the same
        "fix": _csv("G0", ["0.31", "0.44", "0.36", "0.50"]),
    }
    answers: dict[str, Any] = {}

    def post(name: str) -> None:
        answers[name] = api.client.post(
            "/v1/readings",
            content=bodies[name],
            headers={"X-API-Key": api.tokens["feeder"], "Content-Type": "text/csv"},
        )

    state = api.client.app.state.metrify  # type: ignore[attr-defined]
    with psycopg.connect(api.url) as lock:
        lock.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        threads = [threading.Thread(target=post, args=(name,)) for name in bodies]
        threads[0].start()
        until(
            lambda: (
                "readings" in state.ingest_groups and state.ingest_groups["readings"].running == 1
            )
        )
        group = state.ingest_groups["readings"]
        for thread in threads[1:]:
            thread.start()
        until(lambda: group.waiting == 3)
        lock.rollback()  # the held run goes on; the three waiting share the next one
    for thread in threads:
        thread.join(60)
    assert (group.runs, group.entries) == (2, 4)
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(bodies, 200)
    got = {name: r.json() for name, r in answers.items()}
    fields = ("read", "accepted", "rejected", "quarantined", "inserted", "updated")
    fields += ("unchanged", "duplicates")
    summaries = {name: {f: got[name]["summary"][f] for f in fields} for name in got}
    assert summaries == {
        "first": dict(zip(fields, (4, 4, 0, 0, 4, 0, 0, 0), strict=True)),
        "bad": dict(zip(fields, (4, 3, 1, 1, 3, 0, 0, 0), strict=True)),
        "dup": dict(zip(fields, (4, 3, 0, 0, 3, 0, 0, 1), strict=True)),
        "fix": dict(zip(fields, (4, 4, 0, 0, 0, 2, 2, 0), strict=True)),
    }
    assert [(r["index"], r["line"]) for r in got["bad"]["rejects"]] == [(3, 5)]
    assert all(not got[name]["rejects"] for name in ("first", "dup", "fix"))
    with psycopg.connect(api.url) as conn:
        values = conn.execute(
            "SELECT import_kwh, source FROM readings WHERE meter_id = 'G0' ORDER BY ts"
        ).fetchall()
        history = conn.execute("SELECT count(*) FROM reading_history WHERE meter_id = 'G0'")
        assert history.fetchone() == (2,)
    assert [v for v, _ in values] == pytest.approx([0.31, 0.44, 0.36, 0.50])
    assert {s for _, s in values} == {got["first"]["source"], got["fix"]["source"]}
