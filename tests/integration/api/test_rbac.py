"""RBAC: every route x every role (a generated matrix), and region isolation.

The expected permission of each route and the permissions of each role are written
down here from the issue's role definitions, independently of ``metrify.api.rbac``;
the matrix then asks the running app and compares.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.routing import APIRoute

from metrify.api.deps import PERMISSION_ATTR
from support.api import ROLES, Api, seed_reference

# role -> what the issue says it may do
ROLE_CAN: dict[str, set[str]] = {
    "admin": {
        "ingest",
        "read:reference",
        "write:reference",
        "read:aggregates",
        "read:raw",
        "export",
        "read:quarantine",
        "edit:readings",
        "read:anomalies",
        "ack:anomalies",
        "admin:users",
        "read:audit",
        "self",
    },
    "operator": {
        "ingest",
        "read:reference",
        "write:reference",
        "read:aggregates",
        "read:raw",
        "read:quarantine",
        "edit:readings",
        "read:anomalies",
        "ack:anomalies",
        "self",
    },
    "analyst": {
        "read:reference",
        "read:aggregates",
        "read:raw",
        "export",
        "read:quarantine",
        "read:anomalies",
        "self",
    },
    "viewer": {"read:reference", "read:aggregates", "self"},
    "ingest": {"ingest", "self"},
}
DAY = {"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"}

# (method, path template) -> (permission, concrete path, query, json body)
ROUTES: dict[tuple[str, str], tuple[str, str, dict[str, Any], Any]] = {
    ("POST", "/v1/readings"): ("ingest", "/v1/readings", {}, []),
    ("POST", "/v1/grid"): ("ingest", "/v1/grid", {}, []),
    ("POST", "/v1/weather"): ("ingest", "/v1/weather", {}, []),
    ("GET", "/v1/meters"): ("read:reference", "/v1/meters", {}, None),
    ("POST", "/v1/meters"): ("write:reference", "/v1/meters", {}, {}),
    ("GET", "/v1/meters/{meter_id}"): ("read:reference", "/v1/meters/M-N1", {}, None),
    ("PATCH", "/v1/meters/{meter_id}"): ("write:reference", "/v1/meters/M-NONE", {}, {}),
    ("DELETE", "/v1/meters/{meter_id}"): ("write:reference", "/v1/meters/M-NONE", {}, None),
    ("GET", "/v1/grid/nodes"): ("read:reference", "/v1/grid/nodes", {}, None),
    ("POST", "/v1/grid/nodes"): ("write:reference", "/v1/grid/nodes", {}, {}),
    ("GET", "/v1/grid/nodes/{node_id}"): ("read:reference", "/v1/grid/nodes/N1", {}, None),
    ("PATCH", "/v1/grid/nodes/{node_id}"): ("write:reference", "/v1/grid/nodes/NX", {}, {}),
    ("DELETE", "/v1/grid/nodes/{node_id}"): ("write:reference", "/v1/grid/nodes/NX", {}, None),
    ("GET", "/v1/weather/stations"): ("read:reference", "/v1/weather/stations", {}, None),
    ("POST", "/v1/weather/stations"): ("write:reference", "/v1/weather/stations", {}, {}),
    ("GET", "/v1/weather/stations/{station_id}"): (
        "read:reference",
        "/v1/weather/stations/S1",
        {},
        None,
    ),
    ("PATCH", "/v1/weather/stations/{station_id}"): (
        "write:reference",
        "/v1/weather/stations/SX",
        {},
        {},
    ),
    ("DELETE", "/v1/weather/stations/{station_id}"): (
        "write:reference",
        "/v1/weather/stations/SX",
        {},
        None,
    ),
    ("GET", "/v1/meters/{meter_id}/readings"): (
        "read:aggregates",
        "/v1/meters/M-N1/readings",
        {**DAY, "resolution": "1h"},
        None,
    ),
    ("GET", "/v1/meters/{meter_id}/events"): (
        "read:raw",
        "/v1/meters/M-N1/events",
        DAY,
        None,
    ),
    ("GET", "/v1/energy"): (
        "read:aggregates",
        "/v1/energy",
        {"meter": "M-N1", "from": "2025-01-01", "to": "2025-01-02"},
        None,
    ),
    ("GET", "/v1/forecasts"): (
        "read:aggregates",
        "/v1/forecasts",
        {"meter": "M-N1", "from": "2025-01-01", "to": "2025-01-02"},
        None,
    ),
    ("GET", "/v1/forecasts/scores"): (
        "read:aggregates",
        "/v1/forecasts/scores",
        {"meter": "M-N1", "from": "2025-01-01", "to": "2025-01-02"},
        None,
    ),
    ("GET", "/v1/meters/{meter_id}/latest"): (
        "read:aggregates",
        "/v1/meters/M-N1/latest",
        {},
        None,
    ),
    ("GET", "/v1/meters/{meter_id}/quality"): (
        "read:aggregates",
        "/v1/meters/M-N1/quality",
        DAY,
        None,
    ),
    ("GET", "/v1/grid/nodes/{node_id}/load"): (
        "read:aggregates",
        "/v1/grid/nodes/N1/load",
        DAY,
        None,
    ),
    ("GET", "/v1/weather/stations/{station_id}/observations"): (
        "read:aggregates",
        "/v1/weather/stations/S1/observations",
        DAY,
        None,
    ),
    ("GET", "/v1/fleet/summary"): ("read:aggregates", "/v1/fleet/summary", DAY, None),
    **{
        ("GET", f"/v1/grid/nodes/{{node_id}}/{part}"): (
            "read:aggregates",
            f"/v1/grid/nodes/N1/{part}",
            {"from": "2025-01-01", "to": "2025-01-02"},
            None,
        )
        for part in ("loading", "peak-drivers", "losses", "compliance", "flex")
    },
    ("GET", "/v1/baselines/fits"): (
        "read:aggregates",
        "/v1/baselines/fits",
        {"meter": "M-N1"},
        None,
    ),
    ("GET", "/v1/baselines/fit"): ("read:aggregates", "/v1/baselines/fit", {"meter": "M-N1"}, None),
    ("GET", "/v1/baselines/weather-effect"): (
        "read:aggregates",
        "/v1/baselines/weather-effect",
        {"meter": "M-N1", "month": "2025-01"},
        None,
    ),
    ("GET", "/v1/baselines/savings"): (
        "read:aggregates",
        "/v1/baselines/savings",
        {"meter": "M-N1", "change": "2025-01-01"},
        None,
    ),
    ("GET", "/v1/patterns"): ("read:aggregates", "/v1/patterns", {"meter": "M-N1"}, None),
    ("GET", "/v1/patterns/clusters"): ("read:aggregates", "/v1/patterns/clusters", {}, None),
    ("GET", "/v1/patterns/compare"): (
        "read:aggregates",
        "/v1/patterns/compare",
        {"by": "tariff"},
        None,
    ),
    ("GET", "/v1/quarantine"): ("read:quarantine", "/v1/quarantine", {}, None),
    ("GET", "/v1/readings/export"): ("export", "/v1/readings/export", DAY, None),
    ("POST", "/v1/meters/{meter_id}/edits"): ("edit:readings", "/v1/meters/M-N1/edits", {}, {}),
    ("GET", "/v1/admin/users"): ("admin:users", "/v1/admin/users", {}, None),
    ("POST", "/v1/admin/users"): ("admin:users", "/v1/admin/users", {}, {}),
    ("PATCH", "/v1/admin/users/{username}"): ("admin:users", "/v1/admin/users/nobody", {}, {}),
    ("GET", "/v1/admin/keys"): ("admin:users", "/v1/admin/keys", {}, None),
    ("POST", "/v1/admin/keys"): ("admin:users", "/v1/admin/keys", {}, {}),
    ("DELETE", "/v1/admin/keys/{key_id}"): ("admin:users", "/v1/admin/keys/999999", {}, None),
    ("GET", "/v1/audit"): ("read:audit", "/v1/audit", {}, None),
    ("GET", "/v1/auth/me"): ("self", "/v1/auth/me", {}, None),
    ("GET", "/v1/anomalies"): ("read:anomalies", "/v1/anomalies", {}, None),
    **{
        ("POST", f"/v1/anomalies/{{anomaly_id}}/{action}"): (
            "ack:anomalies",
            f"/v1/anomalies/999999/{action}",
            {},
            {},
        )
        for action in ("acknowledge", "resolve", "false-positive", "reopen")
    },
}
#: open on purpose: sign-in, sign-out with a refresh token, and the probes
PUBLIC = {("POST", "/v1/auth/token"), ("POST", "/v1/auth/revoke")}
# variants whose permission depends on a parameter
VARIANTS = [
    (
        "read:aggregates+read:raw",
        "GET",
        "/v1/meters/M-N1/readings",
        {**DAY, "resolution": "raw"},
        None,
    ),
]


def seed_api(api: Api) -> None:
    for role in ROLES:
        api.add_user(role, role)
    api.add_user("north", "analyst", ["north"])
    api.add_user("north-op", "operator", ["north"])
    seed_reference(api, "admin")
    rows = [
        {
            "meter_id": m,
            "ts": f"2025-01-01T00:{15 * h:02d}:00Z",
            "interval_s": 900,
            "import_kwh": 0.25,
        }
        for m in ("M-N1", "M-S1")
        for h in range(4)
    ]
    response = api.client.post("/v1/readings", json=rows, headers=api.headers("admin"))
    assert response.status_code == 200, response.text


def _api_routes(api: Api) -> list[APIRoute]:
    """The app's API routes (FastAPI keeps included routers nested)."""
    out: list[APIRoute] = []
    pending = list(api.client.app.routes)  # type: ignore[attr-defined]
    while pending:
        route = pending.pop()
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            pending.extend(route.original_router.routes)
    return out


