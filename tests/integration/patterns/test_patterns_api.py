"""``GET /v1/patterns...`` over HTTP: the same answers as the CLI's, the permission and
region scope of ``/v1/energy``, problem+json for bad questions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from integration.patterns.london import load_slice
from metrify.cli import app
from metrify.settings import Settings
from support.api import Api, running_api


@pytest.fixture
def api(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path / "api", clean=False) as running:
        running.add_user("analyst", "analyst")
        running.add_user("north", "analyst", ["north"])
        running.add_user("ingest", "ingest")
        yield running


@pytest.mark.realdata
def test_patterns_over_http(api: Api, conn: psycopg.Connection, tmp_path: Path) -> None:
    h = api.headers("analyst")
    assert api.client.get("/v1/patterns", params={"fleet": "true"}, headers=h).status_code == 404
    homes = load_slice(tmp_path, per_tariff=2)
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["patterns", "run", "--from", "2013-01-01", "--to", "2013-04-01", "--k", "2",
         "--resamples", "3", "--households", str(homes.households_csv)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    meter = homes.meters[0]
    cli = json.loads(runner.invoke(app, ["patterns", "show", "--meter", meter, "--json"]).stdout)

    got = api.client.get("/v1/patterns", params={"meter": meter}, headers=h)
    assert got.status_code == 200, got.text
    body = got.json()
    for name in ("load_factor", "peak_share", "base_load_kw", "peak_time", "typical_days"):
        assert body[name] == cli[name], name
    assert body["run"]["definitions"]["peak_hours"] == "16:00-19:00"

    seg = api.client.get("/v1/patterns", params={"segment": "Std"}, headers=h).json()
    assert seg["households"] == 2
    clusters = api.client.get("/v1/patterns/clusters", headers=h).json()
    assert clusters["clustering"]["k"] == len(clusters["clusters"]) == 2
    compared = api.client.get("/v1/patterns/compare", params={"by": "tariff"}, headers=h).json()
    want = json.loads(
        runner.invoke(app, ["patterns", "compare", "--by", "tariff", "--json"]).stdout
    )
    assert compared["difference"] == want["difference"]  # same seed, same interval

    # region scope: the meters are in region "london"; a north analyst sees none of it
    n = api.headers("north")
    assert api.client.get("/v1/patterns", params={"meter": meter}, headers=n).status_code == 404
    for path, params in (
        ("/v1/patterns", {"segment": "Std"}),
        ("/v1/patterns/clusters", {}),
        ("/v1/patterns/compare", {"by": "tariff"}),
    ):
        assert api.client.get(path, params=params, headers=n).status_code == 403, path
    assert api.client.get("/v1/patterns/clusters", headers=api.headers("ingest")).status_code == 403

    for params, status in (
        ({"meter": meter, "segment": "Std"}, 400),
        ({"segment": "nope"}, 404),
        ({"fleet": "true", "run": 999999}, 404),
    ):
        response = api.client.get("/v1/patterns", params=params, headers=h)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    bad = api.client.get("/v1/patterns/compare", params={"by": "colour"}, headers=h)
    assert bad.status_code == 422
    odd = api.client.get(
        "/v1/patterns/compare", params={"by": "acorn", "treated": "Affluent"}, headers=h
    )
    assert odd.status_code == 400 and "both" in odd.json()["detail"]
