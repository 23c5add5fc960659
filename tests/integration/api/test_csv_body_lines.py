"""A CSV body's rejects name their real line and record index when blank lines stand
before them (expected values counted in the body's own text)."""

from __future__ import annotations

from support.api import Api, seed_reference

LINES = [
    "meter_id,ts,interval_s,import_kwh",
    "",
    "M-S1,2025-03-07T00:00:00Z,900,0.1",
    "",
    "",
    "M-S1,2025-03-07T00:15:00Z,900,abc",
    "",
    "M-S1,2025-03-07T00:30:00Z,900",
    "M-S1,2025-03-07T00:45:00Z,900,0.2",
    "",
    "M-S1,2025-03-07T01:00:00Z,900,-5",  # stored, then rejected by VEE (negative)
]


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    seed_reference(api, "admin")


def test_csv_body_rejects_name_real_lines_and_indices(api: Api) -> None:
    body = ("\n".join(LINES) + "\n").encode()
    response = api.client.post(
        "/v1/readings",
        content=body,
        headers={**api.headers("admin"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    records = [i for i, line in enumerate(LINES, 1) if line and i > 1]  # 1-based lines
    bad = {
        i
        for i, line in enumerate(LINES, 1)
        if "abc" in line or line.endswith(",900") or line.endswith(",-5")
    }
    assert sorted((r["line"], r["index"]) for r in response.json()["rejects"]) == sorted(
        (line, records.index(line)) for line in bad
    )
