"""A small body of many bad elements cannot flood the quarantine: a request keeps at most
``max_rejects`` bad rows, and its answer says how many more were not kept."""

from __future__ import annotations

from typing import Any

import orjson

from support.api import Api

CAP = 4
API_CONFIG = {"settings": {"max_rejects": CAP}}


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")


def _post(api: Api, body: bytes, media: str) -> Any:
    response = api.client.post(
        "/v1/readings",
        content=body,
        headers={**api.headers("admin"), "Content-Type": media},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _kept(api: Api, source: str) -> list[tuple[int | None, str]]:
    with api.conn() as conn:
        rows = conn.execute(
            "SELECT line, reason FROM quarantine WHERE source = %s ORDER BY line", (source,)
        ).fetchall()
    return [(line, reason) for line, reason in rows]


def test_a_json_body_keeps_at_most_the_cap(api: Api) -> None:
    good = {"meter_id": "M-C1", "ts": "2025-02-01T00:00:00Z", "interval_s": 900, "import_kwh": 1}
    unreadable = [{**good, "ts": f"not a time {i}"} for i in range(3)]
    body = [good, *unreadable, *([7] * (CAP + 4))]  # 3 + CAP + 4 bad elements
    result = _post(api, orjson.dumps(body), "application/json")
    summary = result["summary"]
    bad = 3 + CAP + 4
    assert summary["read"] == 1 + bad
    assert (summary["accepted"], summary["rejected"], summary["quarantined"]) == (1, bad, CAP)
    assert sum(summary["reasons"].values()) == bad
    assert any(f"{bad - CAP} more bad rows not kept" in w for w in summary["warnings"])
    assert len(result["rejects"]) == CAP
    assert result["rejects_truncated"] is True  # the list is not every reject
    kept = _kept(api, result["source"])
    assert len(kept) == CAP
    # the first bad elements in body order: the three unreadable times, then one non-object
    assert [line for line, _ in kept] == [1, 2, 3, 4]


def test_a_csv_body_keeps_at_most_the_cap(api: Api) -> None:
    lines = ["meter_id,ts,interval_s,import_kwh", "M-C2,2025-02-01T00:00:00Z,900,1"]
    lines += [f"M-C2,bad {i},900,1" for i in range(CAP + 6)]
    result = _post(api, "\n".join(lines).encode(), "text/csv")
    summary = result["summary"]
    assert (summary["read"], summary["rejected"], summary["quarantined"]) == (CAP + 7, CAP + 6, CAP)
    assert any("6 more bad rows not kept" in w for w in summary["warnings"])
    assert len(_kept(api, result["source"])) == CAP


def test_a_body_under_the_cap_is_kept_whole_without_a_warning(api: Api) -> None:
    body = [{"meter_id": "M-C3", "ts": "x", "interval_s": 900, "import_kwh": 1}] * CAP
    result = _post(api, orjson.dumps(body), "application/json")
    assert result["summary"]["quarantined"] == CAP
    assert result["summary"]["warnings"] == []
    assert result["rejects_truncated"] is False
    assert len(_kept(api, result["source"])) == CAP
