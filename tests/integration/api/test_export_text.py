"""``GET /v1/readings/export`` as CSV: cells a spreadsheet would run as formulas are
neutralised, numbers are written without binary noise, times as ISO 8601 UTC.

The noisy value is the one a Wh file scaled to kWh stores: 1520.4 x 0.001 is the double
1.5204000000000002, which is 1.5204 to the 15 significant digits a double holds exactly.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from support.api import Api

NOISY = 1520.4 * 0.001  # 1.5204000000000002
#: sources as a file name can make them: every start OWASP lists
FORMULA_SOURCES = ["=1+2", "+33", "-x.csv", "@SUM(A1)", "\tTAB", "\rCR"]
#: the one formula start a valid meter id can have: "-2-3" is =-2-3 to a spreadsheet
FORMULA_ID = "-2-3"


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    api.tokens["feeder"] = api.add_key("head-end", "ingest")["key"]


def _ingest(api: Api, rows: list[dict[str, Any]]) -> None:
    response = api.client.post(
        "/v1/readings",
        content=orjson.dumps(rows),
        headers={
            "Authorization": f"Bearer {api.tokens['feeder']}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["summary"]["inserted"] == len(rows), response.text


def test_csv_export_neutralises_formulas_and_float_noise(api: Api) -> None:
    assert repr(NOISY) == "1.5204000000000002"
    meters = [f"M.{i}" for i in range(len(FORMULA_SOURCES))]
    rows = [
        {"meter_id": m, "ts": "2025-03-03T00:30:00Z", "interval_s": 1800, "import_kwh": NOISY}
        for m in [*meters, FORMULA_ID]
    ]
    rows[-1]["import_kwh"] = 0.25
    _ingest(api, rows)
    with api.conn() as conn:
        for meter, source in zip(meters, FORMULA_SOURCES, strict=True):
            conn.execute("UPDATE readings SET source = %s WHERE meter_id = %s", (source, meter))
        conn.execute("UPDATE readings SET export_kwh = -0.5 WHERE meter_id = %s", (FORMULA_ID,))
    response = api.client.get(
        "/v1/readings/export",
        params={"from": "2025-03-03T00:00:00Z", "to": "2025-03-04T00:00:00Z"},
        headers=api.headers("admin"),
    )
    assert response.status_code == 200, response.text
    assert "1.5204000000000002" not in response.text
    got = {r["meter_id"]: r for r in csv.DictReader(io.StringIO(response.text, newline=""))}
    assert set(got) == {*meters, "'" + FORMULA_ID}
    for meter, source in zip(meters, FORMULA_SOURCES, strict=True):
        assert got[meter]["source"] == "'" + source
        assert got[meter]["import_kwh"] == "1.5204"
        assert got[meter]["ts"] == "2025-03-03T00:30:00+00:00"
    plain = got["'" + FORMULA_ID]
    assert plain["export_kwh"] == "-0.5"  # a number stays a number, sign and all
    assert plain["import_kwh"] == "0.25" and plain["interval_s"] == "1800"
    assert plain["source"].startswith("api:")
