"""Detector state in PostgreSQL: subjects with nothing stored are copied straight in, and a
subject stored meanwhile by another process still ends up with the values saved last."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg

from metrify.anomaly.state import StateCache
from metrify.contracts.anomalies import PROFILE_SCHEMA, SCALAR_SCHEMA
from metrify.settings import Settings
from metrify.stores.detector_state import StateStore

T = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)


def scalars(ids: list[str], level: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "subject_id": ids,
            "last_ts": [T] * len(ids),
            "ewm_obs": [level] * len(ids),
            "ewm_exp": [level] * len(ids),
            "drop_since": [None] * len(ids),
            "shift_since": [None] * len(ids),
            "last_value": [level] * len(ids),
            "run_since": [None] * len(ids),
            "peak_kw": [2 * level] * len(ids),
            "peak_days": [3.0] * len(ids),
            "shift_until": [T - dt.timedelta(hours=2)] * len(ids),  # travels like the rest
        },
        schema=SCALAR_SCHEMA,
    )


def profile(ids: list[str], level: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "subject_id": [i for i in ids for _ in range(3)],
            "how": [h for _ in ids for h in (0, 1, 170)],
            "level": [level] * 3 * len(ids),
            "spread": [level / 10] * 3 * len(ids),
            "weight": [4.0] * 3 * len(ids),
        },
        schema=PROFILE_SCHEMA,
    )


def stored(conn: psycopg.Connection) -> tuple[dict[str, float], dict[tuple[str, int], float]]:
    state = dict(
        conn.execute("SELECT subject_id, ewm_obs FROM anomaly_state WHERE subject_type = 'meter'")
    )
    slots = {
        (r[0], r[1]): r[2]
        for r in conn.execute(
            "SELECT subject_id, how, level FROM anomaly_profile WHERE subject_type = 'meter'"
        )
    }
    return state, slots  # type: ignore[return-value]


def test_fresh_subjects_are_copied_in_and_one_stored_meanwhile_is_upserted(
    settings: Settings, conn: psycopg.Connection
) -> None:
    cache = StateCache(StateStore(conn, "meter"))
    cache.get(pl.Series(["A", "B", "C"]))  # nothing stored: all three are fresh
    assert sorted(cache.fresh()["subject_id"]) == ["A", "B", "C"]
    # another process stores B before this one saves
    other = StateStore(conn, "meter")
    other.save(profile(["B"], 9.0), scalars(["B"], 9.0))
    store = StateStore(conn, "meter")
    store.save(profile(["A", "B", "C"], 1.5), scalars(["A", "B", "C"], 1.5), cache.fresh())
    cache.saved(scalars(["A", "B", "C"], 1.5))
    state, slots = stored(conn)
    assert state == {"A": 1.5, "B": 1.5, "C": 1.5}
    assert slots == {(s, h): 1.5 for s in "ABC" for h in (0, 1, 170)}
    assert cache.fresh().height == 0
    # the open run's end (copied in for A and C, upserted for B) and read back
    until = conn.execute("SELECT DISTINCT shift_until FROM anomaly_state").fetchall()
    assert until == [(T - dt.timedelta(hours=2),)]
    (read,) = StateStore(conn, "meter").load(pl.Series(["A", "B"]))[1]["shift_until"].unique()
    assert read == T - dt.timedelta(hours=2)
    # a later save of the same subjects replaces the values (they take the upsert now)
    store.save(profile(["A"], 2.5), scalars(["A", "C"], 2.5), cache.fresh())
    state, slots = stored(conn)
    assert state == {"A": 2.5, "B": 1.5, "C": 2.5}
    assert slots[("A", 170)] == 2.5 and slots[("C", 170)] == 1.5


def test_subjects_found_stored_are_not_fresh(settings: Settings, conn: psycopg.Connection) -> None:
    StateStore(conn, "meter").save(profile(["A"], 1.0), scalars(["A"], 1.0))
    cache = StateCache(StateStore(conn, "meter"))
    cache.get(pl.Series(["A", "D"]))
    assert cache.fresh()["subject_id"].to_list() == ["D"]
    cache.forget()
    assert cache.fresh().height == 0
