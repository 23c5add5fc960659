"""Bad values over HTTP are the request's own problem, never a 500.

Times outside what the store holds (year 1, 9999, with or without a 14-hour offset) are
quarantined rows on ingest and 422 problems as parameters of the read endpoints; edits
pass the value checks of ingest; a CSV body's reject ``index`` is the record's 0-based
position, as for JSON.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from support.api import Api, seed_reference

FAR = [
    "9999-12-31T23:30:00Z",
    "9999-12-31T23:30:00-14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
]


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    seed_reference(api, "admin")


def _reading(ts: str, value: float = 0.5) -> dict[str, Any]:
    return {"meter_id": "M-N1", "ts": ts, "interval_s": 900, "import_kwh": value}


def _stored(api: Api, start: str, end: str) -> list[tuple[str, float]]:
    page = api.client.get(
        "/v1/meters/M-N1/readings",
        params={"from": start, "to": end, "resolution": "raw"},
        headers=api.headers("admin"),
    )
    assert page.status_code == 200, page.text
    return [(r["ts"].replace("+00:00", "Z"), r["import_kwh"]) for r in page.json()["items"]]


@pytest.mark.parametrize("far", FAR)
def test_a_far_time_is_quarantined_and_the_good_rows_stored(api: Api, far: str) -> None:
    day = {FAR[0]: "10", FAR[1]: "11", FAR[2]: "12", FAR[3]: "13"}[far]
    body = [
        _reading(f"2025-01-{day}T00:00:00Z", 0.25),
        _reading(far),
        _reading(f"2025-01-{day}T00:15:00Z", 0.75),
    ]
    response = api.client.post("/v1/readings", json=body, headers=api.headers("admin"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert [(r["index"], r["reason"]) for r in result["rejects"]] == [
        (1, "ts outside 1970-01-01T00:00:00Z..2200-01-01T00:00:00Z")
    ]
    assert result["summary"]["quarantined"] == 1
    assert _stored(api, f"2025-01-{day}T00:00:00Z", f"2025-01-{day}T00:30:00Z") == [
        (f"2025-01-{day}T00:00:00Z", 0.25),
        (f"2025-01-{day}T00:15:00Z", 0.75),
    ]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _reads(far: str) -> list[tuple[str, dict[str, str]]]:
    ok_from, ok_to = "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"
    out: list[tuple[str, dict[str, str]]] = []
    for path in (
        "/v1/meters/M-N1/readings",
        "/v1/meters/M-N1/quality",
        "/v1/fleet/summary",
        "/v1/readings/export",
        "/v1/grid/nodes/N1/load",
        "/v1/weather/stations/S1/observations",
    ):
        out += [(path, {"from": far, "to": ok_to}), (path, {"from": ok_from, "to": far})]
    out += [
        ("/v1/meters/M-N1/readings", {"from": ok_from, "to": ok_to, "cursor": _cursor(far)}),
        ("/v1/quarantine", {"since": far}),
        ("/v1/audit", {"since": far}),
        ("/v1/audit", {"until": far}),
        ("/v1/anomalies", {"since": far}),
    ]
    return out


@pytest.mark.parametrize("far", FAR)
def test_far_time_parameters_are_422_problems(api: Api, far: str) -> None:
    for path, params in _reads(far):
        response = api.client.get(path, params=params, headers=api.headers("admin"))
        assert response.status_code == 422, (path, params, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    edit = api.client.post(
        "/v1/meters/M-N1/edits",
        json={"from": far, "to": "2025-01-02T00:00:00Z", "value": 1.0, "reason": "x"},
        headers=api.headers("admin"),
    )
    assert edit.status_code == 422, edit.text


def test_forged_id_cursor_is_a_422(api: Api) -> None:
    response = api.client.get(
        "/v1/audit", params={"cursor": _cursor("9" * 40)}, headers=api.headers("admin")
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("value", [b"1e309", b"-1e309", b"1e300", b"-0.5"])
def test_edit_values_pass_the_ingest_checks(api: Api, value: bytes) -> None:
    h = api.headers("admin")
    rows = [_reading("2025-01-20T00:00:00Z", 0.4), _reading("2025-01-20T00:15:00Z", 0.6)]
    assert api.client.post("/v1/readings", json=rows, headers=h).status_code == 200
    body = (
        b'{"from": "2025-01-20T00:00:00Z", "to": "2025-01-20T00:30:00Z", "value": '
        + value
        + b', "reason": "register read"}'
    )
    edit = api.client.post(
        "/v1/meters/M-N1/edits",
        content=body,
        headers={**h, "Content-Type": "application/json"},
    )
    assert edit.status_code == 422, edit.text
    assert "value" in edit.json()["detail"]
    assert _stored(api, "2025-01-20T00:00:00Z", "2025-01-20T00:30:00Z") == [
        ("2025-01-20T00:00:00Z", 0.4),
        ("2025-01-20T00:15:00Z", 0.6),
    ]
    audit = api.client.get("/v1/audit", params={"limit": 1000}, headers=h)
    assert audit.status_code == 200, audit.text
    assert not [e for e in audit.json()["items"] if e["action"] == "readings.edit"]


def test_csv_rejects_carry_the_record_index(api: Api) -> None:
    text = (
        "meter_id,ts,interval_s,import_kwh\n"
        "M-S1,2025-01-25T00:00:00Z,900,0.1\n"
        "M-S1,not a time,900,0.1\n"
        "M-S1,2025-01-25T00:15:00Z,900,-1\n"  # impossible: VEE stores and rejects it
    )
    response = api.client.post(
        "/v1/readings",
        content=text.encode(),
        headers={**api.headers("admin"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    got = sorted((r["index"], r["line"]) for r in response.json()["rejects"])
    # records 1 and 2 (0-based, header excluded), on CSV lines 3 and 4
    assert got == [(1, 3), (2, 4)]


def test_json_and_csv_indices_agree(api: Api) -> None:
    rows = [
        _reading("2025-01-26T00:00:00Z", 0.1),
        _reading("2025-01-26T00:15:00Z", -1.0),
    ]
    as_json = api.client.post("/v1/readings", json=rows, headers=api.headers("admin")).json()
    csv = "meter_id,ts,interval_s,import_kwh\n" + "".join(
        f"{r['meter_id']},{r['ts'].replace('26T', '27T')},900,{r['import_kwh']}\n" for r in rows
    )
    as_csv = api.client.post(
        "/v1/readings",
        content=csv.encode(),
        headers={**api.headers("admin"), "Content-Type": "text/csv"},
    ).json()
    assert [r["index"] for r in as_json["rejects"]] == [r["index"] for r in as_csv["rejects"]]
    assert orjson.dumps([r["index"] for r in as_csv["rejects"]]) == b"[1]"


def test_an_unknown_quarantine_kind_is_a_422(api: Api) -> None:
    # "kind=reading" (no s) answered an empty page, as if nothing had been quarantined
    response = api.client.get(
        "/v1/quarantine", params={"kind": "reading"}, headers=api.headers("admin")
    )
    assert response.status_code == 422, response.text
    assert "use one of readings, grid, weather" in response.json()["detail"]
    ok = api.client.get("/v1/quarantine", params={"kind": "readings"}, headers=api.headers("admin"))
    assert ok.status_code == 200, ok.text
