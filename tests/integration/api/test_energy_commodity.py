"""``GET /v1/energy`` keeps commodities apart: a feeder with an electricity meter and a
water meter answers in kWh of electricity by default and in m³ of water when asked,
never their sum; a meter answers in its own commodity; the cached (hot path) answer is
the same as the first. Expected sums are the readings sent, added here by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from support.api import Api, running_api, seed_reference

DAY = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)
#: (meter, minutes after DAY, value): M-N1 electricity (kWh), M-S1 water (m³)
SENT = [("M-N1", 0, 0.25), ("M-N1", 15, 0.5), ("M-S1", 0, 1.0), ("M-S1", 15, 2.0)]


@pytest.fixture(scope="module")
def api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home: Path = tmp_path_factory.mktemp("energy-commodity")
    with running_api(database_url, home, energy_cache_s=300.0) as a:
        a.add_user("admin", "admin")
        a.add_user("ana", "analyst")
        seed_reference(a, "admin")
        with psycopg.connect(a.url, autocommit=True) as conn:
            conn.execute(
                "UPDATE meters SET commodity = 'water', unit = 'm3' WHERE meter_id = 'M-S1'"
            )
        key = a.add_key("feeder", "ingest")["key"]
        rows = [
            {
                "meter_id": m,
                "ts": (DAY + dt.timedelta(minutes=t)).isoformat(),
                "interval_s": 900,
                "import_kwh": v,
            }
            for m, t, v in SENT
        ]
        response = a.client.post(
            "/v1/readings",
            content=orjson.dumps(rows),
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        yield a


def _energy(api: Api, **params: str) -> Any:
    query = {"from": "2025-06-02", "to": "2025-06-03", "resolution": "1d", **params}
    return api.client.get("/v1/energy", params=query, headers=api.headers("ana"))


def test_groups_sum_one_commodity(api: Api) -> None:
    for _ in range(2):  # the second answer comes from the cache (the hot path)
        power = _energy(api, node="N1")
        assert power.status_code == 200, power.text
        body = power.json()
        assert (body["commodity"], body["unit"]) == ("electricity", "kWh")
        assert [b["import_kwh"] for b in body["buckets"]] == pytest.approx([0.25 + 0.5])
    water = _energy(api, node="N1", commodity="water").json()
    assert (water["commodity"], water["unit"]) == ("water", "m3")
    assert [b["import_kwh"] for b in water["buckets"]] == pytest.approx([1.0 + 2.0])
    fleet = _energy(api, fleet="true", commodity="electricity").json()
    assert [b["import_kwh"] for b in fleet["buckets"]] == pytest.approx([0.75])
    assert _energy(api, region="north", commodity="gas").json()["buckets"] == []


def test_a_meter_answers_in_its_own_commodity(api: Api) -> None:
    own = _energy(api, meter="M-S1").json()
    assert (own["commodity"], own["unit"]) == ("water", "m3")
    assert [b["present"] for b in own["buckets"]] == [2]
    wrong = _energy(api, meter="M-S1", commodity="electricity")
    assert wrong.status_code == 400 and "measures water" in wrong.text
    assert _energy(api, node="N1", commodity="steam").status_code == 422


def test_an_unknown_group_is_a_400_and_a_quiet_one_an_empty_answer(api: Api) -> None:
    # an unknown node, region or segment answered 200 with no buckets, as if it existed
    for params, message in (
        ({"node": "NOPE"}, "no grid node NOPE"),
        ({"region": "nowhere"}, "no region nowhere"),
        ({"segment": "Nope"}, "no segment Nope"),
    ):
        response = _energy(api, **params)
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"]
    # a known node in a range without readings is still an empty answer
    quiet = _energy(api, node="N1", **{"from": "2024-01-01", "to": "2024-01-02"})
    assert quiet.status_code == 200 and quiet.json()["buckets"] == []
