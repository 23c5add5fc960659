"""A slice of real London households (January to March 2013) loaded through Metrify,
and the files' own values, read here without Metrify's code, to check the patterns by."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from metrify.cli import app
from support.realdata import LONDON_MAP, shared_data

LONDON = ZoneInfo("Europe/London")
START = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2013, 4, 1, tzinfo=dt.UTC)  # London is on GMT until 31 March 01:00


@dataclass
class Slice:
    """The loaded meters, their tariff and ACORN group from the households file, the
    households file itself, and each meter's readings in the slice (UTC start -> kWh)."""

    meters: list[str]
    tariff: dict[str, str]
    acorn: dict[str, str]
    households_csv: Path
    kwh: dict[str, dict[dt.datetime, float]]


def _info() -> dict[str, tuple[str, str]]:
    path = shared_data() / "london-weather" / "household_information.csv"
    with path.open() as fh:
        return {r["LCLid"]: (r["stdorToU"], r["Acorn_grouped"]) for r in csv.DictReader(fh)}


def _slice(path: Path, out: Path) -> dict[dt.datetime, float]:
    """Copy the file's rows in [START, END) to ``out`` as they are (padded values and
    all) and return them parsed."""
    rows: dict[dt.datetime, float] = {}
    with gzip.open(path, "rt") as src, out.open("w") as dst:
        dst.write(next(src))
        for line in src:
            _, ts, value = (p.strip() for p in line.split(","))
            when = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)
            if START <= when < END:
                dst.write(line)
                rows.setdefault(when, float(value))
    return rows


def load_slice(tmp: Path, per_tariff: int = 3) -> Slice:
    """The first ``per_tariff`` standard and time-of-use households among the 100 files
    whose slice is nearly whole, registered with their tariff, and loaded."""
    info = _info()
    files = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))
    chosen: dict[str, list[Path]] = {"Std": [], "ToU": []}
    kwh: dict[str, dict[dt.datetime, float]] = {}
    for path in files:
        meter = path.name.split(".")[0]
        tariff = info[meter][0]
        if len(chosen[tariff]) >= per_tariff:
            continue
        rows = _slice(path, tmp / f"{meter}.csv")
        if len(rows) < 0.95 * 90 * 48:
            continue
        chosen[tariff].append(tmp / f"{meter}.csv")
        kwh[meter] = rows
        if all(len(v) >= per_tariff for v in chosen.values()):
            break
    meters = sorted(kwh)
    meters_csv = tmp / "meters.csv"
    meters_csv.write_text(
        "meter_id,node_id,region,timezone,tariff\n"
        + "".join(f"{m},F1,london,Europe/London,{info[m][0]}\n" for m in meters)
    )
    households = tmp / "households.csv"
    households.write_text(
        "LCLid,stdorToU,Acorn,Acorn_grouped,file\n"
        + "".join(f"{m},{info[m][0]},x,{info[m][1]},block\n" for m in meters)
    )
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", "meters", str(meters_csv)])
    assert done.exit_code == 0, done.output
    paths = [str(p) for group in chosen.values() for p in group]
    done = runner.invoke(app, ["ingest", "readings", *paths, *LONDON_MAP])
    assert done.exit_code == 0, done.output
    return Slice(
        meters,
        {m: info[m][0] for m in meters},
        {m: info[m][1] for m in meters},
        households,
        kwh,
    )
