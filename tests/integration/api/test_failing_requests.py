"""What a failing request shows: a crash's 500 has the headers and request id of any
other answer, a client's request id is kept only when it is plain, and refusals
(401/403/429) are counted in ``/metrics``."""

from __future__ import annotations

import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrify.api import hot
from support.api import Api

API_CONFIG = {"rate_limit_per_s": 0.5, "rate_limit_burst": 3}
PROBLEM = "application/problem+json"
GENERATED = re.compile(r"[0-9a-f]{32}")
CRASH = "/v1/test-only/crash"
SECRET = "db password is hunter2"


def seed_api(api: Api) -> None:
    api.add_user("viewer", "viewer")
    api.add_user("busy", "viewer")

    async def crash() -> None:
        raise RuntimeError(SECRET)

    api.client.app.add_api_route(CRASH, crash)  # type: ignore[attr-defined]


def assert_guarded(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


def test_a_crash_answers_problem_json_with_headers_and_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = api.client.get(CRASH)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert_guarded(response)
    rid = response.headers["x-request-id"]
    assert GENERATED.fullmatch(rid)
    body = response.json()
    assert body["status"] == 500 and body["title"] == "Internal Server Error"
    assert body["instance"] == CRASH
    assert "Traceback" not in response.text and SECRET not in response.text
    assert "RuntimeError" not in response.text
    # the log names the request by the id the client was given, with the error
    logged = [r for r in caplog.records if rid in r.getMessage()]
    assert logged and logged[0].exc_info is not None

    given = api.client.get(CRASH, headers={"X-Request-ID": "trace-42"})
    assert given.status_code == 500
    assert given.headers["x-request-id"] == "trace-42"
    assert_guarded(given)


def test_a_crash_on_the_hot_path_is_answered_the_same(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(hot, "latest_answer", broken)
    response = api.client.get("/v1/meters/M1/latest", headers=api.headers("viewer"))
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert_guarded(response)
    assert GENERATED.fullmatch(response.headers["x-request-id"])
    assert SECRET not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("safe", ["abc-123", "a.b:c_d-9", "x", "z" * 64])
def test_a_plain_request_id_is_kept(api: Api, safe: str) -> None:
    assert api.client.get("/health", headers={"X-Request-ID": safe}).headers["x-request-id"] == safe


@pytest.mark.parametrize(
    "unsafe",
    [
        "abc\n",  # a trailing newline: header and log-line injection
        "abc\nSet-Cookie: x=1",
        "z" * 65,
        "<script>alert(1)</script>",
        "a b",
        "",
        b"id\xff\xfe",
    ],
)
def test_an_unsafe_request_id_is_replaced(api: Api, unsafe: str | bytes) -> None:
    response = api.client.get("/health", headers={"X-Request-ID": unsafe})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["x-request-id"])


def denied(api: Api) -> dict[str, float]:
    text = api.client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "metrify_api_denied":
            return {
                s.labels["status"]: s.value for s in family.samples if s.name.endswith("_total")
            }
    return {}


def test_refusals_are_counted_by_status(api: Api) -> None:
    before = denied(api)
    assert set(before) >= {"401", "403", "429"}  # the series exist before any refusal
    seen = {"401": 0, "403": 0, "429": 0}

    def note(status: int) -> None:
        if str(status) in seen:
            seen[str(status)] += 1

    note(api.client.get("/v1/meters").status_code)  # no credential
    note(api.client.get("/v1/meters/M1/latest").status_code)  # the hot path
    note(api.client.get("/v1/auth/me", headers={"Authorization": "Bearer nope"}).status_code)
    note(api.client.get("/v1/admin/users", headers=api.headers("viewer")).status_code)
    for _ in range(10):  # burst 3 at 0.5/s: a refusal comes within a few requests
        status = api.client.get("/v1/auth/me", headers=api.headers("busy")).status_code
        note(status)
        if status == 429:
            break
    assert seen == {"401": 3, "403": 1, "429": 1}

    after = denied(api)
    for status, count in seen.items():
        assert after[status] - before[status] == count, status
