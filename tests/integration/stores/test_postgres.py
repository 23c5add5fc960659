"""The PostgreSQL store and lake through the pipeline: idempotency, corrections, partitions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import psycopg
import pytest

from metrify.contracts.records import METER, READING
from metrify.pipeline.session import open_session
from metrify.settings import Settings, UnknownMeterPolicy
from metrify.sources.mapping import build_mapping
from metrify.stores.lake import Lake

MAPPING = build_mapping(READING, interval_s=1800)


def raw_readings(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """Raw string rows as a CSV reader would hand them over."""
    return pl.DataFrame(
        {
            "meter_id": [r[0] for r in rows],
            "ts": [r[1] for r in rows],
            "import_kwh": [r[2] for r in rows],
        }
    )


def run(
    settings: Settings, frame: pl.DataFrame, source: str = "file:test.csv"
) -> dict[str, object]:
    with open_session(settings) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(frame, source=source, mapping=MAPPING)
        return pipeline.close().as_dict()


def day_rows(meter: str, day: str, n: int) -> list[tuple[str, str, str]]:
    start = dt.datetime.fromisoformat(day)
    return [
        (meter, (start + dt.timedelta(minutes=30 * i)).isoformat() + "Z", f"{0.1 * (i + 1):.3f}")
        for i in range(n)
    ]


def count(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def test_same_batch_twice_changes_nothing(settings: Settings, conn: psycopg.Connection) -> None:
    rows = day_rows("M1", "2013-01-01", 48) + day_rows("M2", "2013-01-01", 48)
    first = run(settings, raw_readings(rows))
    assert first["inserted"] == 96 and first["accepted"] == 96
    second = run(settings, raw_readings(rows))
    assert second["inserted"] == 0 and second["updated"] == 0 and second["unchanged"] == 96
    assert count(conn, "SELECT count(*) FROM readings") == 96
    assert count(conn, "SELECT count(*) FROM reading_history") == 0
    expected_total = sum(float(r[2]) for r in rows)
    total = conn.execute("SELECT sum(import_kwh) FROM readings").fetchone()
    assert total is not None and total[0] == pytest.approx(expected_total)


def test_changed_value_is_a_correction_with_history(
    settings: Settings, conn: psycopg.Connection
) -> None:
    rows = day_rows("M1", "2013-01-01", 4)
    run(settings, raw_readings(rows), source="file:a.csv")
    changed = list(rows)
    changed[2] = (rows[2][0], rows[2][1], "9.5")
    summary = run(settings, raw_readings(changed), source="file:b.csv")
    assert summary["updated"] == 1 and summary["unchanged"] == 3
    history = conn.execute(
        "SELECT meter_id, import_kwh, source, replaced_by, reason FROM reading_history"
    ).fetchall()
    assert history == [("M1", float(rows[2][2]), "file:a.csv", "file:b.csv", "corrected")]
    current = conn.execute(
        "SELECT import_kwh, source FROM readings WHERE ts = %s", (rows[2][1],)
    ).fetchone()
    assert current == (9.5, "file:b.csv")


def test_anomaly_bit_alone_is_no_correction(settings: Settings, conn: psycopg.Connection) -> None:
    """A re-delivered record judged differently by the detectors (state moved on) is the
    same record: nothing changes, no history; a real change still is a correction."""
    from metrify.contracts.records import Quality

    rows = day_rows("M1", "2013-01-01", 3)
    run(settings, raw_readings(rows))
    stored = conn.execute("SELECT ts, quality FROM readings ORDER BY ts").fetchall()
    with open_session(settings) as session:
        frame = pl.DataFrame(
            session.conn.execute(
                f"SELECT {', '.join(READING.fields)}, quality, status, source, ingested_at"
                " FROM readings ORDER BY ts"
            ).fetchall(),
            orient="row",
            schema=[*READING.fields, "quality", "status", "source", "ingested_at"],
        )
        flagged = frame.with_columns(quality=pl.col("quality") | int(Quality.ANOMALY))
        same = session.store.write_series(READING, flagged.select(frame.columns))
        assert (same.inserted, same.updated) == (0, 0)
        changed = flagged.with_columns(import_kwh=pl.col("import_kwh") + 1.0)
        corrected = session.store.write_series(READING, changed.select(frame.columns))
        assert corrected.updated == 3
    assert conn.execute("SELECT count(*) FROM reading_history").fetchone() == (3,)
    assert conn.execute("SELECT ts, quality FROM readings ORDER BY ts").fetchall() == [
        (ts, q | int(Quality.ANOMALY)) for ts, q in stored
    ]


def test_monthly_partitions_created_on_demand(settings: Settings, conn: psycopg.Connection) -> None:
    rows = day_rows("M1", "2031-01-31", 2) + day_rows("M1", "2031-03-05", 2)
    run(settings, raw_readings(rows))
    names = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings'"
        )
    }
    assert {"readings_p2031_01", "readings_p2031_03"} <= names
    assert "readings_p2031_02" not in names
    assert count(conn, "SELECT count(*) FROM readings_p2031_03") == 2


def test_unknown_meter_registered_then_promoted(
    settings: Settings, conn: psycopg.Connection
) -> None:
    run(settings, raw_readings(day_rows("NEW.1", "2013-01-01", 2)))
    assert conn.execute("SELECT status FROM meters WHERE meter_id = 'NEW.1'").fetchone() == (
        "unregistered",
    )
    with open_session(settings) as session:
        pipeline = session.pipeline(METER)
        pipeline.submit(
            pl.DataFrame({"meter_id": ["NEW.1"], "region": ["north"]}), source="file:m.csv"
        )
        pipeline.close()
    assert conn.execute(
        "SELECT status, region FROM meters WHERE meter_id = 'NEW.1'"
    ).fetchone() == (
        "active",
        "north",
    )


def test_unknown_meter_quarantined_when_configured(
    settings: Settings, conn: psycopg.Connection
) -> None:
    strict = settings.model_copy(update={"unknown_meters": UnknownMeterPolicy.QUARANTINE})
    conn.execute("INSERT INTO meters (meter_id) VALUES ('KNOWN')")
    rows = day_rows("KNOWN", "2013-01-01", 3) + day_rows("STRANGER", "2013-01-01", 2)
    summary = run(strict, raw_readings(rows))
    assert summary["accepted"] == 3 and summary["quarantined"] == 2
    assert summary["reasons"] == {"unknown meter_id": 2}
    assert count(conn, "SELECT count(*) FROM readings WHERE meter_id = 'STRANGER'") == 0
    assert count(conn, "SELECT count(*) FROM quarantine WHERE raw LIKE '%STRANGER%'") == 2
    assert count(conn, "SELECT count(*) FROM meters WHERE meter_id = 'STRANGER'") == 0
    # the raw text is the stored row's fields, nothing of the writer's own bookkeeping
    columns = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'readings'"
        " ORDER BY ordinal_position"
    ).fetchall()
    raws = conn.execute("SELECT raw FROM quarantine WHERE raw LIKE '%STRANGER%'").fetchall()
    assert all(list(json.loads(str(r[0]))) == [c[0] for c in columns] for r in raws)


def test_bad_rows_go_to_quarantine_with_raw_payload(
    settings: Settings, conn: psycopg.Connection
) -> None:
    rows = [
        ("M1", "2013-01-01T00:00:00Z", "0.5"),
        ("M1", "not a time", "0.5"),
        ("", "2013-01-01T00:30:00Z", "0.5"),
        ("M1", "2013-01-01T01:00:00Z", "lots"),
        ("M1", "2013-01-01T01:30:00Z", "-2"),  # stored, flagged and rejected by VEE
    ]
    summary = run(settings, raw_readings(rows))
    assert summary["read"] == 5 and summary["accepted"] == 2 and summary["quarantined"] == 3
    stored = conn.execute(
        "SELECT reason, raw, source, kind FROM quarantine ORDER BY line"
    ).fetchall()
    assert [r[0] for r in stored] == [
        "unparseable ts",
        "missing meter_id",
        "non-numeric import_kwh",
    ]
    assert "not a time" in str(stored[0][1]) and "lots" in str(stored[2][1])
    assert {r[2] for r in stored} == {"file:test.csv"} and {r[3] for r in stored} == {"readings"}
    negative = conn.execute("SELECT status FROM readings WHERE import_kwh = -2").fetchone()
    assert negative == ("rejected",)


def test_conflicting_duplicate_in_batch_keeps_last(
    settings: Settings, conn: psycopg.Connection
) -> None:
    rows = [
        ("M1", "2013-01-01T00:00:00Z", "1.0"),
        ("M1", "2013-01-01T00:00:00Z", "1.0"),
        ("M1", "2013-01-01T00:00:00Z", "2.0"),
    ]
    summary = run(settings, raw_readings(rows))
    assert summary["duplicates"] == 1 and summary["accepted"] == 1 and summary["quarantined"] == 1
    assert conn.execute("SELECT import_kwh FROM readings").fetchall() == [(2.0,)]
    assert (
        count(conn, "SELECT count(*) FROM quarantine WHERE reason LIKE 'conflicting duplicate%'")
        == 1
    )


def test_lake_gets_new_versions_only(settings: Settings, tmp_path: Path) -> None:
    rows = day_rows("M1", "2013-01-01", 48) + day_rows("M1", "2013-01-02", 48)
    run(settings, raw_readings(rows))
    lake_root = Path(settings.lake) / "readings"
    dates = sorted(p.name for p in lake_root.iterdir() if p.name != "_delta_log")
    assert dates == ["date=2013-01-01", "date=2013-01-02"]
    files_before = sorted(lake_root.rglob("*.parquet"))
    run(settings, raw_readings(rows))
    assert sorted(lake_root.rglob("*.parquet")) == files_before
    changed = list(rows)
    changed[0] = (rows[0][0], rows[0][1], "7.25")
    run(settings, raw_readings(changed))
    lake = Lake(settings.lake).read("readings")
    assert lake.height == 97
    latest = lake.sort("ingested_at").group_by(["meter_id", "ts"]).last()
    assert latest.height == 96
    first = latest.filter(pl.col("ts") == dt.datetime(2013, 1, 1, tzinfo=dt.UTC))
    assert first["import_kwh"].to_list() == [7.25]
    meta = pl.read_parquet_schema(files_before[0])
    assert meta["quality"] == pl.Int32 and meta["status"] == pl.String


def _versions(meter: str, n: int, value: float, start: str = "2013-03-01") -> pl.DataFrame:
    """n half-hourly stored versions of one meter, every import ``value`` kWh."""
    first = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "meter_id": [meter] * n,
            "ts": [first + dt.timedelta(minutes=30 * i) for i in range(n)],
            "interval_s": [1800] * n,
            "import_kwh": [value] * n,
            "quality": [0] * n,
            "status": ["valid"] * n,
            "source": ["test"] * n,
            "ingested_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
        }
    ).with_columns(
        pl.col("ts").dt.cast_time_unit("us"), pl.col("ingested_at").dt.cast_time_unit("us")
    )


def _full(frame: pl.DataFrame) -> pl.DataFrame:
    missing = {c: pl.lit(None, t) for c, t in READING.schema.items() if c not in frame.columns}
    return frame.with_columns(**missing)


def test_fast_copy_then_overlap_falls_back_to_upsert(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Fresh keys take the straight COPY; a batch overlapping stored keys is rolled back
    to its savepoint and upserted, with exact counts and history, in the same store."""
    from metrify.stores.postgres import PostgresStore

    with open_session(settings) as session:
        store: PostgresStore = session.store
        first = store.write_series(READING, _full(_versions("F1", 48, 0.5)))
        assert (first.inserted, first.updated, first.unchanged) == (48, 0, 0)
        assert first.changed_keys is None
        # 24 stored keys with a new value, 24 stored unchanged, 24 new keys
        overlap = pl.concat(
            [
                _versions("F1", 24, 0.7),
                _versions("F1", 48, 0.5).slice(24),
                _versions("F1", 24, 0.9, start="2013-03-02"),
            ]
        )
        second = store.write_series(READING, _full(overlap))
        assert (second.inserted, second.updated, second.unchanged) == (24, 24, 24)
        assert second.changed_keys is not None and second.changed_keys.height == 48
        assert store._direct_cooldown > 0  # the fast COPY was tried and rolled back
    assert count(conn, "SELECT count(*) FROM readings WHERE meter_id = 'F1'") == 72
    assert count(conn, "SELECT count(*) FROM readings WHERE import_kwh = 0.7") == 24
    assert count(conn, "SELECT count(*) FROM reading_history WHERE meter_id = 'F1'") == 24
    # the fast path registered the meter and marked both UTC days' scores stale
    assert count(conn, "SELECT count(*) FROM meters WHERE meter_id = 'F1'") == 1
    assert count(conn, "SELECT count(*) FROM quality_dirty WHERE meter_id = 'F1'") == 2


