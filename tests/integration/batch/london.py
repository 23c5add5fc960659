"""A few real London households loaded through Metrify, and what the batch jobs must
make of them, computed here from the files themselves (not from Metrify's code).

Shared by the tests of ``metrify batch run`` and of the Airflow DAG.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from support.realdata import LONDON_MAP, shared_data

LONDON = ZoneInfo("Europe/London")
#: meter index -> region: two regions, so the report's per-region rows are tested
REGIONS = ("north", "north", "south")


@dataclass
class Households:
    """The loaded meters, their regions, and every distinct parseable reading of theirs
    from the files: meter -> UTC start -> kWh."""

    meters: list[str]
    region: dict[str, str]
    kwh: dict[str, dict[dt.datetime, float]]

    def adjustments(self, owner_url: str) -> dict[str, dict[dt.datetime, float]]:
        """What VEE changed, as stored: rejected readings count for nothing and gap
        estimates count, in the aggregates' energy (meter -> UTC start -> kWh delta)."""
        out: dict[str, dict[dt.datetime, float]] = defaultdict(dict)
        with psycopg.connect(owner_url) as conn:
            for meter, ts, status, kwh in conn.execute(
                "SELECT meter_id, ts, status, import_kwh FROM readings"
                " WHERE status IN ('rejected', 'estimated') AND import_kwh IS NOT NULL"
            ):
                out[meter][ts] = kwh if status == "estimated" else -kwh
        return out

    def utc_day_energy(self, owner_url: str, day: dt.date) -> dict[str, float]:
        """Per meter, the energy of UTC ``day`` as the aggregates must hold it."""
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        end = start + dt.timedelta(days=1)
        adjust = self.adjustments(owner_url)
        out: dict[str, float] = {}
        for meter in self.meters:
            total = sum(v for ts, v in self.kwh[meter].items() if start <= ts < end)
            total += sum(v for ts, v in adjust.get(meter, {}).items() if start <= ts < end)
            out[meter] = total
        return out

    def london_day(self, meter: str, day: dt.date) -> dict[dt.datetime, float]:
        """The meter's readings on London ``day``."""
        return {ts: v for ts, v in self.kwh[meter].items() if ts.astimezone(LONDON).date() == day}


def london_day_length(day: dt.date) -> int:
    """Half-hours in London ``day`` (46 or 50 on the days the clocks change)."""
    start = dt.datetime.combine(day, dt.time(), LONDON)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), LONDON)
    return int((end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() // 1800)


def _read(path: Path) -> dict[dt.datetime, float]:
    rows: dict[dt.datetime, float] = {}
    with gzip.open(path, "rt") as fh:
        next(fh)
        for line in fh:
            _, ts, value = (p.strip() for p in line.split(","))
            try:
                kwh = float(value)
            except ValueError:
                continue
            rows.setdefault(dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC), kwh)
    return rows


def load_households(tmp: Path, count: int = 3) -> Households:
    """Register ``count`` London households (node F1, regions north/south, London time)
    and load their year of readings with ``metrify ingest``."""
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:count]
    meters = [p.name.split(".")[0] for p in files]
    region = {m: REGIONS[i % len(REGIONS)] for i, m in enumerate(meters)}
    meters_csv = tmp / "meters.csv"
    meters_csv.write_text(
        "meter_id,node_id,region,timezone\n"
        + "".join(f"{m},F1,{region[m]},Europe/London\n" for m in meters)
    )
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", "meters", str(meters_csv)])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["ingest", "readings", *map(str, files), *LONDON_MAP])
    assert done.exit_code == 0, done.output
    return Households(meters, region, {m: _read(p) for m, p in zip(meters, files, strict=True)})


def check_report(home: Path, homes: Households, day: dt.date, owner_url: str) -> None:
    """The day's report files hold, per region, the files' counts for each meter's
    London day and their energy (as stored: VEE's rejections and estimates applied)."""
    report = json.loads((home / "reports" / "quality" / f"{day}.json").read_text())
    markdown = (home / "reports" / "quality" / f"{day}.md").read_text()
    assert report["day"] == day.isoformat()
    adjust = homes.adjustments(owner_url)
    owed = london_day_length(day)
    regions = {r["region"]: r for r in report["regions"]}
    assert set(regions) == set(homes.region.values())
    for name, row in regions.items():
        members = [m for m in homes.meters if homes.region[m] == name]
        present = sum(len(homes.london_day(m, day)) for m in members)
        energy = sum(sum(homes.london_day(m, day).values()) for m in members)
        energy += sum(
            v
            for m in members
            for ts, v in adjust.get(m, {}).items()
            if ts.astimezone(LONDON).date() == day
        )
        assert row["meters"] == len(members)
        assert row["expected"] == owed * len(members)
        assert row["present"] == present
        assert row["missing"] == owed * len(members) - present
        assert row["valid"] + row["estimated"] + row["suspect"] + row["rejected"] <= owed * len(
            members
        )
        assert row["import_kwh"] == pytest.approx(energy, abs=1e-6)
        assert f"| {name} | {len(members)} |" in markdown
    assert report["fleet"]["meters"] == len(homes.meters)
    assert len(report["worst"]) == len(homes.meters)
    for meter in homes.meters:
        assert f"`{meter}`" in markdown


def day_energy(conn: psycopg.Connection, day: dt.date) -> dict[str, float]:
    """Each meter's energy on the UTC ``day``, from the meter aggregates."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    rows = conn.execute(
        "SELECT meter_id, sum(import_kwh) FROM agg_meter_30m"
        " WHERE bucket >= %s AND bucket < %s GROUP BY 1",
        (start, start + dt.timedelta(days=1)),
    ).fetchall()
    return {m: float(v) for m, v in rows}


#: every job of a day in the order `metrify batch run` runs them; written out here rather
#: than read from the registry, so a job dropped, renamed or reordered fails the tests
ALL_JOBS = (
    "aggregates",
    "compact",
    "dbt",
    "anomalies",
    "quality",
    "patterns",
    "baselines",
    "forecast",
)
