"""A long batch's parts queue at the writer: one written, the next waiting behind it.

The detectors judge a part faster than the database writes the one before it once the
parts are full size, so the main thread hands the next part over before the write in
progress ends and the writer never waits for it. A write queued behind one that failed
is never made: its rows would be stored past a hole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import polars as pl
import psycopg
import pytest

from metrify.contracts.records import READING
from metrify.pipeline.stages import Pipeline
from metrify.settings import Settings, get_settings
from metrify.simulation import Fleet, FleetSpec
from metrify.stores import postgres
from support.pipeline import load_frames
from support.waiting import until

METERS, DAYS = 6, 42
SPEC = FleetSpec(meters=METERS, days=DAYS, interval_s=1800, seed=11, chunk_days=7)
#: the whole load is one batch, judged and written in parts of one or two weeks
BATCH = METERS * DAYS * 48 * 3 // 4
#: how long the writer waits for the pipeline to reach a state it should reach at once
PATIENCE_S = 20.0


class WriteFailed(RuntimeError):
    """The store's failure, as the writer thread raises it."""


@pytest.fixture
def parts(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("METRIFY_BATCH_SIZE", str(BATCH))
    get_settings.cache_clear()
    return get_settings()


def _frames() -> list[pl.DataFrame]:
    rows = pl.concat(list(Fleet(SPEC).readings()))
    return [part.sort("ts") for _, part in rows.group_by("meter_id", maintain_order=True)]


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], int]]:
    """How many parts the load's pipeline has handed to its writer so far."""
    made: list[Pipeline] = []
    real_init = Pipeline.__init__

    def init(self: Pipeline, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(Pipeline, "__init__", init)
    yield lambda: max((p.handed for p in made), default=0)


def test_the_next_part_is_handed_over_while_the_first_is_still_being_written(
    parts: Settings,
    conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    handed: Callable[[], int],
) -> None:
    real_write = postgres.PostgresStore.write_series
    seen: dict[str, int] = {}
    calls: list[int] = []

    def held_write(self: postgres.PostgresStore, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:  # the first part: held until the test has looked
            # the second part is handed to the writer while the first is being written
            # (the load fails here, on the writer thread, if it never is) ...
            until(lambda: handed() >= 2, PATIENCE_S)
            time.sleep(0.3)  # room for a third part to be handed, were it allowed
            seen["handed_while_held"] = handed()
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(postgres.PostgresStore, "write_series", held_write)
    load_frames(parts, READING, _frames())

    assert len(calls) > 3  # the batch went in parts
    # ... and no third: one part waits behind the one being written, no more
    assert seen["handed_while_held"] == 2
    # every reading stored once all the same
    stored = conn.execute("SELECT count(*), count(DISTINCT (meter_id, ts)) FROM readings")
    rows, keys = stored.fetchone() or (0, 0)
    assert rows == keys >= pl.concat(_frames()).unique(["meter_id", "ts"]).height


def test_a_part_queued_behind_a_failed_write_is_not_written(
    parts: Settings,
    conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    handed: Callable[[], int],
) -> None:
    real_write = postgres.PostgresStore.write_series
    written: list[pl.DataFrame] = []
    calls: list[int] = []

    def failing_write(
        self: postgres.PostgresStore, contract: object, frame: pl.DataFrame, **kwargs: object
    ) -> object:
        calls.append(1)
        if len(calls) == 2:  # the second part fails once the third waits behind it
            until(lambda: handed() >= 3, PATIENCE_S)
            raise WriteFailed("the database went away")
        written.append(frame)  # the store itself would write any other part
        return real_write(self, contract, frame, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(postgres.PostgresStore, "write_series", failing_write)
    with pytest.raises(WriteFailed):
        load_frames(parts, READING, _frames())

    (first,) = written  # the third part never reached the store
    stored = conn.execute("SELECT count(*), max(ts) FROM readings").fetchone()
    assert stored is not None
    assert stored[0] == first.height
    assert stored[1] == first["ts"].max()