def test_fast_copy_goes_into_the_partitions_and_marks_each_meter_day_once(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A fresh batch across a month's end is copied into both monthly partitions, past
    the parent's statement trigger, and the writer marks the aggregates' meter-days
    itself: each (meter, UTC day) once (the trigger marking them too would double
    them), announced on the aggregates' channel, and a refresh then sums every row."""
    from metrify.stores import aggregates
    from metrify.stores.postgres import PostgresStore

    # G1 from 30 Jan 22:00 to 1 Feb 01:30 UTC (three UTC days), G2 on 1 Feb
    g1 = _versions("G1", 56, 0.25, start="2013-01-30T22:00:00")
    g2 = _versions("G2", 4, 1.0, start="2013-02-01T00:00:00")
    expected_days = {
        ("G1", dt.date(2013, 1, 30)),
        ("G1", dt.date(2013, 1, 31)),
        ("G1", dt.date(2013, 2, 1)),
        ("G2", dt.date(2013, 2, 1)),
    }
    with psycopg.connect(conn.info.dsn, autocommit=True) as listener:
        listener.execute("LISTEN metrify_aggregates")
        with open_session(settings) as session:
            store: PostgresStore = session.store
            written = store.write_series(READING, _full(pl.concat([g1, g2])))
        assert written.inserted == 60 and store._direct_cooldown == 0  # the fast COPY
        assert any(n.channel == "metrify_aggregates" for n in listener.notifies(timeout=2))
    marks = conn.execute("SELECT meter_id, day FROM agg_dirty").fetchall()
    assert sorted(marks) == sorted(expected_days)  # once each
    assert count(conn, "SELECT count(*) FROM readings_p2013_01") == 4 + 48
    assert count(conn, "SELECT count(*) FROM readings_p2013_02") == 4 + 4
    aggregates.refresh(conn)
    total = conn.execute("SELECT sum(import_kwh) FROM agg_meter_30m").fetchone()
    assert total is not None and total[0] == pytest.approx(56 * 0.25 + 4 * 1.0)


@pytest.mark.parametrize("table", ["readings", "grid_measurements", "weather_observations"])
def test_fields_a_fresh_copy_leaves_out_default_to_null(
    conn: psycopg.Connection, table: str
) -> None:
    """The fast COPY leaves out the fields a batch carries for no row: the table must
    fill them with NULL, so no contract field may have another default."""
    from metrify.contracts.records import GRID, WEATHER

    contract = {"readings": READING, "grid_measurements": GRID, "weather_observations": WEATHER}
    defaults = dict(
        conn.execute(
            "SELECT column_name, column_default FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        ).fetchall()
    )
    fields = contract[table].fields
    assert set(fields) <= set(defaults)
    assert {f: defaults[f] for f in fields if defaults[f] is not None} == {}


def test_fresh_copy_of_partly_carried_fields_stores_each_as_given(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A fresh batch where one optional field is carried by some rows and another by
    none: the rows store the carried values, nulls elsewhere, and the version columns."""
    from metrify.stores.postgres import PostgresStore

    batch = _full(_versions("P1", 4, 0.5)).with_columns(
        voltage_v=pl.Series([230.0, None, 231.5, None], dtype=pl.Float64)
    )
    with open_session(settings) as session:
        store: PostgresStore = session.store
        written = store.write_series(READING, batch)
        assert written.inserted == 4 and store._direct_cooldown == 0  # the fast COPY
    stored = conn.execute(
        "SELECT voltage_v, export_kwh, register_kwh, import_kwh, quality, status, source"
        " FROM readings WHERE meter_id = 'P1' ORDER BY ts"
    ).fetchall()
    assert stored == [
        (230.0, None, None, 0.5, 0, "valid", "test"),
        (None, None, None, 0.5, 0, "valid", "test"),
        (231.5, None, None, 0.5, 0, "valid", "test"),
        (None, None, None, 0.5, 0, "valid", "test"),
    ]


def test_likely_stored_rows_are_upserted_and_the_rest_copied(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Keys the caller flags as possibly stored take the upsert; the rest go in by the
    fast COPY in the same transaction, so one repeated key costs no slow batch."""
    from metrify.stores.postgres import PostgresStore

    with open_session(settings) as session:
        store: PostgresStore = session.store
        store.write_series(READING, _full(_versions("S1", 24, 0.5)))
        batch = pl.concat(
            [
                _versions("S1", 12, 0.5),  # stored, unchanged
                _versions("S1", 24, 0.8).slice(12),  # stored, new value
                _versions("S1", 48, 0.3, start="2013-03-02"),  # new
            ]
        )
        likely = batch.select("meter_id", "ts").head(24)
        result = store.write_series(READING, _full(batch), likely_stored=likely)
        assert (result.inserted, result.updated, result.unchanged) == (48, 12, 12)
        assert store._direct_cooldown == 0  # the COPY of the new rows did not fail
        assert result.changed_keys is not None and result.changed_keys.height == 60
    assert count(conn, "SELECT count(*) FROM readings WHERE meter_id = 'S1'") == 72
    assert count(conn, "SELECT count(*) FROM readings WHERE import_kwh = 0.8") == 12
    assert count(conn, "SELECT count(*) FROM reading_history WHERE meter_id = 'S1'") == 12


def test_a_verdict_alone_is_no_correction_but_an_edit_is(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """The same values judged otherwise (a re-delivery cut differently after a crash)
    change nothing; an operator's edit of the verdict alone is a new version; a real
    reading equal to the estimate it replaces still replaces it."""
    from metrify.contracts.records import Quality
    from metrify.stores.postgres import PostgresStore

    first = _full(_versions("V1", 4, 0.5))
    with open_session(settings) as session:
        store = PostgresStore(session.conn)
        store.write_series(READING, first)
        rejudged = first.with_columns(
            quality=pl.lit(int(Quality.SPIKE)), status=pl.lit("suspect"), source=pl.lit("kafka")
        )
        again = store.write_series(READING, rejudged, likely_stored=first.select("meter_id", "ts"))
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
        edited = first.head(1).with_columns(
            quality=pl.lit(int(Quality.EDITED)), status=pl.lit("valid"), source=pl.lit("edit:op")
        )
        edit = store.write_series(READING, edited, likely_stored=edited.select("meter_id", "ts"))
        assert edit.updated == 1
        gap = _full(_versions("V2", 1, 0.7)).with_columns(
            quality=pl.lit(int(Quality.MISSING | Quality.ESTIMATED)), status=pl.lit("estimated")
        )
        store.write_series(READING, gap)
        real = _full(_versions("V2", 1, 0.7))
        arrived = store.write_series(READING, real, likely_stored=real.select("meter_id", "ts"))
        assert arrived.updated == 1
    stored = conn.execute(
        "SELECT meter_id, quality, status FROM readings ORDER BY meter_id, ts"
    ).fetchall()
    assert stored == [
        ("V1", int(Quality.EDITED), "valid"),
        ("V1", 0, "valid"),
        ("V1", 0, "valid"),
        ("V1", 0, "valid"),
        ("V2", 0, "valid"),
    ]
    reasons = conn.execute(
        "SELECT meter_id, reason FROM reading_history ORDER BY meter_id"
    ).fetchall()
    assert reasons == [("V1", "corrected"), ("V2", "real reading replaced estimate")]


def test_detector_state_tables_leave_room_for_their_next_version(
    conn: psycopg.Connection,
) -> None:
    """Rewritten after every micro-batch, they keep free space per page (HOT updates)."""
    rows = conn.execute(
        "SELECT relname, reloptions FROM pg_class"
        " WHERE relname IN ('anomaly_state', 'anomaly_profile') ORDER BY relname"
    ).fetchall()
    options = {name: set(opts or []) for name, opts in rows}
    assert "fillfactor=70" in options["anomaly_profile"]
    assert "fillfactor=50" in options["anomaly_state"]
