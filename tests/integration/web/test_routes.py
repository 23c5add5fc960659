"""The dashboard's routes without a browser: sign-in, access control, region scope,
CSRF, triage through forms, and the API's new anomaly transitions."""

from __future__ import annotations

import re

import pytest

from support.api import PASSWORD, Api, seed_reference

READINGS = [
    {"meter_id": m, "ts": f"2025-01-01T0{h}:00:00Z", "interval_s": 900, "import_kwh": 0.5}
    for m in ("M-N1", "M-S1")
    for h in range(4)
]


def seed_api(api: Api) -> None:
    for name, role, regions in (
        ("admin", "admin", None),
        ("op", "operator", None),
        ("viewer", "viewer", None),
        ("north", "analyst", ["north"]),
    ):
        api.add_user(name, role, regions)
    seed_reference(api, "admin")
    response = api.client.post("/v1/readings", json=READINGS, headers=api.headers("admin"))
    assert response.status_code == 200, response.text
    with api.conn() as conn:
        for meter, severity in (("M-N1", "high"), ("M-S1", "critical"), ("M-S1", "low")):
            conn.execute(
                "INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score,"
                " severity, detector, detector_version, evidence, intervals) VALUES"
                " ('unusual_consumption', 'meter', %s, '2025-01-01T01:00Z', '2025-01-01T02:00Z',"
                " 5.0, %s, 'test', '1', '{\"expected_kwh\": 0.2}', 4)",
                (meter, severity),
            )


