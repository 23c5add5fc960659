"""The ``forecast`` batch job over London households: day-ahead forecasts of the fleet,
the feeder and every meter, issued at the interval's end; a re-run replaces the issue."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from integration.forecast.data import load_homes
from metrify.cli import app
from metrify.settings import Settings, get_settings

runner = CliRunner()
UTC = dt.UTC
DAY = dt.date(2013, 3, 5)


def _batch() -> list[dict[str, object]]:
    result = runner.invoke(app, ["batch", "run", "--date", str(DAY), "--job", "aggregates",
                                 "--job", "forecast", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _stored(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT subject_type, subject_id, model, horizon, issued_at, count(*), min(target_ts),"
        " max(target_ts), bool_and(p10 <= p50 AND p50 <= p90), max(created_at)"
        " FROM forecasts GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2"
    ).fetchall()


@pytest.mark.realdata
@pytest.mark.slow
def test_the_job_forecasts_every_subject_once(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    homes = load_homes(tmp_path)
    runs = _batch()
    assert [(r["job"], r["status"]) for r in runs] == [("aggregates", "ok"), ("forecast", "ok")]
    details = runs[1]["details"]
    assert isinstance(details, dict)
    assert (details["groups"]["subjects"], details["meters"]["subjects"]) == (2, 3)

    issue = dt.datetime(2013, 3, 6, tzinfo=UTC)  # the interval's end
    target = dt.datetime(2013, 3, 7, tzinfo=UTC)  # the next London day (GMT in March)
    stored = _stored(conn)
    subjects = [("fleet", "all"), ("meter", homes.meters[0]), ("meter", homes.meters[1]),
                ("meter", homes.meters[2]), ("node", "F1")]  # fmt: skip
    assert [(k, s) for k, s, *_ in stored] == sorted(subjects)
    for _, _, model, horizon, issued, n, first, last, ordered, _ in stored:
        assert (model, horizon, issued, n) == ("metrify", "day-ahead", issue, 48)
        assert (first, last) == (target, target + dt.timedelta(hours=23, minutes=30))
        assert ordered

    # a re-run replaces the same issue: the same rows, written again
    again = _batch()
    assert again[1]["status"] == "ok"
    restored = _stored(conn)
    assert [r[:9] for r in restored] == [r[:9] for r in stored]
    assert all(new[9] > old[9] for new, old in zip(restored, stored, strict=True))

    # the job reads the holidays setting: a calendar the holidays package lacks fails it
    monkeypatch.setenv("METRIFY_HOLIDAYS", "ZZ-QQ")
    get_settings.cache_clear()
    result = runner.invoke(app, ["batch", "run", "--date", str(DAY), "--job", "forecast",
                                 "--json"])  # fmt: skip
    assert result.exit_code != 0
    (failed,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert failed["status"] != "ok" and "ZZ-QQ" in str(failed["error"]), failed
