"""``GET /v1/meters/{id}/events``: a meter's events in time order, region scoped (a meter
of another region is not found), paged without splitting events of one instant."""

from __future__ import annotations

import polars as pl

from metrify.contracts.records import EVENT
from metrify.pipeline.session import open_session
from support.api import Api, seed_reference

DAY = {"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"}


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    api.add_user("viewer", "viewer")
    api.add_user("north", "analyst", ["north"])
    seed_reference(api, "admin")
    events = pl.DataFrame(
        {
            "meter_id": ["M-N1", "M-N1", "M-N1", "M-S1", "M-N1"],
            "ts": [
                "2025-01-01T03:00:00Z",
                "2025-01-01T05:00:00Z",
                "2025-01-01T05:00:00Z",
                "2025-01-01T06:00:00Z",
                "2025-01-02T01:00:00Z",  # outside the day asked for
            ],
            "event": ["power_failure", "power_restore", "tamper", "cover_open", "clock_set"],
            "code": ["3.26.0.85", None, None, None, None],
        }
    )
    with open_session(api.settings) as session:
        pipeline = session.pipeline(EVENT)
        pipeline.submit(events, source="test")
        pipeline.close()


def test_events_of_a_meter_in_time_order_and_scoped(api: Api) -> None:
    answer = api.client.get("/v1/meters/M-N1/events", params=DAY, headers=api.headers("north"))
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [(i["ts"][11:16], i["event"]) for i in items] == [
        ("03:00", "power_failure"),
        ("05:00", "power_restore"),
        ("05:00", "tamper"),
    ]
    assert items[0]["code"] == "3.26.0.85"
    other = api.client.get("/v1/meters/M-S1/events", params=DAY, headers=api.headers("north"))
    assert other.status_code == 404
    viewer = api.client.get("/v1/meters/M-N1/events", params=DAY, headers=api.headers("viewer"))
    assert viewer.status_code == 403


def test_a_page_does_not_split_one_instant(api: Api) -> None:
    h = api.headers("admin")
    first = api.client.get("/v1/meters/M-N1/events", params={**DAY, "limit": 2}, headers=h).json()
    assert [i["event"] for i in first["items"]] == ["power_failure"]
    rest = api.client.get(
        "/v1/meters/M-N1/events",
        params={**DAY, "limit": 2, "cursor": first["next_cursor"]},
        headers=h,
    ).json()
    assert [i["event"] for i in rest["items"]] == ["power_restore", "tamper"]
    assert rest["next_cursor"] is None
