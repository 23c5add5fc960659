"""Group commit of concurrent ingest requests: which requests share a pipeline run, and
that each still gets its own answer (over HTTP, against the real pipeline and store)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from metrify.api.grouping import Entry, GroupCommit
from test_api_support import Api, running_api


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Recorder:
    """A run function that records its groups (when they start); the first ``held``
    runs wait for ``release``."""

    def __init__(self, fail: bool = False, held: int = 1) -> None:
        self.groups: list[list[str]] = []
        self.release = threading.Event()
        self.fail = fail
        self.held = held
        self._lock = threading.Lock()

    def __call__(self, group: list[Entry[str, str]]) -> list[str]:
        with self._lock:
            self.groups.append([e.item for e in group])
            hold = len(self.groups) <= self.held
        if hold:
            self.release.wait(30)
        if self.fail and len(self.groups) == 2:
            raise RuntimeError("database went away")
        return [f"done {e.item}" for e in group]


def _hold_then_queue(
    commit: GroupCommit[str, str],
    recorder: Recorder,
    entries: list[tuple[str, set[str], int]],
) -> dict[str, Any]:
    """Submit entries in order, each once the one before runs or waits: the first
    starts a run (which waits), the rest queue. Then release the held run."""
    answers: dict[str, Any] = {}

    def submit(name: str, ids: set[str], rows: int) -> None:
        try:
            answers[name] = commit.submit(name, frozenset(ids), rows)
        except Exception as exc:  # the answer under test
            answers[name] = exc

    threads = []
    for k, entry in enumerate(entries):
        thread = threading.Thread(target=submit, args=entry)
        thread.start()
        threads.append(thread)
        if k == 0:
            _until(lambda: commit.running == 1)
        else:
            _until(lambda k=k: commit.waiting == k)  # type: ignore[misc]
    recorder.release.set()
    for thread in threads:
        thread.join(30)
    return answers


def _groups(entries: list[tuple[str, set[str], int]], max_rows: int = 10_000) -> list[list[str]]:
    """The runs one slot makes of ``entries`` queued behind the first one's run."""
    recorder = Recorder()
    _hold_then_queue(GroupCommit(recorder, max_rows=max_rows, slots=1), recorder, entries)
    return recorder.groups


def test_requests_that_wait_share_the_next_run_and_each_gets_its_answer() -> None:
    recorder = Recorder()
    commit: GroupCommit[str, str] = GroupCommit(recorder, max_rows=10_000, slots=1)
    answers = _hold_then_queue(
        commit, recorder, [("A", {"m1"}, 1000), ("B", {"m2"}, 1000), ("C", {"m3"}, 1000)]
    )
    assert recorder.groups == [["A"], ["B", "C"]]
    assert answers == {"A": "done A", "B": "done B", "C": "done C"}
    assert (commit.runs, commit.entries, commit.running) == (2, 3, 0)
    # a request at an idle server runs at once, alone
    assert commit.submit("D", frozenset({"m1"}), 10) == "done D"
    assert recorder.groups[-1] == ["D"]


def test_requests_sharing_an_id_never_share_a_run_nor_overtake_each_other() -> None:
    groups = _groups(
        [
            ("A", {"m0"}, 10),
            ("B", {"m1"}, 10),
            ("C", {"m1", "m5"}, 10),  # shares m1 with B: the next run
            ("D", {"m5"}, 10),  # free of B, but shares m5 with C, which came first
            ("E", {"m6"}, 10),
        ]
    )
    assert groups == [["A"], ["B", "E"], ["C"], ["D"]]


def test_a_run_takes_requests_up_to_its_row_budget() -> None:
    groups = _groups(
        [("A", {"a"}, 1000), ("B", {"b"}, 1000), ("C", {"c"}, 1000), ("D", {"d"}, 5000)],
        max_rows=2500,
    )
    # B and C fit 2,500 together, D alone exceeds it and still runs (alone)
    assert groups == [["A"], ["B", "C"], ["D"]]


def test_a_failed_run_fails_its_requests_and_the_next_run_goes_on() -> None:
    recorder = Recorder(fail=True)
    commit: GroupCommit[str, str] = GroupCommit(recorder, max_rows=10_000, slots=1)
    answers = _hold_then_queue(
        commit, recorder, [("A", {"a"}, 1), ("B", {"b"}, 1), ("C", {"c"}, 1)]
    )
    assert answers["A"] == "done A"
    assert [type(answers[n]) for n in "BC"] == [RuntimeError, RuntimeError]
    assert commit.submit("D", frozenset({"d"}), 1) == "done D"
    assert commit.running == 0


def test_two_slots_run_two_requests_at_once_but_never_two_of_one_meter() -> None:
    recorder = Recorder(held=1)
    commit: GroupCommit[str, str] = GroupCommit(recorder, max_rows=10_000, slots=2)
    answers: dict[str, str] = {}

    def submit(name: str, ids: set[str]) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: answers.__setitem__(name, commit.submit(name, frozenset(ids), 10))
        )
        thread.start()
        return thread

    held = submit("A", {"m1"})  # its run waits
    _until(lambda: commit.running == 1)
    submit("B", {"m2"}).join(30)  # the second slot: runs at once, beside A
    late = submit("C", {"m1"})  # A's meter: waits for A's run though a slot is free
    _until(lambda: commit.waiting == 1)
    submit("D", {"m3"}).join(30)  # goes past C: they share nothing
    assert answers == {"B": "done B", "D": "done D"}
    recorder.release.set()
    held.join(30)
    late.join(30)
    assert recorder.groups == [["A"], ["B"], ["D"], ["C"]]
    assert answers["C"] == "done C"


# --- over HTTP ------------------------------------------------------------------------

START = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)


def _csv(meter: str, values: list[str], first: int = 0) -> bytes:
    lines = ["meter_id,ts,interval_s,import_kwh"]
    for i, value in enumerate(values, start=first):
        ts = START + dt.timedelta(minutes=15 * i)
        lines.append(f"{meter},{ts:%Y-%m-%dT%H:%M:%SZ},900,{value}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # one run at a time, so which requests share a run does not depend on timing
    with running_api(database_url, tmp_path_factory.mktemp("grouping"), ingest_runs=1) as api:
        api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]
        yield api


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
        _until(
            lambda: (
                "readings" in state.ingest_groups and state.ingest_groups["readings"].running == 1
            )
        )
        group = state.ingest_groups["readings"]
        for thread in threads[1:]:
            thread.start()
        _until(lambda: group.waiting == 3)
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
