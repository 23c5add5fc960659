"""A synthetic LV feeder of real London households, loaded through ``metrify ingest``.

Four households of January 2013 (two on the standard tariff, two on time-of-use, as
household_information.csv says) are the meters of feeder F1 (below substation SUB).
F1's measured load is 1.05 times the households' summed demand from the files (5%
losses), with a nominal 0.4 kV voltage that runs 12.5% high for 60 half-hours of the
week of 7 January and a frequency of 49.4 Hz for three half-hours. What the tests
expect is computed here and in the tests from the files and from the stored rows,
never from Metrify's analysis.
"""

from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from metrify.cli import app
from support.realdata import LONDON_MAP, shared_data

TARIFF = {"MAC000002": "Std", "MAC000003": "Std", "MAC000005": "ToU", "MAC000014": "ToU"}
MONTH = "2013-01"
START = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2013, 2, 1, tzinfo=dt.UTC)
HIGH_WEEK = dt.datetime(2013, 1, 7, tzinfo=dt.UTC)  # a Monday
HIGH_SLOTS = 60
LOW_HZ_AT = [START + dt.timedelta(hours=h) for h in (100, 200, 300)]


@dataclass
class Feeder:
    meters: list[str]
    kwh: dict[str, dict[dt.datetime, float]]  # from the files
    load_mw: dict[dt.datetime, float]  # F1's measured load
    capacity_mw: float


def _month(path: Path, out: Path) -> dict[dt.datetime, float]:
    """Copy the month's rows to ``out``; return its distinct parseable readings."""
    rows: dict[dt.datetime, float] = {}
    with gzip.open(path, "rt") as fh, out.open("w") as dst:
        dst.write(next(fh))
        for line in fh:
            _, ts, value = (p.strip() for p in line.split(","))
            if not ts.startswith(MONTH):
                continue
            dst.write(line)
            try:
                kwh = float(value)
            except ValueError:
                continue
            rows.setdefault(dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC), kwh)
    return rows


def load_feeder(tmp: Path) -> Feeder:
    runner = CliRunner()
    folder = shared_data() / "london-smart-meters-2013"
    meters = sorted(TARIFF)
    kwh = {m: _month(folder / f"{m}.csv.gz", tmp / f"{m}.csv") for m in meters}
    slots = [START + dt.timedelta(minutes=30 * i) for i in range(31 * 48)]
    load = {t: 1.05 * sum(kwh[m].get(t, 0.0) for m in meters) * 2 / 1000 for t in slots}
    capacity = round(max(load.values()) / 0.95, 6)  # the peak at 95% of capacity
    (tmp / "nodes.csv").write_text(
        "node_id,parent_id,kind,capacity_mw,nominal_kv\n"
        f"SUB,,substation,1.0,11\nF1,SUB,feeder,{capacity},0.4\n"
    )
    (tmp / "meters.csv").write_text(
        "meter_id,node_id,region,timezone,tariff\n"
        + "".join(f"{m},F1,north,Europe/London,{TARIFF[m]}\n" for m in meters)
    )
    lines = ["node_id,ts,interval_s,load_mw,voltage_kv,frequency_hz"]
    high = {HIGH_WEEK + dt.timedelta(hours=2 * i) for i in range(HIGH_SLOTS)}
    for t in slots:
        kv = 0.45 if t in high else 0.4
        hz = 49.4 if t in LOW_HZ_AT else 50.0
        lines.append(f"F1,{t:%Y-%m-%dT%H:%M:%SZ},1800,{load[t]!r},{kv},{hz}")
    (tmp / "grid.csv").write_text("\n".join(lines) + "\n")
    for args in (
        ["ingest", "nodes", str(tmp / "nodes.csv")],
        ["ingest", "meters", str(tmp / "meters.csv")],
        ["ingest", "grid", str(tmp / "grid.csv")],
        ["ingest", "readings", *(str(tmp / f"{m}.csv") for m in meters), *LONDON_MAP],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    return Feeder(meters, kwh, load, capacity)