def _v1_routes(api: Api) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in _api_routes(api)
        if route.path.startswith("/v1")
        for method in route.methods
    }


def test_every_route_is_in_the_matrix(api: Api) -> None:
    """A new route must be added here, with the permission it should need."""
    found = _v1_routes(api)
    assert found - PUBLIC - set(ROUTES) == set()
    assert set(ROUTES) - found <= {
        ("GET", "/v1/anomalies"),
        ("POST", "/v1/anomalies/{anomaly_id}/acknowledge"),
    }


def test_each_route_declares_its_permission(api: Api) -> None:
    for route in _api_routes(api):
        if not route.path.startswith("/v1"):
            continue
        for method in route.methods:
            if (method, route.path) in PUBLIC:
                continue
            declared = [
                getattr(d.call, PERMISSION_ATTR).value
                for d in route.dependant.dependencies
                if hasattr(d.call, PERMISSION_ATTR)
            ]
            assert declared == [ROUTES[(method, route.path)][0]], (method, route.path)


def _cases() -> list[tuple[str, str, str, dict[str, Any], Any, str]]:
    cases = [
        (perm, method, path, query, body, role)
        for (method, _), (perm, path, query, body) in ROUTES.items()
        for role in ROLES
    ]
    cases += [(*variant, role) for variant in VARIANTS for role in ROLES]
    return cases


