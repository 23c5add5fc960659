"""``metrify energy`` on real London households: daily and monthly energy per meter and
for a feeder in the London zone, against sums computed here from the files (each
half-hour's London day by ``zoneinfo``), and clear errors for bad questions."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import LONDON_MAP, shared_data

runner = CliRunner()
LONDON = ZoneInfo("Europe/London")


def _daily(files: list[Path]) -> dict[str, dict[dt.date, tuple[float, int]]]:
    """Per meter, per London day: (energy, readings) of the distinct parseable rows."""
    seen: dict[str, dict[dt.datetime, float]] = defaultdict(dict)
    for path in files:
        with gzip.open(path, "rt") as fh:
            next(fh)
            for line in fh:
                meter, ts, value = (p.strip() for p in line.split(","))
                try:
                    kwh = float(value)
                except ValueError:
                    continue
                when = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)
                seen[meter].setdefault(when, kwh)
    out: dict[str, dict[dt.date, tuple[float, int]]] = {}
    for meter, rows in seen.items():
        days: dict[dt.date, tuple[float, int]] = {}
        for when, kwh in rows.items():
            day = when.astimezone(LONDON).date()
            total, n = days.get(day, (0.0, 0))
            days[day] = (total + kwh, n + 1)
        out[meter] = days
    return out


def _energy(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["energy", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_energy_of_meters_and_a_feeder(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:3]
    meters_csv = tmp_path / "meters.csv"
    ids = [p.name.split(".")[0] for p in files]
    meters_csv.write_text(
        "meter_id,node_id,timezone\n" + "".join(f"{m},F1,Europe/London\n" for m in ids)
    )
    assert runner.invoke(app, ["ingest", "meters", str(meters_csv)]).exit_code == 0
    loaded = runner.invoke(app, ["ingest", "readings", *map(str, files), *LONDON_MAP])
    assert loaded.exit_code == 0, loaded.stderr
    expected = _daily(files)

    # one meter, daily, in its own zone (London): March, across the clock change
    rows = _energy("--meter", ids[0], "--resolution", "1d", "--from", "2013-03-01", "--to",
                   "2013-04-01")  # fmt: skip
    want = {
        d: v for d, v in expected[ids[0]].items() if dt.date(2013, 3, 1) <= d < dt.date(2013, 4, 1)
    }
    got = {dt.datetime.fromisoformat(str(r["start"])).date(): r for r in rows}
    assert got.keys() == want.keys()
    for day, (total, n) in want.items():
        assert got[day]["import_kwh"] == pytest.approx(total, abs=1e-6)
        assert got[day]["present"] == n
    starts = [dt.datetime.fromisoformat(str(r["start"])) for r in rows]
    assert all(s.hour == 0 and s.utcoffset() == s.astimezone(LONDON).utcoffset() for s in starts)

    # the feeder, monthly in the London zone: the sum of its meters' days of each month
    months = _energy("--node", "F1", "--resolution", "1mo", "--from", "2013-01-01", "--to",
                     "2014-01-01", "--tz", "Europe/London")  # fmt: skip
    # Expected: the files' rows, less any VEE rejected, plus the estimates of gaps (both
    # as stored), summed per London month here.
    with psycopg.connect(database_url) as conn:
        adjust = conn.execute(
            "SELECT ts, status, import_kwh FROM readings WHERE status IN ('rejected', 'estimated')"
            " AND import_kwh IS NOT NULL"
        ).fetchall()
    by_month: dict[tuple[int, int], float] = defaultdict(float)
    for days in expected.values():
        for day, (total, _) in days.items():
            by_month[(day.year, day.month)] += total
    for ts, status, kwh in adjust:
        local = ts.astimezone(LONDON)
        by_month[(local.year, local.month)] += kwh if status == "estimated" else -kwh
    by_month = {k: v for k, v in by_month.items() if k[0] == 2013}
    got_months = {
        (s.year, s.month): r["import_kwh"]
        for r in months
        for s in [dt.datetime.fromisoformat(str(r["start"]))]
    }
    assert got_months.keys() == by_month.keys()
    for month, total in by_month.items():
        assert got_months[month] == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--meter", "M1", "--node", "F1"], "exactly one"),
        (["--fleet", "--resolution", "2h"], "--resolution 2h"),
        (["--fleet", "--tz", "Mars/Olympus"], "unknown time zone"),
        (["--meter", "NOPE"], "no meter NOPE"),
        # an unknown group was "no data in that range", exit 0, as if it had been quiet
        (["--node", "NOPE"], "no grid node NOPE"),
        (["--region", "nowhere"], "no region nowhere"),
        (["--segment", "Nope"], "no segment Nope"),
    ],
)
def test_energy_bad_questions(settings: Settings, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["energy", *args, "--from", "2013-01-01", "--to", "2013-01-02"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_known_group_without_readings_is_no_data_not_an_error(
    settings: Settings, tmp_path: Path
) -> None:
    # a registered node with no meter readings in the range (GB demand is measured load,
    # not meters) still answers "no data", exit 0
    (tmp_path / "nodes.csv").write_text("node_id,capacity_mw\nGB,60000\n")
    assert runner.invoke(app, ["ingest", "nodes", str(tmp_path / "nodes.csv")]).exit_code == 0
    result = runner.invoke(
        app, ["energy", "--node", "GB", "--from", "2013-01-01", "--to", "2013-01-02"]
    )
    assert result.exit_code == 0, result.output
    assert "no data in that range" in result.stdout
