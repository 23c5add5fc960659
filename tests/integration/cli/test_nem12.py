"""Real London households written as a NEM12 file, the way an Australian meter data
provider would send them: per meter (NMI) a ``200`` record per data stream and a
``300`` record per day of 48 half-hours, in NEM time (UTC+10). Loaded with no option
at all, the store holds each household's own values, at the instants the NEM dates
name, with import and export side by side and a controlled load added to the import."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import london_readings

runner = CliRunner()
NEM_OFFSET = dt.timedelta(hours=10)
HALF_HOUR = dt.timedelta(minutes=30)
TRAILER = ",,,20130310121004,20130310182204"  # reason code, description, update times


def _whole_days(frame: pl.DataFrame, days: int) -> dict[dt.date, list[float]]:
    """The household's first ``days`` days (UTC) that have all 48 half-hours."""
    by_day = (
        frame.group_by(day=pl.col("ts").dt.date())
        .agg(pl.col("import_kwh").sort_by("ts"), n=pl.len())
        .filter(pl.col("n") == 48)
        .sort("day")
        .head(days)
    )
    return dict(zip(by_day["day"].to_list(), by_day["import_kwh"].to_list(), strict=True))


def _start(day: dt.date) -> dt.datetime:
    """A NEM date's first interval start: its midnight in NEM time (UTC+10), in UTC."""
    return dt.datetime.combine(day, dt.time(), dt.UTC) - NEM_OFFSET


def _day(date: dt.date, values: list[str], quality: str = "A") -> str:
    return f"300,{date:%Y%m%d},{','.join(values)},{quality}{TRAILER}"


def test_a_nem12_file_of_real_households_loads_with_no_options(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    real = london_readings(first=4)
    homes = [
        _whole_days(real.filter(pl.col("meter_id") == m), 20)
        for m in real["meter_id"].unique(maintain_order=True)
    ]
    shared = sorted(set(homes[0]) & set(homes[1]))  # days both streams have
    both = sorted(set(homes[2]) & set(homes[3]))
    null_day, null_from, null_to = shared[3], 10, 12  # intervals 10..12 have no data
    lines = ["100,NEM12,201303101200,MDPONE,RETAILER"]
    lines.append("200,4103000001,E1B1,1,E1,N1,M001,kWh,30,")
    for day in shared:
        values = [f"{v:.3f}" for v in homes[0][day]]
        if day == null_day:
            lines.append(_day(day, values, "V"))
            lines.append(f"400,1,{null_from - 1},A,,")
            lines.append(f"400,{null_from},{null_to},N,,")
            lines.append(f"400,{null_to + 1},48,A,,")
        else:
            lines.append(_day(day, values))
    lines.append("300,20130105,0.1,0.2,A" + TRAILER)  # a day cut short
    lines.append("200,4103000001,E1B1,2,B1,N1,M001,KWH,30,")
    lines += [_day(day, [f"{v:.3f}" for v in homes[1][day]]) for day in shared]
    lines.append("200,4103000002,E1E2,1,E1,N1,M002,Wh,30,")  # this one counts in Wh
    estimated_day = both[5]  # the provider estimated this day of the general supply
    for day in both:
        quality = "E52" if day == estimated_day else "A"
        lines.append(_day(day, [f"{v * 1000:.0f}" for v in homes[2][day]], quality))
    lines.append("200,4103000002,E1E2,2,E2,N2,M002,kWh,30,")  # the controlled load
    lines += [_day(day, [f"{v:.3f}" for v in homes[3][day]]) for day in both]
    lines.append("200,4103000002,E1E2,3,Q1,N1,M002,kVArh,30,")  # reactive: no field
    lines += [_day(day, ["0.5"] * 48) for day in both]
    lines.append("900")
    path = tmp_path / "NEM12#000001#MDPONE#RETAILER.csv"
    path.write_text("\n".join(lines) + "\n")

    result = runner.invoke(app, ["ingest", "readings", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    reasons = summary["reasons"]
    assert reasons["missing import_kwh"] == null_to - null_from + 1
    assert sum(n for r, n in reasons.items() if r.startswith("NEM12 300 record")) == 1
    assert summary["quarantined"] == null_to - null_from + 2
    assert any("Q1 (kVArh)" in w for w in summary["warnings"])

    def expected(days: list[dt.date], *series: dict[dt.date, list[float]]) -> pl.DataFrame:
        rows = [
            (_start(day) + i * HALF_HOUR, round(sum(s[day][i] for s in series), 3))
            for day in days
            for i in range(48)
        ]
        return pl.DataFrame(
            rows, schema={"ts": pl.Datetime("us", "UTC"), "v": pl.Float64}, orient="row"
        )

    def stored(meter: str, column: str) -> pl.DataFrame:
        rows = conn.execute(
            f"SELECT ts, round({column}::numeric, 3)::float8 FROM readings"
            " WHERE meter_id = %s AND quality & 1 = 0 ORDER BY ts",
            (meter,),
        ).fetchall()
        return pl.DataFrame(
            rows, schema={"ts": pl.Datetime("us", "UTC"), "v": pl.Float64}, orient="row"
        )

    home = expected(shared, homes[0])
    nulls = [_start(null_day) + (i - 1) * HALF_HOUR for i in range(null_from, null_to + 1)]
    assert stored("4103000001", "import_kwh").equals(home.filter(~pl.col("ts").is_in(nulls)))
    exported = expected(shared, homes[1]).filter(~pl.col("ts").is_in(nulls))
    assert stored("4103000001", "export_kwh").equals(exported)
    assert stored("4103000002", "import_kwh").equals(expected(both, homes[2], homes[3]))
    # the null-data half-hours are a gap VEE filled and marked, not readings
    gap = conn.execute(
        "SELECT count(*) FROM readings WHERE meter_id = '4103000001' AND quality & 1 = 1"
        " AND ts = ANY(%s)",
        (nulls,),
    ).fetchone()
    assert gap == (len(nulls),)
    # the estimated day's half-hours, and only they, are stored as estimates
    marked = conn.execute(
        "SELECT ts, status FROM readings WHERE quality & 256 <> 0 AND quality & 1 = 0"
    ).fetchall()
    assert {ts for ts, _ in marked} == {_start(estimated_day) + i * HALF_HOUR for i in range(48)}
    assert "valid" not in {status for _, status in marked}


def test_a_nem13_file_is_refused_with_a_reason(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "reads.csv"
    path.write_text("100,NEM13,201303101200,MDPONE,RETAILER\n900\n")
    result = runner.invoke(app, ["ingest", "readings", str(path), "--json"])
    assert result.exit_code != 0
    assert "NEM13" in result.output and "Traceback" not in result.output