@pytest.mark.parametrize(
    ("perm", "method", "path", "query", "body", "role"),
    _cases(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_matrix(
    api: Api, perm: str, method: str, path: str, query: dict[str, Any], body: Any, role: str
) -> None:
    if "anomal" in path and not any("anomal" in p for _, p in _v1_routes(api)):
        pytest.skip("anomaly routes not present")
    response = api.client.request(method, path, params=query, json=body, headers=api.headers(role))
    needed = perm.split("+")
    missing = [p for p in needed if p not in ROLE_CAN[role]]
    if not missing:
        assert response.status_code not in (401, 403), (role, method, path, response.text)
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == 403, (role, method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert missing[0] in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_anonymous_is_refused(api: Api, method: str, path: str) -> None:
    _, concrete, query, body = ROUTES[(method, path)]
    if (method, path) not in _v1_routes(api):
        pytest.skip("route not present")
    response = api.client.request(method, concrete, params=query, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_region_scope_lists_and_reads(api: Api) -> None:
    h = api.headers("north")
    listed = api.client.get("/v1/meters", headers=h).json()["items"]
    assert [m["meter_id"] for m in listed] == ["M-N1"]
    for path, query in (
        ("/v1/meters/M-S1", {}),
        ("/v1/meters/M-S1/latest", {}),
        ("/v1/meters/M-S1/readings", {**DAY, "resolution": "raw"}),
        ("/v1/meters/M-S1/quality", DAY),
    ):
        response = api.client.get(path, params=query, headers=h)
        assert response.status_code == 404, (path, response.text)
    # ... while its own region answers, and an unscoped analyst sees both
    assert api.client.get("/v1/meters/M-N1/latest", headers=h).json()["reading"] is not None
    everyone = api.client.get("/v1/meters", headers=api.headers("analyst")).json()["items"]
    assert {m["meter_id"] for m in everyone} == {"M-N1", "M-S1"}
    regions = api.client.get("/v1/fleet/summary", params=DAY, headers=h).json()["regions"]
    assert [r["region"] for r in regions] == ["north"]
    assert regions[0]["readings"] == 4
    assert api.client.get("/v1/quarantine", headers=h).status_code == 403


def test_region_scope_export(api: Api) -> None:
    csv_text = api.client.get("/v1/readings/export", params=DAY, headers=api.headers("north")).text
    meters = {line.split(",")[0] for line in csv_text.splitlines()[1:]}
    assert meters == {"M-N1"}
    parquet = api.client.get(
        "/v1/readings/export", params={**DAY, "format": "parquet"}, headers=api.headers("north")
    ).content
    assert set(pq.read_table(io.BytesIO(parquet)).column("meter_id").to_pylist()) == {"M-N1"}


def test_region_scope_writes(api: Api) -> None:
    h = api.headers("north-op")
    assert api.client.patch("/v1/meters/M-S1", json={"tariff": "x"}, headers=h).status_code == 404
    denied = api.client.post("/v1/meters", json={"meter_id": "M-S9", "region": "south"}, headers=h)
    assert denied.status_code == 403
    moved = api.client.patch("/v1/meters/M-N1", json={"region": "south"}, headers=h)
    assert moved.status_code == 403
    assert api.client.post("/v1/grid/nodes", json={"node_id": "N9"}, headers=h).status_code == 403
    row = {"meter_id": "M-S1", "ts": "2025-01-02T00:00:00Z", "interval_s": 900, "import_kwh": 1.0}
    assert api.client.post("/v1/readings", json=[row], headers=h).status_code == 403
    own = {**row, "meter_id": "M-N1"}
    assert api.client.post("/v1/readings", json=[own], headers=h).status_code == 200
    with api.conn() as conn:
        stored = conn.execute(
            "SELECT meter_id FROM readings WHERE ts = '2025-01-02T00:00:00Z'"
        ).fetchall()
    assert stored == [("M-N1",)]


def test_scoped_ingest_key(api: Api) -> None:
    key = api.add_key("north-head-end", "ingest", ["north"])["key"]
    row = {"meter_id": "M-S1", "ts": "2025-01-03T00:00:00Z", "interval_s": 900, "import_kwh": 1.0}
    response = api.client.post("/v1/readings", json=[row], headers={"X-API-Key": key})
    assert response.status_code == 403
    assert "M-S1" in response.json()["detail"]
    # an ingest key reads nothing
    assert api.client.get("/v1/meters", headers={"X-API-Key": key}).status_code == 403


def test_scoped_first_post_registers_in_its_region(api: Api) -> None:
    """A one-region key's first readings of a new meter register it in that region, so
    its own next request for the meter is accepted and its region's readers see it."""
    key = api.add_key("north-new", "ingest", ["north"])["key"]
    rows = [
        {"meter_id": "M-NEW", "ts": f"2025-01-04T0{h}:00:00Z", "interval_s": 900, "import_kwh": 1.0}
        for h in range(2)
    ]
    for row in rows:  # two requests: the second must not be refused as outside the region
        response = api.client.post("/v1/readings", json=[row], headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
    with api.conn() as conn:
        meter = conn.execute("SELECT region FROM meters WHERE meter_id = 'M-NEW'").fetchone()
        stored = conn.execute(
            "SELECT count(*) FROM readings WHERE meter_id = 'M-NEW' AND quality & 1 = 0"
        ).fetchone()
    assert meter == ("north",)
    assert stored == (2,)
    assert api.client.get("/v1/meters/M-NEW", headers=api.headers("north")).status_code == 200


def test_several_regions_must_register_new_meters_first(api: Api) -> None:
    key = api.add_key("two-regions", "ingest", ["north", "south"])["key"]
    row = {"meter_id": "M-AMB", "ts": "2025-01-04T00:00:00Z", "interval_s": 900, "import_kwh": 1.0}
    response = api.client.post("/v1/readings", json=[row], headers={"X-API-Key": key})
    assert response.status_code == 422
    assert "M-AMB" in response.json()["detail"]
    with api.conn() as conn:
        assert conn.execute("SELECT count(*) FROM meters WHERE meter_id = 'M-AMB'").fetchone() == (
            0,
        )


def test_create_answers_other_regions_id_like_ingest(api: Api) -> None:
    """Creating another region's meter id is refused as outside the caller's regions
    (403, as the ingest door does), not with a 409 that a GET's 404 contradicts."""
    h = api.headers("north-op")
    taken = api.client.post("/v1/meters", json={"meter_id": "M-S1", "region": "north"}, headers=h)
    assert taken.status_code == 403, taken.text
    assert "M-S1" in taken.json()["detail"]
    own = api.client.post("/v1/meters", json={"meter_id": "M-N1", "region": "north"}, headers=h)
    assert own.status_code == 409


def test_region_scope_energy(api: Api) -> None:
    """A scoped reader gets its meters and regions, 404 for another region's, and 403
    for totals that add up every region's meters."""
    h = api.headers("north")
    day = {"from": "2025-01-01", "to": "2025-01-02", "tz": "UTC"}
    own = api.client.get("/v1/energy", params={**day, "meter": "M-N1"}, headers=h)
    assert own.status_code == 200, own.text
    assert sum(b["present"] for b in own.json()["buckets"]) == 4
    assert (
        api.client.get("/v1/energy", params={**day, "meter": "M-S1"}, headers=h).status_code == 404
    )
    assert (
        api.client.get("/v1/energy", params={**day, "region": "south"}, headers=h).status_code
        == 404
    )
    assert (
        api.client.get("/v1/energy", params={**day, "region": "north"}, headers=h).status_code
        == 200
    )
    both = api.client.get("/v1/energy", params={**day, "meter": "M-N1", "node": "N1"}, headers=h)
    assert both.status_code == 400 and "exactly one" in both.json()["detail"]
    for group in ({"fleet": "true"}, {"node": "N1"}, {"segment": "std"}):
        response = api.client.get("/v1/energy", params={**day, **group}, headers=h)
        assert response.status_code == 403, group


def test_anomalies_scope_and_acknowledge(api: Api) -> None:
    with api.conn() as conn:
        ids = {}
        for subject_type, subject in (("meter", "M-N1"), ("meter", "M-S1"), ("node", "N1")):
            row = conn.execute(
                "INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score,"
                " severity, detector, detector_version) VALUES ('sustained_drop', %s, %s,"
                " '2025-01-01', '2025-01-02', 5.0, 'high', 'test', '1') RETURNING id",
                (subject_type, subject),
            ).fetchone()
            assert row is not None
            ids[subject] = row[0]
    everyone = api.client.get("/v1/anomalies", headers=api.headers("analyst")).json()["items"]
    assert {a["subject_id"] for a in everyone} == {"M-N1", "M-S1", "N1"}
    north = api.client.get("/v1/anomalies", headers=api.headers("north")).json()["items"]
    assert [a["subject_id"] for a in north] == ["M-N1"]
    # a scoped operator cannot acknowledge another region's incident (it does not exist)
    hidden = api.client.post(
        f"/v1/anomalies/{ids['M-S1']}/acknowledge", headers=api.headers("north-op")
    )
    assert hidden.status_code == 404
    acked = api.client.post(
        f"/v1/anomalies/{ids['M-N1']}/acknowledge",
        json={"note": "crew sent"},
        headers=api.headers("north-op"),
    )
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["status"], body["changed_by"], body["note"]) == (
        "acknowledged",
        "north-op",
        "crew sent",
    )
    again = api.client.post(
        f"/v1/anomalies/{ids['M-N1']}/acknowledge", headers=api.headers("north-op")
    )
    assert again.status_code == 409
    open_only = api.client.get(
        "/v1/anomalies", params={"status": "open"}, headers=api.headers("analyst")
    ).json()["items"]
    assert {a["subject_id"] for a in open_only} == {"M-S1", "N1"}
    with api.conn() as conn:
        logged = conn.execute(
            "SELECT actor, target FROM audit_log WHERE action = 'anomalies.acknowledge'"
        ).fetchall()
    assert logged == [("north-op", str(ids["M-N1"]))]
