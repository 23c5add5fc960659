"""A month new to the store, written in bulk: into a bare table, indexed once, attached.

The writer loads a month with no partition yet and many rows in the write into a bare
table, and attaches it as the month's partition once its rows are in (PostgreSQL then
builds the indexes in one sorted pass, instead of entering each row into them). These
tests pin what that must keep: the partition is the parent's like any other (its
indexes, its key enforced), nothing is left behind, a small month keeps the usual path,
and a writer creating a partition at the same time neither deadlocks nor fails.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import polars as pl
import psycopg
import pytest
from psycopg import errors

from metrify.contracts.records import READING
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from metrify.stores import database, partitions
from metrify.stores.partitions import BULK_MONTH_ROWS
from support.lake import batch

MAY, JUNE = dt.date(2040, 5, 1), dt.date(2040, 6, 1)
HALF_HOURS_IN_MAY = 31 * 48


def _readings(meters: int, start: dt.date, per_meter: int) -> pl.DataFrame:
    """``per_meter`` half-hourly readings of each of ``meters`` meters from ``start``, all
    new keys (:func:`support.lake.batch`: each value tells its meter and place)."""
    return pl.concat([batch(f"B{m}", start, value=m, n=per_meter) for m in range(meters)])


@pytest.fixture
def fresh_months(conn: psycopg.Connection[Any]) -> None:
    """May and June 2040 without partitions (whatever an earlier test left)."""
    for month in (MAY, JUNE):
        conn.execute(f"DROP TABLE IF EXISTS readings_p{month:%Y_%m}")


@pytest.fixture
def new_month_calls(monkeypatch: pytest.MonkeyPatch) -> list[dt.date]:
    """The months the writer asked a bare table for (the real function still runs)."""
    calls: list[dt.date] = []
    real = partitions.new_month

    def spy(cur: psycopg.Cursor[Any], table: str, month: dt.date) -> str | None:
        calls.append(month)
        return real(cur, table, month)

    monkeypatch.setattr("metrify.stores.postgres.new_month", spy)
    return calls


def _indexes(conn: psycopg.Connection[Any], partition: str) -> set[str]:
    """The partition's index definitions, with its own name taken out."""
    rows = conn.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
        (partition,),
    ).fetchall()
    return {str(r[0]).replace(partition, "P") for r in rows}


def test_a_new_months_many_rows_are_loaded_bare_and_attached_with_the_parents_indexes(
    settings: Settings,
    conn: psycopg.Connection[Any],
    fresh_months: None,
    new_month_calls: list[dt.date],
) -> None:
    may = _readings(7, MAY, HALF_HOURS_IN_MAY)  # 10,416 rows: a bulk month
    june = _readings(2, JUNE, 10)  # a few rows: the usual partition made empty
    assert may.height >= BULK_MONTH_ROWS > june.height
    frame = pl.concat([may, june])
    with open_session(settings) as session:
        result = session.store.write_series(READING, frame)
    assert result.inserted == frame.height
    assert new_month_calls == [MAY]

    parts = {
        str(r[0])
        for r in conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'readings'::regclass"
        )
    }
    assert {"readings_p2040_05", "readings_p2040_06"} <= parts
    # the same indexes as a partition made the usual way: the unique key and the BRIN
    may_indexes = _indexes(conn, "readings_p2040_05")
    assert may_indexes == _indexes(conn, "readings_p2040_06")
    assert any("UNIQUE" in d and "(meter_id, ts)" in d for d in may_indexes)
    assert any("brin" in d for d in may_indexes)
    # nothing of the load is left: no bare table, no check of its own
    left = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'readings_p2040_05_load%'"
    ).fetchone()
    assert left == (0,)
    checks = conn.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'readings_p2040_05'::regclass"
        " AND contype = 'c' AND conname LIKE '%month'"
    ).fetchall()
    assert checks == []
    # every row, in its month
    got = conn.execute("SELECT count(*), sum(import_kwh) FROM readings_p2040_05").fetchone()
    assert got is not None and got[0] == may.height
    assert got[1] == pytest.approx(may["import_kwh"].sum())

    # the key holds: the same write again is all unchanged (the fast COPY fails on the
    # attached index and the batch is upserted), and a repeated key is refused
    with open_session(settings) as session:
        again = session.store.write_series(READING, frame)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, frame.height)
    with pytest.raises(errors.UniqueViolation):
        conn.execute(
            "INSERT INTO readings SELECT * FROM readings_p2040_05 ORDER BY meter_id, ts LIMIT 1"
        )


