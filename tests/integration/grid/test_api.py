"""``GET /v1/grid/nodes/{id}/...`` over HTTP: the answers on a day built by hand, and
the access rules of ``/v1/energy`` (read:aggregates; node totals span regions, so a
region-scoped caller is refused), 404 for an unknown node, 400 for a bad question."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import polars as pl
import pytest

from metrify.contracts.records import GRID, METER, NODE, READING
from support.api import Api, running_api
from support.pipeline import submit_frames

DAY = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
SLOTS = [DAY + dt.timedelta(minutes=30 * i) for i in range(48)]
#: node N1 (1 MW): 0.5 MW all day but 0.9 MW for the 6 half-hours from 17:00
LOAD = [0.9 if 34 <= i < 40 else 0.5 for i in range(48)]
RANGE = {"from": "2025-01-06", "to": "2025-01-07"}
VOLTS: list[float | None] = [260.0 if i % 6 == 0 else 230.0 for i in range(48)]


@pytest.fixture(scope="module")
def api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_api(database_url, tmp_path_factory.mktemp("grid-api")) as running:
        running.add_user("admin", "admin")
        running.add_user("viewer", "viewer")
        running.add_user("north", "analyst", regions=["north"])
        s = running.settings
        submit_frames(s, NODE, [pl.DataFrame({"node_id": ["N1"], "capacity_mw": [1.0],
                                              "nominal_kv": [11.0]})])  # fmt: skip
        submit_frames(
            s,
            METER,
            [
                pl.DataFrame(
                    {
                        "meter_id": ["A", "B"],
                        "node_id": ["N1", "N1"],
                        "region": ["north", "south"],
                        "interval_s": [1800, 1800],
                        "timezone": ["UTC", "UTC"],
                    }
                )
            ],
        )
        submit_frames(
            s,
            GRID,
            [
                pl.DataFrame(
                    {
                        "node_id": ["N1"] * 48,
                        "ts": SLOTS,
                        "interval_s": [1800] * 48,
                        "load_mw": LOAD,
                    }
                )
            ],
        )
        # A uses 200 kWh per half-hour (400 kW), B 150 (300 kW): 0.7 MW of 0.5-0.9
        submit_frames(
            s,
            READING,
            [
                pl.DataFrame(
                    {
                        "meter_id": ["A"] * 48 + ["B"] * 48,
                        "ts": SLOTS * 2,
                        "interval_s": [1800] * 96,
                        "import_kwh": [200.0] * 48 + [150.0] * 48,
                        # A sends voltages, 8 half-hours of them 13% high; B none
                        "voltage_v": VOLTS + [None] * 48,
                    }
                )
            ],
        )
        yield running


def test_loading_of_a_node_built_by_hand(api: Api) -> None:
    r = api.client.get("/v1/grid/nodes/N1/loading", params=RANGE, headers=api.headers("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["node_id"] == "N1" and body["tz"] == "UTC"
    assert body["hours_above_80"] == pytest.approx(3.0)
    assert body["hours_above_100"] == 0
    assert body["headroom_mw"] == pytest.approx(0.1)
    assert body["peak_ts"].startswith("2025-01-06T17:00:00")


def test_losses_and_peak_drivers(api: Api) -> None:
    h = api.headers("admin")
    r = api.client.get("/v1/grid/nodes/N1/losses", params=RANGE, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    node_kwh = sum(LOAD) * 1000 / 2  # MW over half-hours -> kWh
    assert body["node_kwh"] == pytest.approx(node_kwh)
    assert body["meters_kwh"] == pytest.approx(48 * 350.0)
    assert body["loss_kwh"] == pytest.approx(node_kwh - 48 * 350.0)
    assert body["complete_days"] == 1
    r = api.client.get("/v1/grid/nodes/N1/peak-drivers", params=RANGE, headers=h)
    assert r.status_code == 200, r.text
    rows = {m["meter_id"]: m for m in r.json()["meters"]}
    assert rows["A"]["share_of_peak"] == pytest.approx(400 / 900)
    assert rows["B"]["coincidence_factor"] == pytest.approx(1.0)


def test_meter_voltage_compliance(api: Api) -> None:
    r = api.client.get("/v1/grid/nodes/N1/compliance", params=RANGE, headers=api.headers("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    meters = body["meter_voltage"]
    assert meters["meters"] == 1 and meters["meter_weeks"] == 1
    assert meters["meter_weeks_compliant"] == 0
    (row,) = meters["per_meter"]
    assert row["meter_id"] == "A"
    # half-hour means stand for three 10-minute values each: 8 of 48 out of band
    assert row["worst_within_10"] == pytest.approx(40 / 48)
    assert row["max_v"] == 260.0 and row["exact"] is False
    assert body["node_voltage_weeks"] == [] and body["frequency_years"] == []


@pytest.mark.parametrize(
    ("who", "path", "params", "status"),
    [
        (None, "/v1/grid/nodes/N1/loading", RANGE, 401),
        ("pusher", "/v1/grid/nodes/N1/loading", RANGE, 403),
        ("north", "/v1/grid/nodes/N1/losses", RANGE, 403),
        ("admin", "/v1/grid/nodes/NOPE/loading", RANGE, 404),
        ("admin", "/v1/grid/nodes/N1/loading", {"from": "2025-01-07", "to": "2025-01-06"}, 400),
        ("admin", "/v1/grid/nodes/N1/flex", {**RANGE, "window": "x"}, 400),
        ("admin", "/v1/grid/nodes/N1/flex", {**RANGE}, 400),  # no tariff meters
        ("admin", "/v1/grid/nodes/N1/compliance", {**RANGE, "tz": "Nowhere/Land"}, 400),
    ],
)
def test_access_and_bad_questions(
    api: Api, who: str | None, path: str, params: dict[str, str], status: int
) -> None:
    if who == "pusher":
        headers = {"X-API-Key": api.add_key("pusher2", "ingest")["key"]}
    else:
        headers = api.headers(who) if who else {}
    r = api.client.get(path, params=params, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