def sign_in(api: Api, name: str) -> None:
    """Sign in through the form, as a browser does (the client keeps the cookies)."""
    api.client.cookies.clear()
    page = api.client.get("/")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    response = api.client.post(
        "/sign-in",
        data={"username": name, "password": PASSWORD, "nonce": nonce.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"


def csrf(api: Api, path: str = "/anomalies") -> str:
    found = re.search(r'name="metrify-csrf" content="([^"]+)"', api.client.get(path).text)
    assert found is not None
    return found.group(1)


def anomaly_ids(api: Api) -> dict[tuple[str, str], int]:
    with api.conn() as conn:
        rows = conn.execute("SELECT subject_id, severity, id FROM anomalies").fetchall()
    return {(m, s): int(i) for m, s, i in rows}


def test_a_visitor_without_a_session_is_sent_to_sign_in(api: Api) -> None:
    api.client.cookies.clear()
    home = api.client.get("/")
    assert home.status_code == 200
    assert 'action="/sign-in"' in home.text and "Fleet overview" not in home.text
    for path in ("/meters", "/meters/M-N1", "/anomalies", "/anomalies/1", "/grid", "/live"):
        response = api.client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/?next=")
    assert api.client.get("/ui/live").status_code == 401
    # a page's script reaches the API only with the session's token
    assert api.client.get("/v1/anomalies").status_code == 401


def test_sign_in_refuses_wrong_password_and_a_forged_form(api: Api) -> None:
    api.client.cookies.clear()
    page = api.client.get("/")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    wrong = api.client.post(
        "/sign-in", data={"username": "admin", "password": "nope", "nonce": nonce.group(1)}
    )
    assert wrong.status_code == 401
    assert "Invalid user name or password" in wrong.text
    forged = api.client.post(
        "/sign-in", data={"username": "admin", "password": PASSWORD, "nonce": "guessed"}
    )
    assert forged.status_code == 403
    assert "metrify_refresh" not in forged.cookies


def test_pages_answer_with_their_content_and_security_headers(api: Api) -> None:
    sign_in(api, "admin")
    home = api.client.get("/")
    assert home.status_code == 200
    assert "Fleet overview" in home.text
    assert home.headers["content-security-policy"].startswith("default-src 'self'")
    # the newest half hour holds one 0.5 kWh reading of each meter: 1 kWh, 2 kW mean
    assert re.search(r'id="demand-now">2\.0 kW<', home.text)
    # open anomalies by severity: one high (M-N1), one critical and one low (M-S1)
    table = home.text[home.text.index('id="anomaly-counts"') :]
    for severity in ("critical", "high", "low"):
        row = re.search(rf'sev-{severity}">{severity}</span></td>\s*<td><a [^>]+>(\d+)</a>', table)
        assert row is not None and row.group(1) == "1", severity
    for path, marker in (
        ("/meters", "M-S1"),
        ("/meters/M-N1", 'id="meter-chart"'),
        ("/anomalies", "unusual_consumption"),
        ("/grid", "capacity 5.0 MW"),
        ("/live", 'id="live-readings"'),
    ):
        response = api.client.get(path)
        assert response.status_code == 200, path
        assert marker in response.text, path
    live = api.client.get("/ui/live").json()
    assert live["newest_ts"].startswith("2025-01-01T03:00:00")
    assert {r["meter_id"] for r in live["readings"]} == {"M-N1", "M-S1"}
    asset = api.client.get("/static/vendor/uPlot.iife.min.js")
    assert asset.status_code == 200 and "uPlot" in asset.text


def test_a_region_scoped_user_sees_only_their_region(api: Api) -> None:
    sign_in(api, "north")
    listed = api.client.get("/meters").text
    assert "M-N1" in listed and "M-S1" not in listed
    assert api.client.get("/meters/M-S1").status_code == 404
    assert api.client.get("/meters/M-N1").status_code == 200
    anomalies = api.client.get("/anomalies?status=").text
    assert "M-N1" in anomalies and "M-S1" not in anomalies
    ids = anomaly_ids(api)
    assert api.client.get(f"/anomalies/{ids[('M-S1', 'critical')]}").status_code == 404
    live = api.client.get("/ui/live").json()
    assert {r["meter_id"] for r in live["readings"]} == {"M-N1"}
    home = api.client.get("/").text
    assert re.search(r'id="demand-now">1\.0 kW<', home)  # north's meter alone
    counts = home[home.index('id="anomaly-counts"') :]
    assert re.search(r'sev-critical">critical</span></td>\s*<td><a [^>]+>0</a>', counts)
    assert re.search(r'sev-high">high</span></td>\s*<td><a [^>]+>1</a>', counts)


def test_a_viewer_cannot_open_triage(api: Api) -> None:
    sign_in(api, "viewer")
    response = api.client.get("/anomalies")
    assert response.status_code == 403
    assert "read:anomalies" in response.text
    home = api.client.get("/").text
    assert "Anomalies being worked on" not in home
    assert 'href="/anomalies"' not in home and 'href="/grid"' in home  # no link to it
    # raw readings need read:raw: the meter page falls back to 15-minute buckets
    page = api.client.get("/meters/M-N1?resolution=raw").text
    assert '"resolution":"15m"' in page and "<option>raw</option>" not in page


def test_triage_form_needs_the_csrf_token_and_records_the_change(api: Api) -> None:
    sign_in(api, "op")
    target = anomaly_ids(api)[("M-S1", "low")]
    forged = api.client.post(
        f"/anomalies/{target}/status", data={"action": "acknowledge", "csrf": "x"}
    )
    assert forged.status_code == 403
    token = csrf(api)
    done = api.client.post(
        f"/anomalies/{target}/status",
        data={"action": "acknowledge", "csrf": token, "note": "on it"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    resolved = api.client.post(
        f"/anomalies/{target}/status",
        data={"action": "resolve", "csrf": token},
        follow_redirects=False,
    )
    assert resolved.status_code == 303
    with api.conn() as conn:
        status, by, note = conn.execute(
            "SELECT status, changed_by, note FROM anomalies WHERE id = %s", (target,)
        ).fetchone()
        actions = conn.execute(
            "SELECT action FROM audit_log WHERE target = %s ORDER BY at, id", (str(target),)
        ).fetchall()
    assert (status, by, note) == ("resolved", "op", "on it")
    assert [a for (a,) in actions] == ["anomalies.acknowledge", "anomalies.resolve"]
    again = api.client.post(
        f"/anomalies/{target}/status", data={"action": "resolve", "csrf": token}
    )
    assert again.status_code == 409


def test_sign_out_ends_the_session(api: Api) -> None:
    sign_in(api, "admin")
    token = csrf(api, "/")
    cookies = dict(api.client.cookies)
    out = api.client.post("/sign-out", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    api.client.cookies.clear()
    for name, value in cookies.items():  # the old cookies, replayed, no longer work
        api.client.cookies.set(name, value)
    assert api.client.get("/live", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("before", "route", "status", "audited"),
    [
        ("open", "resolve", "resolved", "anomalies.resolve"),
        ("acknowledged", "false-positive", "false_positive", "anomalies.false_positive"),
        ("resolved", "reopen", "open", "anomalies.reopen"),
    ],
)
def test_api_triage_routes(api: Api, before: str, route: str, status: str, audited: str) -> None:
    target = anomaly_ids(api)[("M-N1", "high")]
    h = api.headers("op")
    with api.conn() as conn:
        conn.execute("UPDATE anomalies SET status = %s WHERE id = %s", (before, target))
    response = api.client.post(f"/v1/anomalies/{target}/{route}", json={"note": "n"}, headers=h)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status
    assert response.json()["changed_by"] == "op"
    again = api.client.post(f"/v1/anomalies/{target}/{route}", headers=h)
    assert again.status_code == 409
    assert status in again.json()["detail"]  # "already resolved", "is open, not ..."
    denied = api.client.post(f"/v1/anomalies/{target}/{route}", headers=api.headers("north"))
    assert denied.status_code == 403
    with api.conn() as conn:
        (action,) = conn.execute(
            "SELECT action FROM audit_log WHERE target = %s ORDER BY id DESC LIMIT 1",
            (str(target),),
        ).fetchone()
    assert action == audited


def test_an_expired_access_token_is_renewed_with_the_refresh_token(api: Api) -> None:
    sign_in(api, "admin")
    refresh_before = api.client.cookies.get("metrify_refresh")
    api.client.cookies.set("metrify_access", "expired.or.forged")
    page = api.client.get("/live", follow_redirects=False)
    assert page.status_code == 200
    # renewed as the refresh grant does: a new access token and a rotated refresh token
    assert page.cookies.get("metrify_access") not in (None, "expired.or.forged")
    assert page.cookies.get("metrify_refresh") not in (None, refresh_before)


def test_the_page_script_gets_a_fresh_token_only_with_the_csrf_header(api: Api) -> None:
    sign_in(api, "north")
    assert api.client.post("/session/refresh").status_code == 403
    answer = api.client.post("/session/refresh", headers={"X-CSRF-Token": csrf(api, "/live")})
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    me = api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "north" and me.json()["regions"] == ["north"]


def test_requests_racing_with_one_expired_token_all_stay_signed_in(api: Api) -> None:
    """A page and a poll sent together with an expired access token carry the same
    refresh token: the second must not count as a stolen, re-used one."""
    sign_in(api, "admin")
    refresh = api.client.cookies.get("metrify_refresh")
    assert refresh is not None
    answers = []
    for _ in range(2):  # both with the old tokens, as requests already on their way
        api.client.cookies.clear()
        api.client.cookies.set("metrify_refresh", refresh)
        api.client.cookies.set("metrify_access", "expired")
        answers.append(api.client.get("/live", follow_redirects=False))
    assert [a.status_code for a in answers] == [200, 200]
    # the renewed session goes on working (its family was not revoked)
    api.client.cookies.clear()
    api.client.cookies.set("metrify_access", answers[1].cookies["metrify_access"])
    api.client.cookies.set("metrify_refresh", answers[1].cookies["metrify_refresh"])
    assert api.client.get("/ui/live").status_code == 200
