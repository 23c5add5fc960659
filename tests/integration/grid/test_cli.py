"""``metrify grid`` on real London households under a synthetic feeder in PostgreSQL:
each answer against a reference computed in the test from the files and the stored
rows, and one-line errors for bad questions."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.settings import Settings

from .feeder import END, HIGH_SLOTS, HIGH_WEEK, START, TARIFF, Feeder, load_feeder

runner = CliRunner()
RANGE = ["--from", "2013-01-01", "--to", "2013-02-01"]


@pytest.fixture
def feeder(settings: Settings, tmp_path: Path) -> Feeder:
    return load_feeder(tmp_path)


def _grid(*args: str) -> dict[str, Any]:
    from metrify.cli import app

    result = runner.invoke(app, ["grid", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _stored(conn: psycopg.Connection[Any]) -> dict[str, dict[dt.datetime, float]]:
    """Each meter's stored, not rejected, readings with a value in January."""
    out: dict[str, dict[dt.datetime, float]] = defaultdict(dict)
    for meter, ts, kwh in conn.execute(
        "SELECT meter_id, ts, import_kwh FROM readings WHERE status <> 'rejected'"
        " AND import_kwh IS NOT NULL AND ts >= %s AND ts < %s",
        (START, END),
    ):
        out[meter][ts] = kwh
    return out


def _loading_counts_time_above_capacity(feeder: Feeder) -> None:
    got = _grid("loading", "--node", "F1", *RANGE)
    loads = feeder.load_mw
    assert got["tz"] == "Europe/London"
    assert got["capacity_mw"] == pytest.approx(feeder.capacity_mw)
    assert got["peak_mw"] == pytest.approx(max(loads.values()))
    assert got["peak_utilisation"] == pytest.approx(0.95, abs=1e-4)
    above80 = sum(0.5 for v in loads.values() if v > 0.8 * feeder.capacity_mw)
    assert above80 > 0
    assert got["hours_above_80"] == pytest.approx(above80)
    assert got["hours_above_100"] == 0
    assert got["hours"] == pytest.approx(31 * 24)
    assert got["headroom_mw"] == pytest.approx(feeder.capacity_mw - max(loads.values()))
    ordered = sorted(loads.values(), reverse=True)
    curve = got["duration_curve"]
    assert curve[0]["load_mw"] == pytest.approx(ordered[0])
    # half the time (744 of 1488 half-hours) the load was at least the 745th highest
    assert curve[10]["time_share"] == pytest.approx(0.5)
    assert curve[10]["load_mw"] == pytest.approx(ordered[744])


def _peak_drivers_at_the_measured_peak_and_below_a_substation(
    feeder: Feeder, conn: psycopg.Connection[Any]
) -> None:
    stored = _stored(conn)
    got = _grid("peak-drivers", "--node", "F1", *RANGE)
    peak_ts = max(feeder.load_mw, key=lambda t: (feeder.load_mw[t], -t.timestamp()))
    assert got["basis"] == "node"
    assert got["peak_kw"] == pytest.approx(feeder.load_mw[peak_ts] * 1000)
    assert [dt.datetime.fromisoformat(t) for t in got["peak_ts"]] == [peak_ts]
    rows = {r["meter_id"]: r for r in got["meters"]}
    assert set(rows) == set(TARIFF)
    for meter, r in rows.items():
        at = stored[meter][peak_ts] * 2
        own = max(stored[meter].values()) * 2
        assert r["at_peak_kw"] == pytest.approx(at)
        assert r["own_peak_kw"] == pytest.approx(own)
        assert r["coincidence_factor"] == pytest.approx(at / own)
        assert r["share_of_peak"] == pytest.approx(at / (feeder.load_mw[peak_ts] * 1000))
    # the substation has no measurements of its own: its peak is its meters' sum
    sub = _grid("peak-drivers", "--node", "SUB", *RANGE, "--top", "3")
    totals: dict[dt.datetime, float] = defaultdict(float)
    for rows_of in stored.values():
        for t, v in rows_of.items():
            totals[t] += v * 2
    top3 = sorted(totals.values(), reverse=True)[:3]
    assert sub["basis"] == "meters"
    assert sub["peak_kw"] == pytest.approx(sum(top3) / 3)
    assert sub["meters_count"] == 4


