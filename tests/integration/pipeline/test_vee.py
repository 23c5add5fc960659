"""VEE inside the one pipeline, against the real database: flags, gaps, estimates,
late readings, edits, history and daily quality scores."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.contracts.records import READING, Quality
from metrify.pipeline.session import open_session
from metrify.settings import Settings, UnknownMeterPolicy
from metrify.sources.mapping import build_mapping

UTC = dt.UTC
T0 = dt.datetime(2013, 1, 7, tzinfo=UTC)  # a Monday
MISSING, ESTIMATED, EDITED = int(Quality.MISSING), int(Quality.ESTIMATED), int(Quality.EDITED)


def frame(
    meter: str, start: dt.datetime, values: list[float | None], step: int = 1800
) -> pl.DataFrame:
    """Raw rows, one per interval; None leaves the interval out (a gap)."""
    rows = [
        (meter, (start + dt.timedelta(seconds=step * i)).isoformat(), str(v))
        for i, v in enumerate(values)
        if v is not None
    ]
    return pl.DataFrame(rows, schema=["meter_id", "ts", "import_kwh"], orient="row")


def ingest(settings: Settings, raw: pl.DataFrame, source: str = "file:t.csv") -> dict[str, object]:
    with open_session(settings) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(raw, source=source, mapping=build_mapping(READING, interval_s=1800))
        return pipeline.close().as_dict()


def stored(conn: psycopg.Connection, meter: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT ts, import_kwh, quality, status, source FROM readings"
        " WHERE meter_id = %s ORDER BY ts",
        (meter,),
    ).fetchall()


def test_negative_import_is_stored_rejected_not_quarantined(
    settings: Settings, conn: psycopg.Connection
) -> None:
    summary = ingest(settings, frame("M1", T0, [0.5, -1.0, 0.5]))
    assert summary["quarantined"] == 0 and summary["rejected"] == 1 and summary["accepted"] == 3
    row = conn.execute("SELECT quality, status FROM readings WHERE import_kwh < 0").fetchone()
    assert row is not None
    assert row[0] & int(Quality.OUT_OF_RANGE) and row[1] == "rejected"


def test_short_gap_interpolated_linearly(settings: Settings, conn: psycopg.Connection) -> None:
    # 1.0 then two missing half-hours then 4.0: linear steps of 1.0 -> 2.0, 3.0.
    summary = ingest(settings, frame("M1", T0, [1.0, None, None, 4.0]))
    assert summary["gaps"] == 2 and summary["estimated"] == 2
    rows = stored(conn, "M1")
    assert [r[1] for r in rows] == [1.0, pytest.approx(2.0), pytest.approx(3.0), 4.0]
    for _, _, quality, status, source in rows[1:3]:
        assert quality & MISSING and quality & ESTIMATED
        assert status == "estimated" and source == "vee:estimate:linear"
    assert rows[0][3] == "valid" and rows[3][3] == "valid"


def test_gap_beyond_limit_stays_unestimated(settings: Settings, conn: psycopg.Connection) -> None:
    values: list[float | None] = [1.0, 1.1, 1.2, 1.3] + [None] * (48 * 8) + [1.0, 1.1, 1.2, 1.3]
    ingest(settings, frame("M1", T0, values))
    gap_rows = conn.execute(
        "SELECT count(*), count(import_kwh), min(status), max(status) FROM readings"
        " WHERE meter_id = 'M1' AND quality & %s <> 0",
        (MISSING,),
    ).fetchone()
    assert gap_rows == (48 * 8, 0, "suspect", "suspect")


def test_late_real_reading_replaces_estimate_with_history(
    settings: Settings, conn: psycopg.Connection
) -> None:
    ingest(settings, frame("M1", T0, [1.0, None, 3.0]))
    late_ts = T0 + dt.timedelta(minutes=30)
    ingest(settings, frame("M1", late_ts, [2.5]), source="file:late.csv")
    current = conn.execute(
        "SELECT import_kwh, quality, status, source FROM readings WHERE meter_id='M1' AND ts=%s",
        (late_ts,),
    ).fetchone()
    assert current == (2.5, 0, "valid", "file:late.csv")
    history = conn.execute(
        "SELECT import_kwh, status, source, replaced_by, reason FROM reading_history WHERE ts = %s",
        (late_ts,),
    ).fetchall()
    assert history == [
        (
            pytest.approx(2.0),
            "estimated",
            "vee:estimate:linear",
            "file:late.csv",
            "real reading replaced estimate",
        )
    ]


def test_gap_straddling_batches_found_from_history(
    settings: Settings, conn: psycopg.Connection
) -> None:
    ingest(settings, frame("M1", T0, [1.0] * 4))  # 00:00 .. 01:30
    ingest(settings, frame("M1", T0 + dt.timedelta(hours=3), [1.0] * 2))  # 03:00, 03:30
    rows = stored(conn, "M1")
    assert len(rows) == 8  # 02:00, 02:30 added as gap rows by the second batch
    gap = [r for r in rows if r[2] & MISSING]
    assert [r[0] for r in gap] == [
        T0 + dt.timedelta(hours=2),
        T0 + dt.timedelta(hours=2, minutes=30),
    ]
    assert all(r[1] == pytest.approx(1.0) for r in gap)


def test_reingest_with_gaps_is_idempotent(settings: Settings, conn: psycopg.Connection) -> None:
    raw = frame("M1", T0, [1.0, None, 3.0, 2.0, None, None, 5.0])
    ingest(settings, raw)
    second = ingest(settings, raw)
    assert second["inserted"] == 0 and second["updated"] == 0
    assert conn.execute("SELECT count(*) FROM reading_history").fetchone() == (0,)


def test_edit_keeps_history_with_operator_and_reason(
    settings: Settings, conn: psycopg.Connection
) -> None:
    ingest(settings, frame("M1", T0, [1.0, 2.0, 3.0, 4.0]))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "vee",
            "edit",
            "M1",
            "--from",
            T0.isoformat(),
            "--to",
            (T0 + dt.timedelta(hours=1)).isoformat(),
            "--set",
            "0.75",
            "--reason",
            "meter swap, read from old register",
            "--operator",
            "alice",
        ],
    )
    assert result.exit_code == 0, result.stderr
    rows = stored(conn, "M1")
    assert [r[1] for r in rows] == [0.75, 0.75, 3.0, 4.0]
    assert all(r[2] & EDITED and r[4] == "edit:alice" for r in rows[:2])
    history = runner.invoke(app, ["readings", "history", "M1", "--ts", T0.isoformat(), "--json"])
    versions = [json.loads(line) for line in history.stdout.splitlines()]
    assert [v["import_kwh"] for v in versions] == [0.75, 1.0]
    assert versions[1]["replaced_by"] == "edit:alice"
    assert versions[1]["reason"] == "edit by alice: meter swap, read from old register"


def test_edit_errors_are_one_line(settings: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "vee",
            "edit",
            "NOPE",
            "--from",
            "2013-01-01",
            "--to",
            "2013-01-02",
            "--set",
            "1",
            "--reason",
            "x",
        ],
    )
    assert result.exit_code == 2 and "no stored readings" in result.stderr
    result = runner.invoke(
        app, ["vee", "edit", "M1", "--from", "2013-01-01", "--to", "2013-01-02", "--reason", "x"]
    )
    assert result.exit_code == 2 and "exactly one of" in result.stderr


def test_quality_daily_scores_and_dst_day(settings: Settings, conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO meters (meter_id, timezone) VALUES ('LDN', 'Europe/London')")
    # 27 Oct 2013 in London lasts 25 hours: local midnight is 2013-10-26T23:00Z.
    start = dt.datetime(2013, 10, 26, 23, 0, tzinfo=UTC)
    ingest(settings, frame("LDN", start, [0.2 + 0.01 * (i % 7) for i in range(50)]))
    row = conn.execute(
        "SELECT expected, present, valid, completeness, score FROM quality_daily"
        " WHERE meter_id = 'LDN' AND day = '2013-10-27'"
    ).fetchone()
    assert row == (50, 50, 50, 1.0, 100.0)
    # A UTC meter with a 4-interval hole on one day.
    varied = [0.3 + 0.02 * (i % 5) for i in range(48)]
    values: list[float | None] = varied[:20] + [None] * 4 + varied[24:]
    ingest(settings, frame("UTC1", dt.datetime(2013, 3, 5, tzinfo=UTC), values))
    row = conn.execute(
        "SELECT expected, present, estimated, completeness FROM quality_daily"
        " WHERE meter_id = 'UTC1'"
    ).fetchone()
    assert row is not None
    assert row[0] == 48 and row[1] == 44 and row[2] == 4 and row[3] == pytest.approx(44 / 48)
    report = CliRunner().invoke(app, ["quality", "report", "--date", "2013-03-05", "--json"])
    data = json.loads(report.stdout)
    assert data["fleet"]["meters"] == 1 and data["worst"][0]["meter_id"] == "UTC1"
    assert data["fleet"]["completeness"] == pytest.approx(44 / 48)


def test_gap_row_never_replaces_real_reading(settings: Settings, conn: psycopg.Connection) -> None:
    ingest(settings, frame("M1", T0, [1.0]))
    with open_session(settings) as session:
        gap = pl.DataFrame(
            {
                "meter_id": ["M1"],
                "ts": [T0],
                "interval_s": [1800],
                "quality": [MISSING],
                "status": ["suspect"],
                "source": ["vee:gap"],
                "ingested_at": [T0],
            },
            schema_overrides={
                "interval_s": pl.Int32,
                "quality": pl.Int32,
                "ts": pl.Datetime("us", "UTC"),
                "ingested_at": pl.Datetime("us", "UTC"),
            },
        )
        full = gap.select(
            [
                pl.col(c) if c in gap.columns else pl.lit(None, dtype=t).alias(c)
                for c, t in READING.schema.items()
            ]
            + [pl.col("quality"), pl.col("status"), pl.col("source"), pl.col("ingested_at")]
        )
        result = session.store.write_series(READING, full)
    assert result.updated == 0
    assert stored(conn, "M1")[0][1] == 1.0


def test_export_carries_interop_quality_codes(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ingest(settings, frame("M1", T0, [1.0, None, 3.0, -1.0]))
    out = tmp_path / "m1.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "readings",
            "export",
            "M1",
            "--from",
            T0.isoformat(),
            "--to",
            (T0 + dt.timedelta(hours=2)).isoformat(),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # real valid reading, a linear estimate, a real one, a rejected negative
    assert [r["ieee2030_5_quality_flags"] for r in rows] == [0x01, 0x08, 0x01, 0x10]
    assert [r["mscons_status"] for r in rows] == ["220", "67", "220", "20"]


def test_gap_across_batches_of_one_pipeline_uses_remembered_history(
    settings: Settings, conn: psycopg.Connection
) -> None:
    mapping = build_mapping(READING, interval_s=1800)
    with open_session(settings) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(frame("M1", T0, [1.0, 1.2, 1.4, 1.6]), source="a", mapping=mapping)
        pipeline.flush()
        assert pipeline.history is not None and pipeline.history.rows == 4
        pipeline.submit(
            frame("M1", T0 + dt.timedelta(hours=3), [2.2, 2.4]), source="b", mapping=mapping
        )
        summary = pipeline.close()
    assert summary.gaps == 2 and summary.estimated == 2
    rows = stored(conn, "M1")
    # 01:30 = 1.6, 03:00 = 2.2: linear steps of 0.2 fill 02:00 and 02:30
    assert [r[1] for r in rows[4:6]] == [pytest.approx(1.8), pytest.approx(2.0)]


def test_stream_defers_quality_scores_durably(settings: Settings, conn: psycopg.Connection) -> None:
    """A stream pipeline (close(final=False), long refresh period) leaves the changed
    meter-days marked, not recomputed; a later refresh, even from another process after
    a crash, computes them; an unchanged re-delivery marks nothing."""
    slow = settings.model_copy(update={"quality_refresh_s": 3600.0})
    start = dt.datetime(2013, 3, 5, 22, 0, tzinfo=UTC)  # 8 readings over two UTC days
    raw = frame("S1", start, [0.25] * 4 + [0.5] * 4)
    with open_session(slow) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(raw, source="kafka:t:0", mapping=build_mapping(READING, interval_s=1800))
        pipeline.close(final=False)
    assert conn.execute("SELECT count(*) FROM quality_daily").fetchone() == (0,)
    marked = conn.execute("SELECT meter_id, day FROM quality_dirty ORDER BY day").fetchall()
    assert marked == [("S1", dt.date(2013, 3, 5)), ("S1", dt.date(2013, 3, 6))]
    # the process dies here; whoever runs next brings the scores up to date
    with open_session(settings) as session:
        assert session.store.refresh_quality_daily() == 2
    rows = conn.execute("SELECT day, present FROM quality_daily ORDER BY day").fetchall()
    assert rows == [(dt.date(2013, 3, 5), 4), (dt.date(2013, 3, 6), 4)]
    assert conn.execute("SELECT count(*) FROM quality_dirty").fetchone() == (0,)
    with open_session(slow) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(raw, source="kafka:t:0", mapping=build_mapping(READING, interval_s=1800))
        pipeline.close(final=False)
    assert conn.execute("SELECT count(*) FROM quality_dirty").fetchone() == (0,)


def test_per_row_sources_follow_their_rows_into_the_store_and_quarantine(
    settings: Settings, conn: psycopg.Connection
) -> None:
    # A stream worker decodes several partitions in one go and says each row's source.
    raw = pl.DataFrame(
        {
            "meter_id": ["S1", "", "S2", "S1", "S2"],
            "ts": [
                "2025-01-01T00:00:00Z",
                "2025-01-01T00:30:00Z",
                "2025-01-01T00:00:00Z",
                "2025-01-01T00:30:00Z",
                "2025-01-01T00:30:00Z",
            ],
            "interval_s": ["1800"] * 5,
            "import_kwh": ["0.5", "0.1", "0.7", "0.6", "bad"],
        }
    )
    sources = pl.Series(["p:0", "p:2", "p:1", "p:0", "p:1"])
    with open_session(settings) as session:
        pipeline = session.pipeline(READING)
        pipeline.submit(raw, source=sources)
        pipeline.close()
        with pytest.raises(ValueError, match="one per raw row"):
            session.pipeline(READING).submit(raw, source=sources.head(4))
    stored_sources = conn.execute(
        "SELECT meter_id, ts, source FROM readings WHERE status <> 'estimated'"
        " AND import_kwh IS NOT NULL ORDER BY meter_id, ts"
    ).fetchall()
    assert [(m, s) for m, _, s in stored_sources] == [("S1", "p:0"), ("S1", "p:0"), ("S2", "p:1")]
    quarantined = conn.execute("SELECT source, reason FROM quarantine ORDER BY source").fetchall()
    assert quarantined == [("p:1", "non-numeric import_kwh"), ("p:2", "missing meter_id")]


def test_a_by_source_run_counts_each_source_as_its_own_run_would(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """The API answers each of several grouped requests from one run: every count of
    the summary splits by source, including the rows VEE adds (a gap belongs to its
    meter's source), the store's inserted / updated / unchanged and unknown meters."""
    strict = settings.model_copy(update={"unknown_meters": UnknownMeterPolicy.QUARANTINE})
    conn.execute("INSERT INTO meters (meter_id) VALUES ('A1'), ('A2'), ('S3')")
    stored_s3 = [0.41, 0.52, 0.47, 0.58]
    assert ingest(strict, frame("S3", T0, stored_s3))["inserted"] == 4
    # "a": A1 five readings, one repeated exactly, one more with a bad value (after the
    # five, so no gap); A2 three readings around one missing interval
    a1 = frame("A1", T0, [0.31, 0.42, 0.36, 0.49, 0.33])
    bad = frame("A1", T0 + dt.timedelta(hours=2, minutes=30), [0.3]).with_columns(
        import_kwh=pl.lit("lots")
    )
    a = pl.concat([a1, a1.slice(1, 1), bad, frame("A2", T0, [0.52, 0.61, None, 0.57])])
    # "b": S3 again, two values changed
    b = frame("S3", T0, [0.41, 0.55, 0.47, 0.66])
    # "c": a meter nobody registered
    c = frame("Z9", T0, [0.2, 0.3])
    with open_session(strict) as session:
        pipeline = session.pipeline(READING, by_source=True)
        for source, raw in (("a", a), ("b", b), ("c", c)):
            pipeline.submit(raw, source=source, mapping=build_mapping(READING, interval_s=1800))
        total = pipeline.close()
        assert pipeline.sources is not None
        got = {source: s.as_dict() for source, s in pipeline.sources.items()}
        with pytest.raises(ValueError, match="two sources"):
            twice = session.pipeline(READING, by_source=True)
            twice.submit(c, source="x", mapping=build_mapping(READING, interval_s=1800))
            twice.submit(c, source="y", mapping=build_mapping(READING, interval_s=1800))
    fields = ("read", "accepted", "rejected", "quarantined", "inserted", "updated", "unchanged")
    fields += ("duplicates", "gaps", "estimated")
    expected = {
        "a": dict(zip(fields, (10, 8, 1, 1, 9, 0, 0, 1, 1, 1), strict=True)),
        "b": dict(zip(fields, (4, 4, 0, 0, 0, 2, 2, 0, 0, 0), strict=True)),
        "c": dict(zip(fields, (2, 0, 2, 2, 0, 0, 0, 0, 0, 0), strict=True)),
    }
    assert {s: {f: got[s][f] for f in fields} for s in got} == expected
    assert got["a"]["statuses"] == {"valid": 8, "estimated": 1}
    assert got["a"]["reasons"] == {"non-numeric import_kwh": 1}
    assert got["b"]["statuses"] == {"valid": 4}
    assert got["c"]["reasons"] == {"unknown meter_id": 2}
    # the parts add up to the run's own summary
    for f in fields:
        assert sum(got[s][f] for s in got) == total.as_dict()[f], f
