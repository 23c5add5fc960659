"""End to end on real data: the 100 London households of ../shared/data, through the CLI.

Expected figures are computed here straight from the gzipped CSVs with the standard
library, independently of Metrify's readers and decoders.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import math
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from conftest import shared_data
from metrify.cli import app
from metrify.config import Settings

pytestmark = pytest.mark.realdata


def expected_from_files(files: list[Path]) -> dict[str, object]:
    per_meter: Counter[str] = Counter()
    keys: set[tuple[str, str]] = set()
    total = 0.0
    bad = 0
    rows = 0
    first, last = None, None
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
                if not math.isfinite(value) or value < 0:
                    bad += 1
                    continue
                if (meter, stamp) in keys:
                    continue
                keys.add((meter, stamp))
                per_meter[meter] += 1
                total += value
                first = stamp if first is None or stamp < first else first
                last = stamp if last is None or stamp > last else last
    return {
        "rows": rows,
        "bad": bad,
        "keys": len(keys),
        "per_meter": per_meter,
        "total": total,
        "first": first,
        "last": last,
    }


def test_london_households_end_to_end(settings: Settings, conn: psycopg.Connection) -> None:
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))
    assert len(files) == 100
    expected = expected_from_files(files)
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            "readings",
            *map(str, files),
            "--map",
            "meter_id=LCLid",
            "--map",
            "ts=tstp",
            "--map",
            "import_kwh=energy(kWh/hh)",
            "--interval",
            "1800",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["read"] == expected["rows"]
    assert summary["accepted"] == expected["keys"]
    assert summary["quarantined"] == expected["bad"]
    assert summary["files"] == 100 and summary["errors"] == []

    count, meters, total, first, last = conn.execute(
        "SELECT count(*), count(DISTINCT meter_id), sum(import_kwh), min(ts), max(ts) FROM readings"
    ).fetchone()  # type: ignore[misc]
    assert count == expected["keys"]
    assert meters == 100
    assert total == pytest.approx(expected["total"], rel=1e-9)
    assert first == dt.datetime.fromisoformat(str(expected["first"])).replace(tzinfo=dt.UTC)
    assert last == dt.datetime.fromisoformat(str(expected["last"])).replace(tzinfo=dt.UTC)
    stored = dict(conn.execute("SELECT meter_id, count(*) FROM readings GROUP BY 1").fetchall())
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

    again = CliRunner().invoke(
        app,
        [
            "ingest",
            "readings",
            *map(str, files[:3]),
            "--map",
            "meter_id=LCLid",
            "--map",
            "ts=tstp",
            "--map",
            "import_kwh=energy(kWh/hh)",
            "--interval",
            "1800",
            "--json",
        ],
    )
    repeat = json.loads(again.stdout)
    assert repeat["inserted"] == 0 and repeat["updated"] == 0
    assert repeat["unchanged"] == sum(
        expected["per_meter"][f.name.split(".")[0]] for f in files[:3]
    )  # type: ignore[index]
