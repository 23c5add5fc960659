"""``metrify patterns`` on real London households through the real store: the figures
match what the files themselves give (computed here by hand), segments and clusters
are stored, the tariff comparison's difference is the hand-computed one, the batch job
replaces its run, and bad input gets one line and exit 2."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from integration.patterns.london import LONDON, Slice, load_slice
from metrify.cli import app
from metrify.settings import Settings, get_settings

runner = CliRunner()
#: England's bank holidays of January to March 2013 (gov.uk): New Year's Day, Good Friday
HOLIDAYS = {dt.date(2013, 1, 1), dt.date(2013, 3, 29)}
PERIOD = ["--from", "2013-01-01", "--to", "2013-04-01"]


def cli(*args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, ["patterns", *args])
    return done.exit_code, done.stdout, done.stderr


def kept(homes: Slice, conn: psycopg.Connection, meter: str) -> dict[dt.datetime, float]:
    """The file's readings without those VEE rejected (they count for nothing)."""
    rejected = {
        ts
        for (ts,) in conn.execute(
            "SELECT ts FROM readings WHERE meter_id = %s AND status = 'rejected'", (meter,)
        )
    }
    return {ts: v for ts, v in homes.kwh[meter].items() if ts not in rejected}


def by_hand(values: dict[dt.datetime, float]) -> dict[str, float]:
    """The figures as the guide defines them, from plain Python over the readings."""
    kw = np.array(list(values.values())) / 0.5
    local = {ts.astimezone(LONDON): v for ts, v in values.items()}
    days: dict[dt.date, dict[tuple[int, int], float]] = {}
    for when, v in local.items():
        days.setdefault(when.date(), {})[(when.hour, when.minute)] = v
    complete = {d: slots for d, slots in days.items() if len(slots) == 48}
    total = sum(sum(s.values()) for s in complete.values())
    peak = sum(v for s in complete.values() for (h, _), v in s.items() if 16 <= h < 19)
    night = np.array([v / 0.5 for when, v in local.items() if when.hour < 5])
    weekdays = [s[(18, 0)] for d, s in complete.items() if d.weekday() < 5 and d not in HOLIDAYS]
    return {
        "load_factor": float(kw.mean() / kw.max()),
        "peak_kw": float(kw.max()),
        "peak_share": peak / total,
        "mean_daily_kwh": total / len(complete),
        "base_load_kw": float(np.quantile(night, 0.10)),
        "complete_days": len(complete),
        "weekday_1800": float(np.mean(weekdays)),
    }


