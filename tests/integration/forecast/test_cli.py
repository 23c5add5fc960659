"""``metrify forecast run|backtest`` on real series loaded with ``metrify ingest``: GB
national demand (node GB) and London households. The weekly naive's backtest scores
are recomputed here from the file; stored forecasts are read back as the owner."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from integration.forecast.data import load_gb, load_homes
from metrify.cli import app
from metrify.settings import Settings, get_settings

runner = CliRunner()
UTC = dt.UTC
#: exactly the fields every backtest line carries (the issue names them)
SCORE_FIELDS = {"model", "mae", "mape", "mase", "pinball", "coverage_p10_p90"}


def _lines(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["forecast", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _fails(*args: str) -> str:
    result = runner.invoke(app, ["forecast", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


@pytest.mark.realdata
@pytest.mark.slow
def test_backtest_of_national_demand(settings: Settings, tmp_path: Path) -> None:
    gb = load_gb(tmp_path)
    first, last = dt.date(2013, 4, 1), dt.date(2013, 4, 7)
    rows = _lines("backtest", "--node", "GB", "--from", str(first), "--to", str(last))
    by_model = {str(r["model"]): r for r in rows}
    assert set(by_model) == {"metrify", "seasonal_naive_weekly"}
    for row in rows:
        assert row.keys() >= SCORE_FIELDS
        assert all(isinstance(row[f], float) for f in SCORE_FIELDS - {"model"})

    # the weekly naive, by hand: each half-hour of the UTC days (the fleet's zone is UTC)
    # forecast by the same half-hour a week before
    values = dict(zip(gb["ts"].to_list(), gb["value"].to_list(), strict=True))
    start = dt.datetime.combine(first, dt.time(), UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), UTC)
    errors, relative = [], []
    t = start
    while t < end:
        actual, week_ago = values.get(t), values.get(t - dt.timedelta(days=7))
        if actual is not None and week_ago is not None:  # the file has a few gaps
            errors.append(abs(actual - week_ago))
            relative.append(abs(actual - week_ago) / actual)
        t += dt.timedelta(minutes=30)
    naive = by_model["seasonal_naive_weekly"]
    assert naive["n"] == len(errors) > 6 * 48
    assert naive["mae"] == pytest.approx(sum(errors) / len(errors), rel=1e-9)
    assert naive["mape"] == pytest.approx(100 * sum(relative) / len(relative), rel=1e-9)
    assert 0.5 < float(naive["coverage_p10_p90"]) <= 1.0  # type: ignore[arg-type]
    # the chosen model is scored on the same points, and does not do worse than naive
    assert by_model["metrify"]["n"] == naive["n"]
    assert float(by_model["metrify"]["mae"]) < float(naive["mae"])  # type: ignore[arg-type]

    day = str(first)
    table = runner.invoke(app, ["forecast", "backtest", "--node", "GB", "--from", day, "--to",
                                day, "--model", "seasonal_naive_weekly"])  # fmt: skip
    assert table.exit_code == 0, table.output
    # the zone whose days are forecast is said (a node without meters follows the fleet's)
    assert "node GB, day-ahead, local days 2013-04-01 to 2013-04-01 in UTC" in table.stdout
    assert "local days 2013-04-01 to 2013-04-01 in UTC (1 days)" in table.stderr


def _stored(owner_url: str, subject_type: str, subject_id: str) -> pl.DataFrame:
    with psycopg.connect(owner_url) as conn:
        rows = conn.execute(
            "SELECT issued_at, target_ts, p10, p50, p90, model, horizon FROM forecasts"
            " WHERE subject_type = %s AND subject_id = %s ORDER BY target_ts",
            (subject_type, subject_id),
        ).fetchall()
    return pl.DataFrame(
        rows, schema=["issued_at", "target_ts", "p10", "p50", "p90", "model", "horizon"],
        orient="row",
    ).with_columns(pl.col("issued_at", "target_ts").dt.convert_time_zone("UTC"))  # fmt: skip


def _check_day(stored: pl.DataFrame, day: dt.date, issue: dt.datetime) -> None:
    """48 half-hours of the UTC ``day``, issued at ``issue``, quantiles in order."""
    start = dt.datetime.combine(day, dt.time(), UTC)
    assert stored.height == 48
    assert stored["target_ts"].to_list() == [
        start + dt.timedelta(minutes=30 * i) for i in range(48)
    ]
    assert set(stored["issued_at"].to_list()) == {issue}
    assert ((stored["p10"] <= stored["p50"]) & (stored["p50"] <= stored["p90"])).all()


@pytest.mark.realdata
@pytest.mark.slow
def test_run_stores_the_next_day(settings: Settings, database_url: str, tmp_path: Path) -> None:
    gb = load_gb(tmp_path)
    issue = dt.datetime(2013, 4, 10, 10, tzinfo=UTC)
    rows = _lines("run", "--node", "GB", "--issue", "2013-04-10T10:00Z")
    stored = _stored(database_url, "node", "GB")
    _check_day(stored, dt.date(2013, 4, 11), issue)
    assert set(stored["model"].to_list()) == {"metrify"}
    assert [r["p50"] for r in rows] == pytest.approx(stored["p50"].to_list())
    # national demand is forecast within a few percent of what came
    actual = gb.filter(pl.col("ts").dt.date() == dt.date(2013, 4, 11))["value"]
    assert ((stored["p50"] - actual).abs() / actual).mean() < 0.06  # type: ignore[operator]

    # another model is stored beside it; the same issue again replaces its own rows
    # (the naive model: a LightGBM fit takes a while on a busy machine)
    for _ in range(2):
        _lines("run", "--node", "GB", "--issue", "2013-04-10T10:00Z", "--model",
               "seasonal_naive_weekly")  # fmt: skip
    stored = _stored(database_url, "node", "GB")
    assert stored.height == 96
    # the naive P50 is last week's value
    naive = stored.filter(pl.col("model") == "seasonal_naive_weekly")
    week_ago = gb.filter(pl.col("ts").dt.date() == dt.date(2013, 4, 4))["value"]
    assert naive["p50"].to_list() == pytest.approx(week_ago.to_list())

    # without --issue: from where the stored data ends (2013-05-01), so May 2nd
    table = runner.invoke(app, ["forecast", "run", "--node", "GB", "--model",
                                "seasonal_naive_weekly"])  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "issued 2013-05-01T00:00:00+00:00" in table.stdout
    latest = _stored(database_url, "node", "GB").filter(
        pl.col("issued_at") == dt.datetime(2013, 5, 1, tzinfo=UTC)
    )
    assert set(latest["model"].to_list()) == {"seasonal_naive_weekly"}
    _check_day(latest, dt.date(2013, 5, 2), dt.datetime(2013, 5, 1, tzinfo=UTC))


@pytest.mark.realdata
@pytest.mark.slow
def test_run_every_meter_and_the_groups(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    homes = load_homes(tmp_path)
    # an hourly meter too (the first household's half-hours summed by the hour): its
    # series has another step, so it is forecast by a model of its own, 24 targets
    hourly = tmp_path / "hourly.csv"
    homes.kwh[homes.meters[0]].sort("ts").group_by_dynamic("ts", every="1h").agg(
        pl.col("value").sum().alias("import_kwh")
    ).select(pl.lit("H1").alias("meter_id"), "ts", "import_kwh").write_csv(hourly)
    (tmp_path / "h1.csv").write_text(
        "meter_id,node_id,region,tariff,station_id,timezone,interval_s\n"
        "H1,F2,east,ToU,LDN,Europe/London,3600\n"
    )
    assert runner.invoke(app, ["ingest", "meters", str(tmp_path / "h1.csv")]).exit_code == 0
    loaded = runner.invoke(app, ["ingest", "readings", str(hourly), "--interval", "3600"])
    assert loaded.exit_code == 0, loaded.output

    (summary,) = _lines("run", "--all-meters", "--issue", "2013-03-05T00:00Z")
    assert (summary["subjects"], summary["skipped"]) == (4, 0)
    assert summary["rows"] == 3 * 48 + 24
    h1 = _stored(database_url, "meter", "H1")
    start = dt.datetime(2013, 3, 6, tzinfo=UTC)
    assert h1["target_ts"].to_list() == [start + dt.timedelta(hours=i) for i in range(24)]
    for meter in homes.meters:
        # London is on GMT in early March: its local day is the UTC day
        _check_day(_stored(database_url, "meter", meter), dt.date(2013, 3, 6),
                   dt.datetime(2013, 3, 5, tzinfo=UTC))  # fmt: skip
    for args, kind, key in ((("--fleet",), "fleet", "all"), (("--segment", "Std"), "segment",
                            "Std"), (("--region", "north"), "region", "north")):  # fmt: skip
        _lines("run", *args, "--issue", "2013-03-05T00:00Z", "--model", "seasonal_naive_weekly")
        _check_day(_stored(database_url, kind, key), dt.date(2013, 3, 6),
                   dt.datetime(2013, 3, 5, tzinfo=UTC))  # fmt: skip
    # the fleet and every node (the feeder) at once: one model across them
    (groups,) = _lines("run", "--all-nodes", "--issue", "2013-03-05T00:00Z")
    # the fleet, F1 (half-hourly) and F2 (the hourly meter's alone: 24 targets); they share
    # a station, and one model cannot take series of two steps: each gets its own
    assert (groups["subjects"], groups["skipped"], groups["rows"]) == (3, 0, 2 * 48 + 24)
    for kind, key in (("fleet", "all"), ("node", "F1")):
        stored = _stored(database_url, kind, key).filter(pl.col("model") == "metrify")
        _check_day(stored, dt.date(2013, 3, 6), dt.datetime(2013, 3, 5, tzinfo=UTC))


@pytest.mark.realdata
def test_intraday_and_clear_errors(settings: Settings, tmp_path: Path) -> None:
    gb = load_gb(tmp_path)
    # intraday: the 12 half-hours of the next 6 hours from the issue
    rows = _lines("run", "--node", "GB", "--issue", "2013-04-10T10:00Z", "--horizon",
                  "intraday", "--model", "seasonal_naive_weekly")  # fmt: skip
    issue = dt.datetime(2013, 4, 10, 10, tzinfo=UTC)
    assert [dt.datetime.fromisoformat(str(r["target_ts"])) for r in rows] == [
        issue + dt.timedelta(minutes=30 * i) for i in range(12)
    ]
    assert {r["horizon"] for r in rows} == {"intraday"}
    week_ago = gb.filter(
        pl.col("ts").is_between(issue - dt.timedelta(days=7),
                                issue - dt.timedelta(days=7, hours=-6), "left")
    )["value"]  # fmt: skip
    assert [r["p50"] for r in rows] == pytest.approx(week_ago.to_list())

    assert "no grid node nowhere" in _fails("run", "--node", "nowhere")
    assert "no meter M9" in _fails("backtest", "--meter", "M9", "--from", "2013-04-01",
                                   "--to", "2013-04-02")  # fmt: skip
    assert "exactly one of" in _fails("run", "--node", "GB", "--fleet")
    assert "exactly one of" in _fails("run")
    assert "expected a date" in _fails("backtest", "--node", "GB", "--from", "April",
                                       "--to", "2013-04-02")  # fmt: skip
    assert "must not be before" in _fails("backtest", "--node", "GB", "--from", "2013-04-02",
                                          "--to", "2013-04-01")  # fmt: skip
    assert "day-ahead or intraday" in _fails("run", "--node", "GB", "--horizon", "weekly")
    assert "ISO time" in _fails("run", "--node", "GB", "--issue", "tomorrow")
    assert "unknown model" in _fails("run", "--node", "GB", "--model", "prophet")
    assert "unknown holiday calendar 'ZZ'" in _fails("run", "--node", "GB", "--holidays", "ZZ")
    # three days of history are too few for the models: said, not a stack trace
    assert "days of history" in _fails("backtest", "--node", "GB", "--from", "2013-01-04",
                                       "--to", "2013-01-10")  # fmt: skip
    # the window read is named: GB may be stored, only not in the 400 days before
    assert "node GB has no stored history in the 400 days before 2012-06-01T00:00:00+00:00" in (
        _fails("run", "--node", "GB", "--issue", "2012-06-01T00:00Z").replace("\n", "")
    )


@pytest.mark.realdata
@pytest.mark.slow
def test_the_holidays_setting_is_the_default_calendar(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``--holidays`` the commands read the ``holidays`` setting: a calendar the
    ``holidays`` package does not know, set only there, is what the error names."""
    load_gb(tmp_path)
    monkeypatch.setenv("METRIFY_HOLIDAYS", "ZZ-QQ")
    get_settings.cache_clear()
    assert "unknown holiday calendar 'ZZ-QQ'" in _fails("run", "--node", "GB")
    assert "unknown holiday calendar 'ZZ-QQ'" in _fails(
        "backtest", "--node", "GB", "--from", "2013-04-01", "--to", "2013-04-02"
    )
    # the option still wins over the setting
    rows = _lines("run", "--node", "GB", "--issue", "2013-04-10T10:00Z", "--holidays", "GB-ENG")
    assert len(rows) == 48
    monkeypatch.setenv("METRIFY_HOLIDAYS", "not a calendar")
    get_settings.cache_clear()
    assert "holidays" in _fails("run", "--node", "GB")