def test_losses_tell_missing_data_from_loss(feeder: Feeder, conn: psycopg.Connection[Any]) -> None:
    gap_day = dt.date(2013, 1, 15)
    conn.execute(
        "DELETE FROM readings WHERE meter_id = 'MAC000003' AND ts >= %s AND ts < %s",
        (dt.datetime(2013, 1, 15, tzinfo=dt.UTC), dt.datetime(2013, 1, 16, tzinfo=dt.UTC)),
    )
    stored = _stored(conn)
    got = _grid("losses", "--node", "F1", *RANGE)
    days = {dt.date.fromisoformat(d["day"]): d for d in got["days"]}
    assert len(days) == 31
    gap = days[gap_day]
    assert gap["complete"] is False
    assert gap["meters_missing"] >= 1 and gap["missing_readings"] >= 48
    london = ZoneInfo("Europe/London")
    complete_node = complete_meters = 0.0
    for day, row in days.items():
        node = sum(v * 1800 / 3.6 for t, v in feeder.load_mw.items() if t.date() == day)
        meters = sum(
            v for rows in stored.values() for t, v in rows.items()
            if t.astimezone(london).date() == day
        )  # fmt: skip
        assert row["node_kwh"] == pytest.approx(node)
        assert row["meters_kwh"] == pytest.approx(meters)
        owed = 48 * 4
        present = sum(
            1 for rows in stored.values() for t in rows if t.astimezone(london).date() == day
        )
        assert row["missing_readings"] == owed - present
        if row["complete"]:
            complete_node += node
            complete_meters += meters
    assert got["complete_days"] + got["incomplete_days"] == 31
    assert got["loss_kwh"] == pytest.approx(complete_node - complete_meters)
    # the node carries 5% on top of the files' readings; where VEE left them alone
    # the loss is 0.05/1.05 of the node's energy
    assert got["loss_share"] == pytest.approx(0.05 / 1.05, abs=0.01)
    assert gap["loss_share"] > got["loss_share"] + 0.05


def _compliance_counts_weeks_and_the_year(feeder: Feeder) -> None:
    got = _grid("compliance", "--node", "F1", *RANGE)
    weeks = {dt.date.fromisoformat(w["week"]): w for w in got["node_voltage_weeks"]}
    high = weeks[HIGH_WEEK.date()]
    assert high["within_10"] == pytest.approx(1 - HIGH_SLOTS / 336)
    assert high["compliant"] is False and high["exact"] is False
    assert high["values"] == pytest.approx(336 * 3)
    others = [w for d, w in weeks.items() if d != HIGH_WEEK.date()]
    assert others and all(w["compliant"] and w["within_10"] == 1.0 for w in others)
    (year,) = got["frequency_years"]
    assert year["year"] == 2013
    assert year["within_1pct"] == pytest.approx(1 - 3 / (31 * 48))
    assert year["proven_outside_1pct_hours"] == pytest.approx(1.5)
    assert year["compliant_995"] is True and year["compliant_all"] is True
    assert year["coverage"] == pytest.approx(31 / 365)
    assert got["meter_voltage"]["meters"] == 0  # London meters send no voltage


def test_loading_peak_drivers_and_compliance(feeder: Feeder, conn: psycopg.Connection[Any]) -> None:
    """The read-only answers, on one load of the feeder."""
    _loading_counts_time_above_capacity(feeder)
    _peak_drivers_at_the_measured_peak_and_below_a_substation(feeder, conn)
    _compliance_counts_weeks_and_the_year(feeder)


def _peak_share(rows: dict[dt.datetime, float]) -> float:
    london = ZoneInfo("Europe/London")
    peak = sum(v for t, v in rows.items() if 16 <= t.astimezone(london).hour < 20)
    return peak / sum(rows.values())


