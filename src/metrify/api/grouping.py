"""Group commit for ingest requests: the requests that arrive while the pipeline is busy
go through the next run together.

A pipeline run has a fixed cost (history and detector state loaded, a few hundred
column operations, a transaction) that dwarfs the per-record cost of a 1,000-reading
request. A worker process therefore runs at most ``slots`` pipeline runs at once
(``api.ingest_runs``). A request that finds a free slot runs at once, alone; requests
that find every slot taken queue, and the next free slot takes them as one run.
Whichever waiting thread finds a slot free leads that run and hands each request its
own answer.

Two requests that share an id (a meter, node or station) never share a run, nor run at
the same time: within one run the later row of a key would supersede the earlier one
as a conflicting duplicate, whereas in two runs it is a correction kept in the version
history. A request also never overtakes an earlier waiting request it shares an id
with, so data of one meter is written in the order it arrived.

A request may also name tokens it must not share a run with but may run beside
(``apart``): two requests with one ``Idempotency-Key`` in one run would find the key
claimed by their own transaction, and the later one could only answer 409 although the
earlier is about to commit; in two runs the later finds the committed answer (or, the
first still running beside it, waits on its claim as documented).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class Entry(Generic[T, R]):
    """One request waiting for a run: what it carries, its ids and size, its answer."""

    item: T
    ids: frozenset[str]
    rows: int
    apart: frozenset[str] = frozenset()
    result: R | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit(Generic[T, R]):
    """Runs ``run`` on groups of the entries that waited, at most ``slots`` at once.

    ``run(entries)`` returns one result per entry, in order, or raises: then each entry
    of a group of several is run again alone and gets its own result or error (one bad
    request must not fail the others that happened to share its run); a lone entry, or
    an error that is not an ``Exception``, ends with the exception.
    """

    def __init__(
        self, run: Callable[[list[Entry[T, R]]], list[R]], max_rows: int, slots: int = 1
    ) -> None:
        self._run = run
        self._max_rows = max_rows
        self._slots = slots
        self._queue: list[Entry[T, R]] = []
        self._running = 0
        self._active: set[str] = set()  # the ids of the runs going on
        self._changed = threading.Condition()
        #: how many runs and entries went through (for tests and metrics)
        self.runs = 0
        self.entries = 0

    @property
    def waiting(self) -> int:
        """Requests queued for a run."""
        with self._changed:
            return len(self._queue)

    @property
    def running(self) -> int:
        """Runs going on."""
        with self._changed:
            return self._running

    def submit(
        self, item: T, ids: frozenset[str], rows: int, apart: frozenset[str] = frozenset()
    ) -> R:
        """Block until ``item`` has gone through a run; its result, or its run's error.
        Meanwhile the calling thread may lead runs of other waiting entries. ``apart``:
        tokens it shares no run with (but may run beside, unlike ``ids``)."""
        entry: Entry[T, R] = Entry(item, ids, rows, apart)
        with self._changed:
            self._queue.append(entry)
        while (group := self._next(entry)) is not None:
            try:
                self._execute(group)
            finally:
                with self._changed:
                    self._running -= 1
                    for taken in group:
                        self._active.difference_update(taken.ids)
                    self._changed.notify_all()
        if entry.error is not None:
            raise entry.error
        assert entry.result is not None
        return entry.result

    def _next(self, own: Entry[T, R]) -> list[Entry[T, R]] | None:
        """Wait until ``own`` is done (None) or a slot is free with a group to run,
        which the caller then runs."""
        with self._changed:
            while not own.done:
                group = self._take() if self._running < self._slots else []
                if group:
                    self._running += 1
                    for taken in group:
                        self._active.update(taken.ids)
                    return group
                self._changed.wait()
            return None

    def _take(self) -> list[Entry[T, R]]:
        """The next group, in arrival order: each waiting entry that fits the row budget
        (the first always does) and shares no id with the group, with a run going on,
        or with an earlier entry left waiting."""
        group: list[Entry[T, R]] = []
        left: list[Entry[T, R]] = []
        taken: set[str] = set()
        taken_apart: set[str] = set()
        blocked = set(self._active)
        rows = 0
        for entry in self._queue:
            fits = (
                (not group or rows + entry.rows <= self._max_rows)
                and taken.isdisjoint(entry.ids)
                and blocked.isdisjoint(entry.ids)
                and taken_apart.isdisjoint(entry.apart)
            )
            if fits:
                group.append(entry)
                taken |= entry.ids
                taken_apart |= entry.apart
                rows += entry.rows
            else:
                left.append(entry)
                blocked |= entry.ids
        self._queue = left
        return group

    def _execute(self, group: list[Entry[T, R]]) -> None:
        try:
            try:
                results = self._run(group)
            except Exception:
                if len(group) == 1:
                    raise
                # One request's content may have broken the shared run (a value the
                # store refuses): each is run again alone, so its failure stays its own.
                # Writes are idempotent: what the failed run may have stored is found
                # unchanged, not stored twice.
                for entry in group:
                    self._alone(entry)
            else:
                for entry, result in zip(group, results, strict=True):
                    entry.result = result
        except BaseException as exc:  # every request of the run failed with it
            for entry in group:
                entry.error = exc
        finally:
            with self._changed:
                self.runs += 1
                self.entries += len(group)
                for entry in group:
                    entry.done = True

    def _alone(self, entry: Entry[T, R]) -> None:
        """Run one entry of a failed group on its own: its result or its own error."""
        try:
            (entry.result,) = self._run([entry])
        except Exception as exc:
            entry.error = exc
