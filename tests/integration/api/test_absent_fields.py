"""Over HTTP, a JSON body whose records all lack a field leaves that field as stored.

Absence is judged per body: a field no record of the body has is unknown (kept), while
a record lacking a key that other records of the same body carry gives null there, as
an explicit ``null`` does. Expected values are the bodies' own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from support.api import Api

T0 = dt.datetime(2025, 5, 12, tzinfo=dt.UTC)


def seed_api(api: Api) -> None:
    api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]


def _post(api: Api, rows: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.client.post(
        "/v1/grid",
        content=orjson.dumps(rows),
        headers={
            "Authorization": f"Bearer {api.tokens['feeder']}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["summary"])


def _rows(node: str, loads: list[float], prices: list[float] | None) -> list[dict[str, Any]]:
    rows = []
    for i, load in enumerate(loads):
        ts = (T0 + i * dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        row: dict[str, Any] = {"node_id": node, "ts": ts, "interval_s": 300, "load_mw": load}
        if prices is not None:
            row["price_per_mwh"] = prices[i]
        rows.append(row)
    return rows


def _stored(api: Api, node: str) -> list[tuple[object, ...]]:
    with api.conn() as conn:
        return conn.execute(
            "SELECT load_mw, price_per_mwh FROM grid_measurements WHERE node_id = %s ORDER BY ts",
            (node,),
        ).fetchall()


def _history(api: Api, node: str) -> list[tuple[object, ...]]:
    with api.conn() as conn:
        return conn.execute(
            "SELECT ts, load_mw, price_per_mwh FROM grid_measurement_history"
            " WHERE node_id = %s ORDER BY ts",
            (node,),
        ).fetchall()


LOADS = [100.0, 102.5, 98.0]
PRICES = [55.0, -12.5, 80.25]


def test_a_body_without_a_field_keeps_the_stored_one(api: Api) -> None:
    assert _post(api, _rows("JA", LOADS, PRICES))["inserted"] == 3
    again = _post(api, _rows("JA", LOADS, None))
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert _stored(api, "JA") == list(zip(LOADS, PRICES, strict=True))
    assert _history(api, "JA") == []

    corrected = [LOADS[0], 101.0, LOADS[2]]
    fixed = _post(api, _rows("JA", corrected, None))
    assert (fixed["inserted"], fixed["updated"], fixed["unchanged"]) == (0, 1, 2)
    assert _stored(api, "JA") == list(zip(corrected, PRICES, strict=True))
    assert _history(api, "JA") == [(T0 + dt.timedelta(minutes=5), LOADS[1], PRICES[1])]


def test_a_key_missing_from_one_record_of_a_body_is_null(api: Api) -> None:
    """The per-body rule: the field is in the body (one record has it), so the record
    without it says null, as an empty CSV cell would."""
    assert _post(api, _rows("JB", LOADS, PRICES))["inserted"] == 3
    mixed = _rows("JB", LOADS, PRICES)
    del mixed[2]["price_per_mwh"]
    result = _post(api, mixed)
    assert (result["updated"], result["unchanged"]) == (1, 2)
    assert _stored(api, "JB") == [(LOADS[0], PRICES[0]), (LOADS[1], PRICES[1]), (LOADS[2], None)]
