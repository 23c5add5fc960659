"""Group commit for ingest requests: the requests that arrived while a pipeline run was
busy go through the next run together.

A pipeline run has a fixed cost (history and detector state loaded, a few hundred
column operations, a transaction) that dwarfs the per-record cost of a 1,000-reading
request. Under concurrent load, requests therefore queue here and the first waiting
thread becomes the leader: it takes a group off the queue, runs it once, hands each
request its own answer and goes on until its own request is done; then another waiting
thread leads. A request that arrives at an idle server runs at once, alone.

Two requests that share an id (a meter, node or station) never share a run: within one
run the later row of a key would supersede the earlier one as a conflicting duplicate,
whereas in two runs it is a correction kept in the version history. A request also never
overtakes an earlier waiting request it shares an id with, so the order in which data of
one meter arrived is the order in which it is written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class Entry(Generic[T, R]):
    """One request waiting for a run: what it carries, its ids and size, its answer."""

    item: T
    ids: frozenset[str]
    rows: int
    result: R | None = None
    error: BaseException | None = None
    done: bool = field(default=False)


class GroupCommit(Generic[T, R]):
    """Serialises runs of ``run`` and gathers the entries that waited into each.

    ``run(entries)`` returns one result per entry, in order, or raises: then every
    entry of the group gets the exception.
    """

    def __init__(self, run: Callable[[list[Entry[T, R]]], list[R]], max_rows: int) -> None:
        self._run = run
        self._max_rows = max_rows
        self._queue: list[Entry[T, R]] = []
        self._busy = False
        self._changed = threading.Condition()
        #: how many runs and entries went through (for tests and metrics)
        self.runs = 0
        self.entries = 0

    @property
    def waiting(self) -> int:
        """Requests queued for the next run."""
        with self._changed:
            return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether a run is going on."""
        with self._changed:
            return self._busy

    def submit(self, item: T, ids: frozenset[str], rows: int) -> R:
        """Block until ``item`` has gone through a run; its result, or its run's error."""
        entry: Entry[T, R] = Entry(item, ids, rows)
        with self._changed:
            self._queue.append(entry)
            while not entry.done and self._busy:
                self._changed.wait()
            if not entry.done:
                self._busy = True
        if not entry.done:
            self._lead(entry)
        if entry.error is not None:
            raise entry.error
        assert entry.result is not None
        return entry.result

    def _lead(self, own: Entry[T, R]) -> None:
        """Run groups until ``own`` is done, then let a waiting thread lead."""
        try:
            while not own.done:
                with self._changed:
                    group = self._take()
                self._execute(group)
                with self._changed:
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()

    def _take(self) -> list[Entry[T, R]]:
        """The next group, in arrival order: the first waiting entry, then each later
        one that fits the row budget and shares no id with the group or with an
        earlier entry left waiting."""
        group: list[Entry[T, R]] = []
        left: list[Entry[T, R]] = []
        taken: set[str] = set()
        blocked: set[str] = set()
        rows = 0
        for entry in self._queue:
            fits = not group or (
                rows + entry.rows <= self._max_rows
                and taken.isdisjoint(entry.ids)
                and blocked.isdisjoint(entry.ids)
            )
            if fits:
                group.append(entry)
                taken |= entry.ids
                rows += entry.rows
            else:
                left.append(entry)
                blocked |= entry.ids
        self._queue = left
        return group

    def _execute(self, group: list[Entry[T, R]]) -> None:
        try:
            results = self._run(group)
        except BaseException as exc:  # every request of the run failed with it
            for entry in group:
                entry.error = exc
        else:
            for entry, result in zip(group, results, strict=True):
                entry.result = result
        finally:
            self.runs += 1
            self.entries += len(group)
            for entry in group:
                entry.done = True