@pytest.mark.realdata
def test_patterns_of_london_households(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    homes = load_slice(tmp_path, per_tariff=2)
    households = ["--households", str(homes.households_csv)]
    code, out, err = cli("run", *PERIOD, *households, "--k", "2", "--resamples", "5", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["meters"] == len(homes.meters) == 4
    assert done["tz"] == "Europe/London"  # the meters' own zone

    hand = {m: by_hand(kept(homes, conn, m)) for m in homes.meters}
    for meter in homes.meters:
        code, out, err = cli("show", "--meter", meter, "--json")
        assert code == 0, err
        got = json.loads(out)
        want = hand[meter]
        for name in ("load_factor", "peak_kw", "peak_share", "mean_daily_kwh", "base_load_kw"):
            assert got[name] == pytest.approx(want[name], rel=1e-9), (meter, name)
        assert got["complete_days"] == want["complete_days"]
        assert got["tariff"] == homes.tariff[meter] and got["acorn"] == homes.acorn[meter]
        weekday = got["typical_days"]["weekday"]["all"]
        assert weekday[36] == pytest.approx(want["weekday_1800"], rel=1e-9)
        assert set(got["typical_days"]) == {"weekday", "weekend", "holiday"}
        assert set(got["typical_days"]["weekday"]) == {"all", "winter", "spring"}
        assert sum(got["shape"]) == pytest.approx(1.0)

    code, out, err = cli("show", "--segment", "ToU", "--json")
    assert code == 0, err
    assert json.loads(out)["households"] == 2
    code, out, err = cli("show", "--fleet")
    assert code == 0 and "load factor" in out, err

    code, out, err = cli("clusters", "--json")
    assert code == 0, err
    clusters = json.loads(out)
    members = [m for c in clusters["clusters"] for m in c["meters"]]
    assert sorted(members + clusters["unusual"]) == sorted(homes.meters)
    assert sum(c["households"] for c in clusters["clusters"]) == clusters["clustered"]
    assert clusters["k"] == len(clusters["clusters"]) >= 2
    assert -1 <= clusters["stability"]["ari_median"] <= 1
    for c in clusters["clusters"]:
        assert sum(c["centre"]) == pytest.approx(1.0)

    code, out, err = cli("compare", "--by", "tariff", "--json")
    assert code == 0, err
    result = json.loads(out)
    diff = result["difference"]
    tou = [hand[m]["peak_share"] for m in homes.meters if homes.tariff[m] == "ToU"]
    std = [hand[m]["peak_share"] for m in homes.meters if homes.tariff[m] == "Std"]
    assert diff["difference"] == pytest.approx(np.mean(tou) - np.mean(std), rel=1e-9)
    assert diff["low"] <= diff["difference"] <= diff["high"]
    assert (diff["n_treated"], diff["n_control"]) == (2, 2)
    assert len(result["by_slot"]) == 48
    code, out, err = cli("compare", "--by", "acorn", "--households", str(homes.households_csv))
    assert code == 0, err
    for group in set(homes.acorn.values()):
        assert group in out


@pytest.mark.realdata
def test_the_batch_job_replaces_its_run_and_bad_input_is_one_line(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_slice(tmp_path, per_tariff=1)
    for _ in range(2):
        done = runner.invoke(
            app, ["batch", "run", "--job", "patterns", "--date", "2013-03-31", "--json"]
        )
        assert done.exit_code == 0, done.output
        assert '"status":"ok"' in done.stdout.replace(" ", "")
    runs = conn.execute("SELECT period_start, period_end, source FROM pattern_runs").fetchall()
    assert runs == [
        (
            dt.datetime(2012, 4, 1, tzinfo=dt.UTC),
            dt.datetime(2013, 4, 1, tzinfo=dt.UTC),
            "batch",
        )
    ]
    assert conn.execute("SELECT count(*) FROM meter_patterns").fetchone() == (2,)
    # a week and more of daily runs: the job keeps its newest seven
    for day in range(1, 10):
        done = runner.invoke(
            app, ["batch", "run", "--job", "patterns", "--date", f"2013-04-{day:02d}"]
        )
        assert done.exit_code == 0, done.output
    kept_runs = conn.execute(
        "SELECT period_end FROM pattern_runs WHERE source = 'batch' ORDER BY period_end"
    ).fetchall()
    assert [r[0].day for r in kept_runs] == list(range(4, 11))  # April 4th to 10th
    code, _, err = cli("clusters")  # two households: nothing to cluster, and it says why
    assert code == 2 and "at least 3 households" in err

    for args, message in (
        (["show", "--meter", "MAC999999"], "no meter MAC999999"),
        (["show", "--meter", "a", "--segment", "b"], "exactly one of"),
        (["compare", "--by", "colour"], "--by colour"),
        (["run", *PERIOD, "--peak", "16:15-19:00"], "half-hours"),
        (["run", "--from", "2020-01-01", "--to", "2020-02-01"], "no measured half-hours"),
        (["run", *PERIOD, "--households", str(tmp_path / "none.csv")], "cannot read"),
    ):
        code, out, err = cli(*args)
        assert code == 2, (args, out, err)
        assert message in err and "Traceback" not in err, (args, err)

    # the holidays setting reaches the command and the job: a calendar the holidays
    # package lacks, set only there, is what they name
    monkeypatch.setenv("METRIFY_HOLIDAYS", "ZZ-QQ")
    get_settings.cache_clear()
    code, _, err = cli("run", *PERIOD)
    assert code == 2 and "unknown holiday calendar 'ZZ-QQ'" in err, err
    done = runner.invoke(app, ["batch", "run", "--job", "patterns", "--date", "2013-04-10",
                               "--json"])  # fmt: skip
    assert done.exit_code != 0 and "ZZ-QQ" in done.stdout, done.output
