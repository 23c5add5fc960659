"""SIGKILL during a file load, then the same load again: the store ends exactly as one
clean load would leave it.

``metrify ingest`` runs as its own process on real London households (copied to a temp
folder with every ``BAD_EVERY``-th value replaced by ``Null``, as the full Low Carbon
London export writes a missing value, so quarantine has rows to double). It is killed
with SIGKILL once some readings are visible, then run again to completion. Expected
figures come straight from the files with polars, never from Metrify's readers.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import LONDON_MAP, shared_data
from support.waiting import until

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

#: households loaded: enough that the load takes several seconds, so the kill lands
#: in the middle of it
HOUSEHOLDS = 16
#: every this many data lines the value is replaced by ``Null``
BAD_EVERY = 1500
METRIFY = Path(sys.executable).with_name("metrify")


def corrupted_copies(target: Path) -> list[Path]:
    """The first ``HOUSEHOLDS`` London files as plain CSV under ``target``, every
    ``BAD_EVERY``-th data line's value replaced by ``Null``."""
    target.mkdir()
    out = []
    for path in sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:HOUSEHOLDS]:
        with gzip.open(path, "rt", newline="") as handle:
            header, *lines = handle.read().splitlines()
        for i in range(BAD_EVERY - 1, len(lines), BAD_EVERY):
            meter, stamp, _ = lines[i].split(",")
            lines[i] = f"{meter},{stamp},Null"
        copy = target / path.name.removesuffix(".gz")
        copy.write_text("\n".join([header, *lines]) + "\n")
        out.append(copy)
    return out


def expected_from(files: list[Path]) -> tuple[pl.DataFrame, int]:
    """The good rows (meter, ts, kWh) of ``files`` and how many rows are bad, by polars."""
    raw = pl.concat(
        pl.read_csv(f, infer_schema=False, new_columns=["meter", "ts", "kwh"]) for f in files
    )
    parsed = raw.with_columns(
        pl.col("kwh").str.strip_chars().cast(pl.Float64, strict=False),
        pl.col("ts").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC"),
    )
    good = parsed.filter(pl.col("kwh").is_not_null())
    assert good.select("meter", "ts").is_unique().all(), "the households repeat no key"
    return good, raw.height - good.height


def ingest(files: list[Path]) -> list[str]:
    return [str(METRIFY), "ingest", "readings", *map(str, files), *LONDON_MAP, "--json"]


def scalar(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> object:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_sigkill_during_a_file_load_then_the_same_load_again(
    settings: Settings, conn: psycopg.Connection[tuple[object, ...]], tmp_path: Path
) -> None:
    files = corrupted_copies(tmp_path / "in")
    good, bad = expected_from(files)
    assert bad > 0 and good.height > 250_000
    # sessions opened from here on are this test's (earlier tests' idle ones are not)
    began = conn.execute("SELECT clock_timestamp()").fetchone()
    assert began is not None
    # batches of a tenth of the load: the killed run leaves some committed, some not
    env = {**os.environ, "METRIFY_LOG_LEVEL": "WARNING", "METRIFY_BATCH_SIZE": "40000"}

    loading = subprocess.Popen(
        ingest(files), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        until(
            lambda: (
                loading.poll() is not None or scalar(conn, "SELECT count(*) FROM readings") != 0
            ),
            timeout=120,
        )
        os.kill(loading.pid, signal.SIGKILL)
        loading.wait(30)
    finally:
        if loading.poll() is None:
            loading.kill()
            loading.wait(30)
    assert loading.returncode == -signal.SIGKILL, "the load ended before it was killed"
    stored_at_kill = scalar(conn, "SELECT count(*) FROM readings WHERE quality & 1 = 0")
    assert 0 < stored_at_kill < good.height  # type: ignore[operator]

    again = subprocess.run(ingest(files), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["errors"] == []

    # exactly the files' readings: every key once, the same values
    count, total = conn.execute(
        "SELECT count(*), sum(import_kwh) FROM readings WHERE quality & 1 = 0"
    ).fetchone()  # type: ignore[misc]
    assert count == good.height
    assert total == pytest.approx(good["kwh"].sum(), rel=1e-9)
    per_meter = dict(
        conn.execute(
            "SELECT meter_id, count(*) FROM readings WHERE quality & 1 = 0 GROUP BY 1"
        ).fetchall()
    )
    assert per_meter == dict(good.group_by("meter").len().iter_rows())
    # the re-run found the rows the killed run stored unchanged: no versions of them
    assert scalar(conn, "SELECT count(*) FROM reading_history") == 0
    # quarantine holds each bad line once (the re-run counts it as seen again)
    assert scalar(conn, "SELECT count(*) FROM quarantine") == bad
    assert scalar(conn, "SELECT count(DISTINCT (source, line)) FROM quarantine") == bad

    # daily quality: a row for every meter-day, its counts those of the stored rows, and
    # the present count that of the file's rows on that day
    file_days = dict(
        ((m, d), n)
        for m, d, n in good.group_by("meter", day=pl.col("ts").dt.date()).len().iter_rows()
    )
    scored = {
        (m, d): (present, valid, estimated, suspect, rejected)
        for m, d, present, valid, estimated, suspect, rejected in conn.execute(
            "SELECT meter_id, day, present, valid, estimated, suspect, rejected FROM quality_daily"
        ).fetchall()
    }
    stored = {
        (m, d): counts
        for m, d, *counts in conn.execute(
            "SELECT meter_id, (ts AT TIME ZONE 'UTC')::date,"
            " count(*) FILTER (WHERE quality & 1 = 0),"
            " count(*) FILTER (WHERE status = 'valid'),"
            " count(*) FILTER (WHERE status = 'estimated'),"
            " count(*) FILTER (WHERE status = 'suspect'),"
            " count(*) FILTER (WHERE status = 'rejected')"
            " FROM readings GROUP BY 1, 2"
        ).fetchall()
    }
    assert scored == {k: tuple(v) for k, v in stored.items()}
    assert {k: v[0] for k, v in scored.items() if v[0]} == file_days

    # nothing left claimed or locked: no day waiting for a re-score, no advisory lock,
    # no session of the killed load still open
    assert scalar(conn, "SELECT count(*) FROM quality_dirty") == 0
    assert scalar(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            f" AND backend_start >= '{began[0].isoformat()}'",
        )
        == 0
    )

    # The lake: whatever the kill kept from it is caught up by the re-run's start and by
    # `lake repair`; `lake verify` then finds every day equal to the store.
    repaired = CliRunner().invoke(app, ["lake", "repair"])
    assert repaired.exit_code == 0, repaired.output
    verify = CliRunner().invoke(app, ["lake", "verify", "--json"])
    assert verify.exit_code == 0, verify.output
    assert verify.stdout.strip() == ""