def test_flex_given_and_observed_share(feeder: Feeder, conn: psycopg.Connection[Any]) -> None:
    stored = _stored(conn)
    got = _grid("flex", "--node", "F1", *RANGE, "--shift", "0.5")
    # reference: per meter and day, half of the 16-20 energy spread over 20-24
    after: dict[dt.datetime, float] = defaultdict(float)
    before: dict[dt.datetime, float] = defaultdict(float)
    for rows in stored.values():
        by_day: dict[dt.date, list[dt.datetime]] = defaultdict(list)
        for t in rows:
            by_day[t.date()].append(t)  # January: London time is UTC
        for slots in by_day.values():
            peak = [t for t in slots if 16 <= t.hour < 20]
            dest = [t for t in slots if t.hour >= 20]
            moved = 0.5 * sum(rows[t] for t in peak) if dest else 0.0
            for t in slots:
                before[t] += rows[t] * 2
                v = rows[t]
                if t in peak and dest:
                    v *= 0.5
                elif t in dest:
                    v += moved / len(dest)
                after[t] += v * 2
    assert got["peak_kw"] == pytest.approx(max(before.values()))
    assert got["new_peak_kw"] == pytest.approx(max(after.values()))
    new_ts = dt.datetime.fromisoformat(got["new_peak_ts"])
    assert after[new_ts] == pytest.approx(max(after.values()))
    assert got["share_source"] == "given"
    # observed: ToU against Std peak shares of the stored January
    observed = _grid("flex", "--node", "F1", *RANGE)
    std = [_peak_share(stored[m]) for m, t in TARIFF.items() if t == "Std"]
    tou = [_peak_share(stored[m]) for m, t in TARIFF.items() if t == "ToU"]
    relative = (sum(std) / 2 - sum(tou) / 2) / (sum(std) / 2)
    effect = observed["tariff_effect"]
    assert effect["n_std"] == 2 and effect["n_tou"] == 2
    assert effect["relative"] == pytest.approx(relative)
    assert observed["share"] == pytest.approx(min(max(relative, 0.0), 1.0))
    assert observed["share_source"].startswith("observed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["loading", "--node", "NOPE", *RANGE], "no grid node NOPE"),
        (["loading", "--node", "F1", "--from", "2013-02-01", "--to", "2013-01-01"], "after"),
        (["loading", "--node", "F1", "--from", "yesterday", "--to", "2013-01-01"], "date"),
        # the asker's text quoted whole (the opening quote was stripped: "yesterday': ...")
        (["loading", "--node", "F1", "--from", "yes", "--to", "2013-01-01"], "'yes': expected"),
        # a target wholly inside the (wrapping) peak window would move nothing
        (["flex", "--node", "F1", *RANGE, "--shift", "0.2", "--window", "20-16"], "inside"),
        (["flex", "--node", "F1", *RANGE, "--shift", "1.5"], "between 0 and 1"),
        (["flex", "--node", "F1", *RANGE, "--window", "25-3"], "local hours"),
        (["loading", "--node", "F1", *RANGE, "--tz", "Mars/Base"], "unknown time zone"),
    ],
)
def test_bad_questions_are_one_line_errors(
    settings: Settings, args: list[str], message: str, tmp_path: Path
) -> None:
    from metrify.cli import app

    (tmp_path / "nodes.csv").write_text("node_id,capacity_mw\nF1,1.0\n")
    assert runner.invoke(app, ["ingest", "nodes", str(tmp_path / "nodes.csv")]).exit_code == 0
    result = runner.invoke(app, ["grid", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_range_without_data_says_so_in_one_line(settings: Settings, tmp_path: Path) -> None:
    # a table of empty cells with exit 0 read as an answer whose figures were lost
    from metrify.cli import app

    (tmp_path / "nodes.csv").write_text("node_id,capacity_mw\nF1,1.0\n")
    assert runner.invoke(app, ["ingest", "nodes", str(tmp_path / "nodes.csv")]).exit_code == 0
    for command in ("loading", "peak-drivers", "losses"):
        result = runner.invoke(app, ["grid", command, "--node", "F1", *RANGE])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == (
            "node F1: no measured load and no meter readings"
            " from 2013-01-01 00:00 to 2013-02-01 00:00 UTC"
        ), result.stdout
