"""End to end over HTTP: ingest (JSON, NDJSON, CSV) through the pipeline, then read the
same values back at every resolution, page by page, latest, and as CSV / Parquet.

Expected aggregates are computed here from the generated input, not from the API.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from support.api import Api, seed_reference

START = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)
N = 96 * 2  # two days of 15-minute readings per meter


def _value(meter: int, i: int) -> float:
    """Distinct, plausible values without flat runs or spikes."""
    return round(0.05 + ((i * 7 + meter * 3) % 11) * 0.03 + (i % 96) * 0.001, 6)


def _rows(meter_id: str, meter: int) -> list[dict[str, Any]]:
    return [
        {
            "meter_id": meter_id,
            "ts": (START + i * STEP).isoformat().replace("+00:00", "Z"),
            "interval_s": 900,
            "import_kwh": _value(meter, i),
        }
        for i in range(N)
    ]


def _iso(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _expected(rows: list[dict[str, Any]], width: dt.timedelta) -> dict[dt.datetime, float]:
    """Sums per bucket start, bucket = floor to ``width`` since 2000-01-01 UTC."""
    origin = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    out: dict[dt.datetime, float] = defaultdict(float)
    for row in rows:
        ts = _iso(row["ts"])
        out[origin + ((ts - origin) // width) * width] += row["import_kwh"]
    return dict(out)


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    api.add_user("ana", "analyst")
    seed_reference(api, "admin")
    api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]


def _post(api: Api, path: str, body: bytes, media: str, **headers: str) -> Any:
    return api.client.post(
        path,
        content=body,
        headers={
            "Authorization": f"Bearer {api.tokens['feeder']}",
            "Content-Type": media,
            **headers,
        },
    )


def _all_pages(api: Api, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = api.client.get(path, params=query, headers=api.headers("ana"))
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 100


@pytest.fixture(scope="module")
def loaded(api: Api) -> dict[str, list[dict[str, Any]]]:
    """Meter M-N1 day 1 as a JSON array, day 2 as NDJSON; M-S1 as CSV."""
    a, b = _rows("M-N1", 1), _rows("M-S1", 2)
    first = _post(api, "/v1/readings", orjson.dumps(a[:96]), "application/json")
    assert first.status_code == 200, first.text
    assert first.json()["summary"]["inserted"] == 96
    ndjson = b"\n".join(orjson.dumps(r) for r in a[96:]) + b"\n"
    second = _post(api, "/v1/readings", ndjson, "application/x-ndjson")
    assert second.json()["summary"]["inserted"] == 96
    lines = ["meter_id,ts,interval_s,import_kwh"] + [
        f"{r['meter_id']},{r['ts']},{r['interval_s']},{r['import_kwh']}" for r in b
    ]
    third = _post(api, "/v1/readings", "\n".join(lines).encode(), "text/csv; charset=utf-8")
    assert third.json()["summary"]["inserted"] == N
    return {"M-N1": a, "M-S1": b}


@pytest.mark.parametrize("resolution", ["raw", "15m", "1h", "1d"])
@pytest.mark.parametrize("meter", ["M-N1", "M-S1"])
def test_read_back_at_each_resolution(
    api: Api, loaded: dict[str, list[dict[str, Any]]], resolution: str, meter: str
) -> None:
    rows = loaded[meter]
    params = {
        "from": "2025-03-03T00:00:00Z",
        "to": "2025-03-05T00:00:00Z",
        "resolution": resolution,
        "limit": 50,
    }
    items = _all_pages(api, f"/v1/meters/{meter}/readings", params)
    if resolution == "raw":
        assert [(_iso(i["ts"]), i["import_kwh"]) for i in items] == [
            (_iso(r["ts"]), r["import_kwh"]) for r in rows
        ]
        assert {i["status"] for i in items} <= {"valid", "suspect"}
        return
    width = {"15m": STEP, "1h": dt.timedelta(hours=1), "1d": dt.timedelta(days=1)}[resolution]
    expected = _expected(rows, width)
    got = {_iso(i["ts"]): i["import_kwh"] for i in items}
    assert got.keys() == expected.keys()
    for ts, total in expected.items():
        assert got[ts] == pytest.approx(total, abs=1e-9), ts
    assert sum(i["intervals"] for i in items) == N
    assert all(i["rejected"] == 0 and i["missing"] == 0 for i in items)


def test_latest_and_cache_follow_ingest(api: Api, loaded: dict[str, Any]) -> None:
    last = loaded["M-N1"][-1]
    latest = api.client.get("/v1/meters/M-N1/latest", headers=api.headers("ana")).json()
    assert latest["reading"]["import_kwh"] == last["import_kwh"]
    assert _iso(latest["reading"]["ts"]) == _iso(last["ts"])
    newer = {**last, "ts": "2025-03-05T00:00:00Z", "import_kwh": 0.321}
    assert _post(api, "/v1/readings", orjson.dumps([newer]), "application/json").status_code == 200
    again = api.client.get("/v1/meters/M-N1/latest", headers=api.headers("ana")).json()
    assert again["reading"]["import_kwh"] == 0.321
    assert api.client.get("/v1/meters/NOPE/latest", headers=api.headers("ana")).status_code == 404


def test_rejects_are_reported_by_index(api: Api, loaded: dict[str, Any]) -> None:
    # the meter's reading before the gap below, as test_latest_and_cache_follow_ingest
    # sends it (the same value, so whichever test runs first, both see the same store)
    anchor = {
        "meter_id": "M-N1",
        "ts": "2025-03-05T00:00:00Z",
        "interval_s": 900,
        "import_kwh": 0.321,
    }
    assert _post(api, "/v1/readings", orjson.dumps([anchor]), "application/json").status_code == 200
    body = [
        {"meter_id": "M-N1", "ts": "2025-03-06T00:00:00Z", "interval_s": 900, "import_kwh": 0.2},
        {"meter_id": "M-N1", "ts": "yesterday", "interval_s": 900, "import_kwh": 0.2},
        "not an object",
        {"meter_id": "M-N1", "ts": "2025-03-06T00:15:00Z", "interval_s": 900, "import_kwh": -1.0},
        {"meter_id": "M-N1", "ts": "2025-03-06T00:30:00Z", "interval_s": 7, "import_kwh": 0.1},
    ]
    response = _post(api, "/v1/readings", orjson.dumps(body), "application/json")
    assert response.status_code == 200
    result = response.json()
    by_index = {r["index"]: r["reason"] for r in result["rejects"]}
    assert by_index.keys() == {1, 2, 3, 4}
    assert "ts" in by_index[1]
    assert by_index[2] == "not a JSON object"
    assert "out of range" in by_index[3]
    assert "interval_s" in by_index[4]
    assert result["summary"]["read"] == 5
    assert result["summary"]["quarantined"] == 3
    statuses = result["summary"]["statuses"]
    assert statuses["valid"] == 1 and statuses["rejected"] == 1
    # VEE also filled the day-long gap since the meter's previous reading (03-05 00:00)
    assert result["summary"]["gaps"] == 95 == statuses.get("estimated", 0)
    # the quarantine endpoint finds them by the request's source, for fixing the sender
    found = api.client.get(
        "/v1/quarantine", params={"source": result["source"]}, headers=api.headers("ana")
    ).json()["items"]
    assert sorted(r["reason"] for r in found) == sorted([by_index[1], by_index[2], by_index[4]])
    # the rejected value is stored, flagged, and left out of the sums
    bucket = api.client.get(
        "/v1/meters/M-N1/readings",
        params={"from": "2025-03-06T00:00:00Z", "to": "2025-03-06T01:00:00Z", "resolution": "1h"},
        headers=api.headers("ana"),
    ).json()["items"]
    assert len(bucket) == 1
    assert bucket[0]["import_kwh"] == pytest.approx(0.2)
    assert bucket[0]["rejected"] == 1 and bucket[0]["status"] == "rejected"
    assert bucket[0]["quality"] & 4


def test_csv_line_numbers(api: Api) -> None:
    text = (
        "meter_id,ts,interval_s,import_kwh\n"
        "M-S1,2025-03-07T00:00:00Z,900,0.1\n"
        "M-S1,2025-03-07T00:15:00Z,900,abc\n"
    )
    result = _post(api, "/v1/readings", text.encode(), "text/csv").json()
    assert [(r["index"], r["line"]) for r in result["rejects"]] == [(1, 3)]


def test_idempotency_key(api: Api) -> None:
    body = orjson.dumps(
        [
            {"meter_id": "M-S1", "ts": "2025-03-08T00:00:00Z", "interval_s": 900, "import_kwh": 1},
            {"meter_id": "M-S1", "ts": "bad", "interval_s": 900, "import_kwh": 1},
        ]
    )

    def counts() -> tuple[Any, ...]:
        with api.conn() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM quarantine), (SELECT count(*) FROM audit_log "
                "WHERE action = 'ingest.readings'), (SELECT max(ingested_at) FROM readings)"
            ).fetchone()
        assert row is not None
        return tuple(row)

    first = _post(api, "/v1/readings", body, "application/json", **{"Idempotency-Key": "k-1"})
    assert first.status_code == 200
    before = counts()
    retry = _post(api, "/v1/readings", body, "application/json", **{"Idempotency-Key": "k-1"})
    assert retry.status_code == 200
    assert retry.headers["idempotency-replayed"] == "true"
    assert retry.json() == first.json()
    assert counts() == before  # nothing ran again: no new quarantine, audit or write
    other = _post(
        api, "/v1/readings", body + b" ", "application/json", **{"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 422
    without = _post(api, "/v1/readings", body, "application/json")
    assert without.json()["request_id"] != first.json()["request_id"]
    assert counts()[0] == before[0] + 1  # without a key it is processed again


def test_export_streams_the_stored_values(api: Api, loaded: dict[str, Any]) -> None:
    params = {
        "from": "2025-03-03T00:00:00Z",
        "to": "2025-03-05T00:00:00Z",
        "meter_id": ["M-N1", "M-S1"],
    }
    response = api.client.get("/v1/readings/export", params=params, headers=api.headers("ana"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = [
        (r["meter_id"], _iso(r["ts"]), r["import_kwh"]) for r in loaded["M-N1"] + loaded["M-S1"]
    ]
    assert [(r["meter_id"], _iso(r["ts"]), float(r["import_kwh"])) for r in rows] == expected
    parquet = api.client.get(
        "/v1/readings/export", params={**params, "format": "parquet"}, headers=api.headers("ana")
    )
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == len(expected)
    assert table.column("import_kwh").to_pylist() == [e[2] for e in expected]


def test_grid_and_weather(api: Api) -> None:
    grid = [
        {"node_id": "N1", "ts": f"2025-03-03T00:{m:02d}:00Z", "interval_s": 300, "load_mw": 10 + m}
        for m in range(0, 60, 5)
    ]
    response = _post(api, "/v1/grid", orjson.dumps(grid), "application/json")
    assert response.json()["summary"]["inserted"] == 12
    load = api.client.get(
        "/v1/grid/nodes/N1/load",
        params={"from": "2025-03-03", "to": "2025-03-04", "resolution": "1h"},
        headers=api.headers("ana"),
    ).json()["items"]
    assert len(load) == 1
    assert load[0]["load_mw"] == pytest.approx(sum(g["load_mw"] for g in grid) / 12)
    assert load[0]["max_load_mw"] == 65
    weather = (
        "station_id,ts,temperature_c\nS1,2025-03-03T00:00:00Z,4.5\nS1,2025-03-03T01:00:00Z,5.5\n"
    )
    assert _post(api, "/v1/weather", weather.encode(), "text/csv").status_code == 200
    obs = api.client.get(
        "/v1/weather/stations/S1/observations",
        params={"from": "2025-03-03", "to": "2025-03-04", "resolution": "1d"},
        headers=api.headers("ana"),
    ).json()["items"]
    assert [o["temperature_c"] for o in obs] == [5.0]


def test_reference_crud(api: Api) -> None:
    h = api.headers("admin")
    c = api.client
    created = c.post(
        "/v1/meters",
        json={"meter_id": "M-X1", "region": "north", "max_kw": 12.5, "install_date": "2024-05-01"},
        headers=h,
    )
    assert created.status_code == 201
    assert created.json()["max_kw"] == 12.5 and created.json()["status"] == "active"
    assert c.post("/v1/meters", json={"meter_id": "M-X1"}, headers=h).status_code == 409
    bad = c.post("/v1/meters", json={"meter_id": "M-X2", "latitude": 123}, headers=h)
    assert bad.status_code == 422
    bad_id = c.post("/v1/meters", json={"meter_id": "has space"}, headers=h)
    assert bad_id.status_code == 422
    bad_zone = c.post("/v1/meters", json={"meter_id": "M-X3", "timezone": "Mars/Base"}, headers=h)
    assert bad_zone.status_code == 422 and "unknown timezone" in bad_zone.json()["detail"]
    zoned = c.post("/v1/meters", json={"meter_id": "M-X4", "timezone": "Asia/Kathmandu"}, headers=h)
    assert zoned.status_code == 201
    patched = c.patch("/v1/meters/M-X1", json={"tariff": "tou"}, headers=h).json()
    assert patched["tariff"] == "tou" and patched["max_kw"] == 12.5  # untouched fields stay
    assert c.delete("/v1/meters/M-X1", headers=h).status_code == 204
    assert c.get("/v1/meters/M-X1", headers=h).json()["status"] == "removed"
    ids: list[str] = []
    cursor = None
    while True:
        page = c.get(
            "/v1/meters", params={"limit": 1, **({"cursor": cursor} if cursor else {})}, headers=h
        ).json()
        ids += [m["meter_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    with api.conn() as conn:
        stored = [r[0] for r in conn.execute("SELECT meter_id FROM meters ORDER BY meter_id")]
    assert ids == stored


def test_fleet_summary(api: Api, loaded: dict[str, Any]) -> None:
    summary = api.client.get(
        "/v1/fleet/summary",
        params={"from": "2025-03-03T00:00:00Z", "to": "2025-03-05T00:00:00Z"},
        headers=api.headers("ana"),
    ).json()
    by_region = {r["region"]: r for r in summary["regions"]}
    for region, meter in (("north", "M-N1"), ("south", "M-S1")):
        assert by_region[region]["readings"] == N
        assert by_region[region]["import_kwh"] == pytest.approx(
            sum(r["import_kwh"] for r in loaded[meter])
        )
