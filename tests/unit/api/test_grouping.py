"""Group commit of concurrent ingest requests: which requests share a pipeline run, and
that each still gets its own answer."""

from __future__ import annotations

import threading
from typing import Any

from metrify.api.grouping import Entry, GroupCommit
from support.waiting import until


class Recorder:
    """A run function that records its groups (when they start); the first ``held``
    runs wait for ``release``."""

    def __init__(
        self, fail: bool = False, held: int = 1, bad: frozenset[str] = frozenset()
    ) -> None:
        self.groups: list[list[str]] = []
        self.release = threading.Event()
        #: every run after the first fails while this is set (the database went away)
        self.fail = fail
        self.held = held
        #: items whose own content makes any run holding them fail
        self.bad = bad
        self._lock = threading.Lock()

    def __call__(self, group: list[Entry[str, str]]) -> list[str]:
        with self._lock:
            self.groups.append([e.item for e in group])
            hold = len(self.groups) <= self.held
            down = self.fail and len(self.groups) >= 2
        if hold:
            self.release.wait(30)
        if down:
            raise RuntimeError("database went away")
        spoilt = [e.item for e in group if e.item in self.bad]
        if spoilt:
            raise ValueError(f"bad value in {spoilt[0]}")
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
            until(lambda: commit.running == 1)
        else:
            until(lambda k=k: commit.waiting == k)  # type: ignore[misc]
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
    recorder.fail = False  # the database is back
    assert commit.submit("D", frozenset({"d"}), 1) == "done D"
    assert commit.running == 0


def test_one_bad_request_fails_alone_and_the_others_of_its_run_are_stored() -> None:
    """A request whose content breaks its shared run is found by running the run's
    requests one by one: its failure stays its own."""
    recorder = Recorder(bad=frozenset({"C"}))
    commit: GroupCommit[str, str] = GroupCommit(recorder, max_rows=10_000, slots=1)
    answers = _hold_then_queue(
        commit,
        recorder,
        [("A", {"a"}, 1), ("B", {"b"}, 1), ("C", {"c"}, 1), ("D", {"d"}, 1)],
    )
    assert recorder.groups == [["A"], ["B", "C", "D"], ["B"], ["C"], ["D"]]
    assert answers["A"] == "done A"
    assert answers["B"] == "done B" and answers["D"] == "done D"
    assert isinstance(answers["C"], ValueError) and "C" in str(answers["C"])
    assert (commit.runs, commit.entries, commit.running) == (2, 4, 0)


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
    until(lambda: commit.running == 1)
    submit("B", {"m2"}).join(30)  # the second slot: runs at once, beside A
    late = submit("C", {"m1"})  # A's meter: waits for A's run though a slot is free
    until(lambda: commit.waiting == 1)
    submit("D", {"m3"}).join(30)  # goes past C: they share nothing
    assert answers == {"B": "done B", "D": "done D"}
    recorder.release.set()
    held.join(30)
    late.join(30)
    assert recorder.groups == [["A"], ["B"], ["D"], ["C"]]
    assert answers["C"] == "done C"


def test_requests_kept_apart_never_share_a_run_but_may_run_beside_each_other() -> None:
    """``apart`` (one Idempotency-Key): never in one run, but unlike ``ids`` neither
    kept from running beside each other nor blocking the requests queued after them."""
    recorder = Recorder(held=1)
    commit: GroupCommit[str, str] = GroupCommit(recorder, max_rows=10_000, slots=2)
    answers: dict[str, str] = {}

    def submit(name: str, ids: set[str], apart: set[str]) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: answers.__setitem__(
                name, commit.submit(name, frozenset(ids), 10, frozenset(apart))
            )
        )
        thread.start()
        return thread

    held = submit("A", {"m1"}, {"k"})  # its run waits
    until(lambda: commit.running == 1)
    submit("B", {"m2"}, {"k"}).join(30)  # A's key, not its meter: runs beside A at once
    assert answers == {"B": "done B"}
    recorder.release.set()
    held.join(30)
    assert recorder.groups == [["A"], ["B"]]

    # one slot, held: the three queued make two runs, the two of one key apart
    recorder = Recorder(held=1)
    commit = GroupCommit(recorder, max_rows=10_000, slots=1)
    answers.clear()
    threads = [submit("H", {"m0"}, set())]
    until(lambda: commit.running == 1)
    for k, (name, ids, apart) in enumerate(
        [("C", {"m3"}, {"k2"}), ("D", {"m4"}, {"k2"}), ("E", {"m5"}, set())], start=1
    ):
        threads.append(submit(name, ids, apart))
        until(lambda k=k: commit.waiting == k)  # type: ignore[misc]
    recorder.release.set()
    for thread in threads:
        thread.join(30)
    assert recorder.groups == [["H"], ["C", "E"], ["D"]]
    assert answers == {name: f"done {name}" for name in "HCDE"}
