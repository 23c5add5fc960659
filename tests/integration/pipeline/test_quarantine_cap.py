"""The quarantine cap (``max_rejects``) is each source's own: a source over it keeps that
many bad rows and counts the rest, without taking room from another source of the same
run; a stream's partitions start a new cap with each settled micro-batch."""

from __future__ import annotations

import polars as pl
import psycopg

from metrify.contracts.records import READING
from metrify.pipeline.session import open_session
from metrify.settings import Settings

CAP = 3


def _raw(meter: str, good: int, bad: int) -> pl.DataFrame:
    """``good`` readings of ``meter`` (hourly), then ``bad`` with a non-numeric value."""
    ts = [f"2024-03-01T{h:02d}:00:00Z" for h in range(good + bad)]
    values = ["0.5"] * good + ["lots"] * bad
    return pl.DataFrame(
        {
            "meter_id": [meter] * (good + bad),
            "ts": ts,
            "interval_s": ["3600"] * (good + bad),
            "import_kwh": values,
        }
    )


def _kept(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT source, count(*) FROM quarantine GROUP BY source").fetchall()
    return {str(source): int(count) for source, count in rows}


def test_each_source_of_a_grouped_run_has_its_own_cap(
    settings: Settings, conn: psycopg.Connection
) -> None:
    capped = settings.model_copy(update={"max_rejects": CAP})
    with open_session(capped) as session:
        pipeline = session.pipeline(READING, by_source=True)
        pipeline.submit(_raw("A1", good=1, bad=CAP), source="a")
        pipeline.submit(_raw("B1", good=1, bad=CAP + 2), source="b")
        total = pipeline.close()
        assert pipeline.sources is not None
        a, b = pipeline.sources["a"], pipeline.sources["b"]
    assert (a.read, a.rejected, a.quarantined, a.not_kept, a.warnings) == (4, 3, 3, 0, [])
    assert (b.read, b.rejected, b.quarantined, b.not_kept) == (6, CAP + 2, CAP, 2)
    assert b.reasons == {"non-numeric import_kwh": CAP + 2}
    assert len(b.warnings) == 1 and "for b: 2 more bad rows not kept" in b.warnings[0]
    assert (total.rejected, total.quarantined, total.not_kept) == (2 * CAP + 2, 2 * CAP, 2)
    assert total.warnings == b.warnings
    assert _kept(conn) == {"a": CAP, "b": CAP}


def test_a_file_over_several_batches_counts_one_cap_and_one_warning(
    settings: Settings, conn: psycopg.Connection
) -> None:
    capped = settings.model_copy(update={"max_rejects": CAP})
    with open_session(capped) as session:
        pipeline = session.pipeline(READING)
        for meter in ("F1", "F2", "F3"):  # three batches of one file, two bad rows each
            pipeline.submit(_raw(meter, good=1, bad=2), source="file:f.csv")
        summary = pipeline.close()
    assert (summary.read, summary.rejected, summary.quarantined) == (9, 6, CAP)
    assert len(summary.warnings) == 1
    assert "file:f.csv: 3 more bad rows not kept" in summary.warnings[0]
    assert _kept(conn) == {"file:f.csv": CAP}


def test_a_stream_partition_starts_a_new_cap_with_each_settled_batch(
    settings: Settings, conn: psycopg.Connection
) -> None:
    capped = settings.model_copy(update={"max_rejects": CAP})
    with open_session(capped) as session:
        pipeline = session.pipeline(READING, overlap=True)
        first = pl.concat([_raw("P1", good=1, bad=CAP + 1), _raw("Q1", good=0, bad=1)])
        labels = pl.Series(["p:0"] * (CAP + 2) + ["p:1"])
        pipeline.submit(first, source=labels)
        pipeline.flush()
        pipeline.settle()
        second = _raw("P2", good=0, bad=CAP)
        pipeline.submit(second, source=pl.Series(["p:0"] * CAP))
        summary = pipeline.close()
    assert (summary.rejected, summary.quarantined, summary.not_kept) == (
        2 * CAP + 2,
        2 * CAP + 1,
        1,
    )
    assert "p:0: 1 more bad row not kept" in summary.warnings[0]
    assert _kept(conn) == {"p:0": 2 * CAP, "p:1": 1}
