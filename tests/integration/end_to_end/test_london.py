"""End to end on real data: the 100 London households of ../shared/data, through the CLI.

Expected figures are computed here straight from the gzipped CSVs with the standard
library, independently of Metrify's readers and decoders.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import itertools
import json
import math
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import LONDON_MAP, shared_data

pytestmark = pytest.mark.realdata


def expected_from_files(files: list[Path]) -> dict[str, object]:
    per_meter: Counter[str] = Counter()
    keys: set[tuple[str, str]] = set()
    total = 0.0
    bad = 0
    rows = 0
    first, last = None, None
    good_values: dict[tuple[str, str], float] = {}
    for path in files:
        with gzip.open(path, "rt", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for meter, stamp, energy in reader:
                rows += 1
                try:
                    value = float(energy)
                except ValueError:
                    bad += 1
                    continue
                if not math.isfinite(value):
                    bad += 1
                    continue
                if (meter, stamp) in keys:
                    continue
                keys.add((meter, stamp))
                good_values[(meter, stamp)] = value
                per_meter[meter] += 1
                total += value
                first = stamp if first is None or stamp < first else first
                last = stamp if last is None or stamp > last else last
    gaps, last_per_meter, long_zero_rows = _vee_expectations(good_values)
    return {
        "gaps": gaps,
        "last_per_meter": last_per_meter,
        "long_zero_rows": long_zero_rows,
        "rows": rows,
        "bad": bad,
        "keys": len(keys),
        "per_meter": per_meter,
        "total": total,
        "first": first,
        "last": last,
    }


def _vee_expectations(
    values: dict[tuple[str, str], float],
) -> tuple[dict[str, int], dict[str, dt.datetime], set[tuple[str, dt.datetime]]]:
    """Missing half-hours per meter, each meter's last reading, and the rows of zero runs
    longer than two days (96 half-hours), straight from the parsed files."""
    by_meter: dict[str, list[tuple[dt.datetime, float]]] = {}
    for (meter, stamp), value in values.items():
        when = dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC)
        by_meter.setdefault(meter, []).append((when, value))
    half_hour = dt.timedelta(minutes=30)
    gaps: dict[str, int] = {}
    last: dict[str, dt.datetime] = {}
    zero_rows: set[tuple[str, dt.datetime]] = set()
    for meter, series in by_meter.items():
        series.sort()
        last[meter] = series[-1][0]
        gaps[meter] = 0
        for (a, _), (b, _) in itertools.pairwise(series):
            steps = int((b - a) / half_hour) - 1
            if 0 < steps <= 31 * 48:  # longer holes are not filled with gap rows
                gaps[meter] += steps
        run: list[dt.datetime] = []
        previous: dt.datetime | None = None
        for when, value in series:
            if value == 0 and run and previous is not None and when - previous == half_hour:
                run.append(when)
            else:
                if len(run) > 96:
                    zero_rows.update((meter, w) for w in run)
                run = [when] if value == 0 else []
            previous = when
        if len(run) > 96:
            zero_rows.update((meter, w) for w in run)
    return gaps, last, zero_rows


def ingest_london(files: list[Path]) -> Result:
    """``metrify ingest readings`` on London files, through the CLI."""
    return CliRunner().invoke(app, ["ingest", "readings", *map(str, files), *LONDON_MAP, "--json"])


def test_london_households_end_to_end(settings: Settings, conn: psycopg.Connection) -> None:
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))
    assert len(files) == 100
    expected = expected_from_files(files)
    result = ingest_london(files)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["read"] == expected["rows"]
    assert summary["accepted"] == expected["keys"]
    assert summary["quarantined"] == expected["bad"]
    assert summary["files"] == 100 and summary["errors"] == []

    count, meters, total, first, last = conn.execute(
        "SELECT count(*), count(DISTINCT meter_id), sum(import_kwh), min(ts), max(ts) FROM readings"
        " WHERE quality & 1 = 0"
    ).fetchone()  # type: ignore[misc]
    assert count == expected["keys"]
    assert meters == 100
    assert total == pytest.approx(expected["total"], rel=1e-9)
    assert first == dt.datetime.fromisoformat(str(expected["first"])).replace(tzinfo=dt.UTC)
    assert last == dt.datetime.fromisoformat(str(expected["last"])).replace(tzinfo=dt.UTC)
    stored = dict(
        conn.execute(
            "SELECT meter_id, count(*) FROM readings WHERE quality & 1 = 0 GROUP BY 1"
        ).fetchall()
    )
    assert stored == dict(expected["per_meter"])  # type: ignore[arg-type]
    assert conn.execute("SELECT count(*) FROM meters WHERE status = 'unregistered'").fetchone() == (
        100,
    )
    # 2013 in monthly partitions, each holding exactly its month.
    parts = conn.execute(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
        " WHERE p.relname = 'readings'"
    ).fetchone()
    assert parts is not None and parts[0] >= 12

    # VEE on what is really in this data: the gaps, the long zero runs, meters that stop.
    gap_rows = dict(
        conn.execute(
            "SELECT meter_id, count(*) FROM readings WHERE quality & 1 <> 0 GROUP BY 1"
        ).fetchall()
    )
    assert {m: n for m, n in expected["gaps"].items() if n} == gap_rows  # type: ignore[attr-defined]
    last_per_meter = dict(
        conn.execute("SELECT meter_id, max(ts) FROM readings GROUP BY 1").fetchall()
    )
    assert last_per_meter == expected["last_per_meter"]
    zero_rows = expected["long_zero_rows"]
    flagged = set(
        conn.execute(
            "SELECT meter_id, ts FROM readings WHERE quality & 16 <> 0 AND import_kwh = 0"
        ).fetchall()
    )
    assert zero_rows, "the London data has zero runs of two days or more"
    assert zero_rows <= flagged  # type: ignore[operator]

    again = ingest_london(files[:3])
    repeat = json.loads(again.stdout)
    assert repeat["inserted"] == 0 and repeat["updated"] == 0
    assert repeat["unchanged"] == sum(
        expected["per_meter"][f.name.split(".")[0]] for f in files[:3]
    )  # type: ignore[index]
