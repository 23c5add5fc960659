"""``GET /v1/forecasts`` and ``/v1/forecasts/scores`` over stored forecasts of London
households: the band as stored, the latest issue per target, scores against the files'
readings, and the energy routes' roles and region scope."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from integration.forecast.data import load_homes
from metrify.cli import app
from metrify.settings import Settings
from support.api import running_api

runner = CliRunner()
UTC = dt.UTC
NAIVE = "seasonal_naive_weekly"
DAY = dt.date(2013, 3, 6)  # London is on GMT: the local day is the UTC day


def _run(*args: str) -> None:
    done = runner.invoke(app, ["forecast", "run", *args, "--model", NAIVE, "--json"])
    assert done.exit_code == 0, done.output


def _stored(owner_url: str, kind: str, key: str, issued: dt.datetime) -> list[tuple]:
    with psycopg.connect(owner_url) as conn:
        return conn.execute(
            "SELECT target_ts, p10, p50, p90 FROM forecasts WHERE subject_type = %s"
            " AND subject_id = %s AND issued_at = %s ORDER BY target_ts",
            (kind, key, issued),
        ).fetchall()


@pytest.mark.realdata
@pytest.mark.slow
def test_forecast_routes(settings: Settings, database_url: str, tmp_path: Path) -> None:
    homes = load_homes(tmp_path)
    south = homes.meters[2]  # regions: north, north, south
    early = dt.datetime(2013, 3, 5, tzinfo=UTC)
    late = dt.datetime(2013, 3, 5, 12, tzinfo=UTC)
    _run("--fleet", "--issue", early.isoformat())
    _run("--region", "north", "--issue", early.isoformat())
    _run("--meter", south, "--issue", early.isoformat())

    with running_api(database_url, tmp_path, clean=False) as api:
        api.add_user("boss", "admin")
        api.add_user("north", "analyst", regions=["north"])
        api.add_user("loader", "ingest")
        query = {"from": str(DAY), "to": str(DAY + dt.timedelta(days=1)), "model": NAIVE}

        got = api.client.get("/v1/forecasts", params={**query, "fleet": "true"},
                             headers=api.headers("boss"))  # fmt: skip
        assert got.status_code == 200, got.text
        body = got.json()
        assert (body["subject_type"], body["subject_id"], body["unit"]) == ("fleet", "all", "kWh")
        stored = _stored(database_url, "fleet", "all", early)
        assert len(body["points"]) == len(stored) == 48
        for point, (target, p10, p50, p90) in zip(body["points"], stored, strict=True):
            assert dt.datetime.fromisoformat(point["target_ts"]) == target
            assert (point["p10"], point["p50"], point["p90"]) == pytest.approx((p10, p50, p90))
            assert dt.datetime.fromisoformat(point["issued_at"]) == early

        # a later issue of the same day: the band is the latest per target, unless an
        # issue is named
        _run("--fleet", "--issue", late.isoformat())
        latest = api.client.get("/v1/forecasts", params={**query, "fleet": "true"},
                                headers=api.headers("boss")).json()  # fmt: skip
        assert {dt.datetime.fromisoformat(p["issued_at"]) for p in latest["points"]} == {late}
        named = api.client.get(
            "/v1/forecasts",
            params={**query, "fleet": "true", "issued_at": early.isoformat()},
            headers=api.headers("boss"),
        ).json()
        assert {dt.datetime.fromisoformat(p["issued_at"]) for p in named["points"]} == {early}
        # no forecast of the default model is stored: an empty band, not an error
        none = api.client.get("/v1/forecasts", params={"from": query["from"], "to": query["to"],
                              "fleet": "true"}, headers=api.headers("boss"))  # fmt: skip
        assert none.status_code == 200 and none.json()["points"] == []

        # scores: the latest forecasts against the fleet's readings from the files
        scored = api.client.get("/v1/forecasts/scores", params={**query, "fleet": "true"},
                                headers=api.headers("boss"))  # fmt: skip
        assert scored.status_code == 200, scored.text
        (naive,) = scored.json()["scores"]
        start = dt.datetime.combine(DAY, dt.time(), UTC)
        actual = (
            pl.concat(homes.kwh.values())
            .filter(pl.col("ts").is_between(start, start + dt.timedelta(days=1), "left"))
            .group_by("ts")
            .agg(pl.col("value").sum())
            .sort("ts")
        )
        p50 = [p["p50"] for p in latest["points"]]
        errors = [abs(a - f) for a, f in zip(actual["value"].to_list(), p50, strict=True)]
        assert naive["model"] == NAIVE and naive["n"] == 48
        assert naive["mae"] == pytest.approx(sum(errors) / 48, rel=1e-6)

        # region scope: a north analyst sees north, not south, nor fleet totals
        h = api.headers("north")
        assert api.client.get("/v1/forecasts", params={**query, "region": "north"},
                              headers=h).status_code == 200  # fmt: skip
        for params, status in (({"meter": south}, 404), ({"region": "south"}, 404),
                               ({"fleet": "true"}, 403), ({"node": "F1"}, 403)):  # fmt: skip
            refused = api.client.get("/v1/forecasts", params={**query, **params}, headers=h)
            assert refused.status_code == status, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
        assert api.client.get("/v1/forecasts/scores", params={**query, "fleet": "true"},
                              headers=h).status_code == 403  # fmt: skip

        # roles and sign-in, and bad questions as problem+json
        assert api.client.get("/v1/forecasts", params={**query, "fleet": "true"},
                              headers=api.headers("loader")).status_code == 403  # fmt: skip
        assert api.client.get("/v1/forecasts", params={**query, "fleet": "true"}).status_code == 401
        boss = api.headers("boss")
        for params, status in (
            ({"meter": "nope"}, 404),
            ({"node": "nope"}, 404),
            ({}, 400),
            ({"fleet": "true", "meter": south}, 400),
            ({"fleet": "true", "to": "2013-03-01"}, 400),
            ({"fleet": "true", "from": "March"}, 400),
            ({"fleet": "true", "horizon": "weekly"}, 422),
        ):
            bad = api.client.get("/v1/forecasts", params={**query, **params}, headers=boss)
            assert bad.status_code == status, (params, bad.text)
            assert bad.headers["content-type"].startswith("application/problem+json")
