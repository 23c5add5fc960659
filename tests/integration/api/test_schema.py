"""schemathesis against the published OpenAPI document: for generated requests to every
operation, no 5xx, and every answer matches the status codes, content types and schemas
the document promises. Requests carry an admin's token so they get past authentication;
they go through the same running app (middleware, pools, the pipeline) as the others.

Every operation is fuzzed with every request content type it documents (an ingest as
JSON, JSON Lines and CSV), with valid inputs and with invalid ones (schemathesis'
negative mode: an invalid input must meet a documented 4xx, never a 500 or a code the
operation does not list). The budget is bounded: a few examples per case and a
per-example deadline, so the whole module runs in well under a minute and a request
that hangs fails it rather than stalling CI.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.openapi.checks import UndefinedStatusCode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from metrify.api import create_app
from metrify.settings import Settings
from metrify.settings.api import ApiConfig
from support.api import SECRET, Api, seed_reference

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The document is built without a database (the app connects only when it starts).
_DOC = create_app(
    Settings(database_url="postgresql://unused@localhost/none", api=ApiConfig(jwt_secret=SECRET))
).openapi()
SCHEMA = schemathesis.openapi.from_dict(_DOC)
OPERATIONS = {
    f"{op.method.upper()} {op.path}": op
    for op in (result.ok() for result in SCHEMA.get_all_operations())
}
#: every operation of the document with each request content type it documents (None:
#: no body), read from the document itself rather than from schemathesis
DOCUMENTED = sorted(
    (f"{method.upper()} {path}", media)
    for path, methods in _DOC["paths"].items()
    for method, op in methods.items()
    for media in (list(op.get("requestBody", {}).get("content", {})) or [None])
)
#: the operations that take no input at all: nothing of theirs can be made invalid
NO_INPUT = {
    f"{method.upper()} {path}"
    for path, methods in _DOC["paths"].items()
    for method, op in methods.items()
    if not op.get("parameters") and "requestBody" not in op
}
#: examples per case, by mode: valid inputs explore more, invalid ones mostly meet 422
EXAMPLES = {GenerationMode.POSITIVE: 5, GenerationMode.NEGATIVE: 3}
CASES = [
    (operation, media, mode)
    for operation, media in DOCUMENTED
    for mode in EXAMPLES
    if mode is GenerationMode.POSITIVE or operation not in NO_INPUT
]
#: one request taking this long is a hang, not a slow answer
DEADLINE = dt.timedelta(seconds=10)


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    seed_reference(api, "admin")
    rows = [
        {
            "meter_id": "M-N1",
            "ts": f"2025-01-01T00:{m:02d}:00Z",
            "interval_s": 900,
            "import_kwh": 0.1 * (m + 1),
        }
        for m in (0, 15, 30, 45)
    ]
    api.client.post("/v1/readings", json=rows, headers=api.headers("admin"))


def _send(api: Api, case: schemathesis.Case) -> Any:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    headers = {
        k: v
        for k, v in kwargs.pop("headers", {}).items()
        if k.lower() not in ("authorization", "x-api-key")
    }
    headers["Authorization"] = f"Bearer {api.tokens['admin']}"
    kwargs.pop("cookies", None)
    if "data" in kwargs and isinstance(kwargs["data"], str | bytes):
        kwargs["content"] = kwargs.pop("data")
    try:
        return api.client.request(headers=headers, **kwargs)
    except httpx.InvalidURL:  # a query past what the HTTP client itself will send
        reject()


def test_document_is_published(api: Api) -> None:
    served = api.client.get("/openapi.json").json()
    assert served["paths"].keys() == _DOC["paths"].keys()
    assert len(OPERATIONS) >= 35
    # every operation is fuzzed, an ingest with each of its three body formats
    assert {name for name, _ in DOCUMENTED} == OPERATIONS.keys()
    assert {m for name, m in DOCUMENTED if name == "POST /v1/readings"} == {
        "application/json",
        "application/x-ndjson",
        "text/csv",
    }


@pytest.mark.parametrize(
    ("operation", "status", "found"),
    [
        ("GET /v1/meters", 500, {ServerError, UndefinedStatusCode}),
        ("GET /v1/meters", 418, {UndefinedStatusCode}),
        ("GET /health", 404, {UndefinedStatusCode}),
    ],
)
def test_the_checks_refuse_a_5xx_and_an_undocumented_status(
    operation: str, status: int, found: set[type[Exception]]
) -> None:
    """The checks themselves: an answer with a server error, or with a status the
    operation does not document, fails validation (else the fuzzing proves nothing)."""
    case = OPERATIONS[operation].Case()
    request = httpx.Request("GET", "http://testserver" + OPERATIONS[operation].path)
    response = httpx.Response(
        status,
        headers={"content-type": "application/problem+json"},
        json={"type": "about:blank", "title": "x", "status": status, "detail": "x"},
        request=request,
    )
    response.elapsed = dt.timedelta(milliseconds=1)
    with pytest.raises(FailureGroup) as failed:
        case.validate_response(response, checks=CHECKS)
    assert {type(e) for e in failed.value.exceptions} == found


@pytest.mark.parametrize(
    "operation", sorted(o for o, m in DOCUMENTED if m == "application/json"), ids=str
)
def test_a_broken_json_body_gets_a_documented_answer(api: Api, operation: str) -> None:
    """A JSON body that does not even decode: FastAPI answers 400 before the route runs, so
    every operation that takes JSON must document it (admin, edits and anomaly
    acknowledgements did not)."""
    method, path = operation.split(" ")
    url = path.format_map(
        {"meter_id": "M-N1", "node_id": "N1", "station_id": "S1", "username": "nobody"}
        | {"anomaly_id": "1", "key_id": "1"}
    )
    response = api.client.request(
        method,
        url,
        content=b'\xff{"broken',
        headers={"Content-Type": "application/json", **api.headers("admin")},
    )
    documented = _DOC["paths"][path][method.lower()]["responses"]
    assert response.status_code < 500, response.text
    assert str(response.status_code) in documented, (response.status_code, sorted(documented))
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("operation", "media_type", "mode"), CASES, ids=str)
def test_operation_honours_its_contract(
    api: Api, operation: str, media_type: str | None, mode: GenerationMode
) -> None:
    op = OPERATIONS[operation]
    # random patches must not disable the admin this test signs in as
    protect = operation == "PATCH /v1/admin/users/{username}"
    strategy = op.as_strategy(mode, media_type=media_type)

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=DEADLINE,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the budget holds on failure
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(strategy)
        if protect and case.path_parameters and case.path_parameters.get("username") == "admin":
            case.path_parameters["username"] = "someone-else"
        response = _send(api, case)
        case.validate_response(response, checks=CHECKS)

    run()