def test_a_month_made_meanwhile_by_another_writer_is_written_into_it(
    settings: Settings,
    conn: psycopg.Connection[Any],
    fresh_months: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between the writer's look for missing months and its bare table, another writer
    creates the month: the rows go into that partition the usual way."""
    real = partitions.new_month

    def raced(cur: psycopg.Cursor[Any], table: str, month: dt.date) -> str | None:
        with psycopg.connect(settings_owner_url(settings), autocommit=True) as other:
            other.execute("SET lock_timeout = '10s'")  # a failure, never a hang
            other.execute("SELECT metrify_ensure_partition(%s, %s)", (table, month))
        return real(cur, table, month)

    monkeypatch.setattr("metrify.stores.postgres.new_month", raced)
    may = _readings(7, MAY, HALF_HOURS_IN_MAY)
    with open_session(settings) as session:
        result = session.store.write_series(READING, may)
    assert result.inserted == may.height
    assert conn.execute("SELECT count(*) FROM readings_p2040_05").fetchone() == (may.height,)


def settings_owner_url(settings: Settings) -> str:
    owner = settings.database_owner_url
    assert owner is not None
    return owner.get_secret_value()


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def run() -> None:
        try:
            out.append(work())
        except Exception as exc:  # the test reads it
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_writer_creating_a_partition_meanwhile_waits_and_finds_the_month_made(
    settings: Settings, database_url: str, fresh_months: None
) -> None:
    """The bare table's transaction holds the partition creators' lock from the start:
    another writer asking for the month waits for it, then finds it made. Taken only at
    the attach, the two locks were taken in opposite orders and PostgreSQL ended one
    of the writers with a deadlock."""
    with (
        database.connect(settings) as app_conn,
        psycopg.connect(database_url, autocommit=True) as other,
        app_conn.transaction(),
    ):
        bare = app_conn.execute("SELECT metrify_new_month('readings', %s)", (MAY,)).fetchone()
        assert bare is not None and str(bare[0]).startswith("readings_p2040_05_load")
        thread, out = _in_thread(
            lambda: other.execute(
                "SELECT metrify_ensure_partition('readings', %s)", (MAY,)
            ).fetchone()
        )
        thread.join(0.5)
        assert thread.is_alive() and out == []  # waiting for this transaction
        app_conn.execute("SELECT metrify_attach_month('readings', %s)", (MAY,))
    thread.join(10)
    assert out == [(False,)]  # made already: not created twice, no error


def test_the_bulk_month_functions_take_only_monthly_partitions_of_this_schema(
    settings: Settings, fresh_months: None
) -> None:
    """The app's two new DDL doors: a partitioned table's month, its own bare table."""
    with database.connect(settings) as app_conn:
        for args in (("audit_log", MAY), ("readings", dt.date(2040, 5, 15))):
            for function in ("metrify_new_month", "metrify_attach_month"):
                with pytest.raises(errors.RaiseException):
                    app_conn.execute(f"SELECT {function}(%s, %s)", args)
        with pytest.raises(errors.RaiseException):
            app_conn.execute("SELECT metrify_new_month(%s, %s)", ('x"; DROP TABLE y', MAY))
        # nothing to attach but the bare table this backend made
        with pytest.raises(errors.RaiseException, match="no table"):
            app_conn.execute("SELECT metrify_attach_month('readings', %s)", (MAY,))
