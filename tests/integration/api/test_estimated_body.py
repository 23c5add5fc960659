"""Over HTTP, a reading the head-end marks ``"estimated": true`` is stored with the
``estimated`` bit, and a CSV body's ``estimated`` column says the same; the actual
value posted later replaces the estimate. Expected marks are the bodies' own."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from support.api import Api

T0 = dt.datetime(2025, 5, 12, tzinfo=dt.UTC)
ESTIMATED = 256


def seed_api(api: Api) -> None:
    api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]


def _post(api: Api, body: bytes, content_type: str) -> dict[str, Any]:
    response = api.client.post(
        "/v1/readings",
        content=body,
        headers={"Authorization": f"Bearer {api.tokens['feeder']}", "Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["summary"])


def _marks(api: Api, meter: str) -> list[bool]:
    with api.conn() as conn:
        rows = conn.execute(
            "SELECT quality & %s <> 0 FROM readings WHERE meter_id = %s AND quality & 1 = 0"
            " ORDER BY ts",
            (ESTIMATED, meter),
        ).fetchall()
    return [bool(r[0]) for r in rows]


def test_estimated_records_over_json_and_csv(api: Api) -> None:
    said = [False, True, True, False, None]
    rows = []
    for i, estimated in enumerate(said):
        ts = (T0 + i * dt.timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
        row: dict[str, Any] = {"meter_id": "HE-1", "ts": ts, "interval_s": 900, "import_kwh": 0.4}
        if estimated is not None:
            row["estimated"] = estimated
        rows.append(row)
    assert _post(api, orjson.dumps(rows), "application/json")["inserted"] == len(said)
    assert _marks(api, "HE-1") == [bool(e) for e in said]

    csv = "meter_id,ts,interval_s,import_kwh,estimated\n" + "".join(
        f"HE-2,{(T0 + i * dt.timedelta(hours=1)).isoformat()},3600,1.5,{flag}\n"
        for i, flag in enumerate(["E", "A", "", "yes"])
    )
    assert _post(api, csv.encode(), "text/csv")["inserted"] == 4
    assert _marks(api, "HE-2") == [True, False, False, True]

    # the actual reads, the same values and no mark: the estimates are replaced
    actual = [{k: v for k, v in r.items() if k != "estimated"} for r in rows]
    again = _post(api, orjson.dumps(actual), "application/json")
    assert (again["updated"], again["unchanged"]) == (2, 3)
    assert _marks(api, "HE-1") == [False] * len(said)
