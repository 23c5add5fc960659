"""schemathesis against the published OpenAPI document: for generated requests to every
operation, no 5xx, and every answer matches the status codes, content types and schemas
the document promises. Requests carry an admin's token so they get past authentication;
they go through the same running app (middleware, pools, the pipeline) as the others.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
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
    return api.client.request(headers=headers, **kwargs)


def test_document_is_published(api: Api) -> None:
    served = api.client.get("/openapi.json").json()
    assert served["paths"].keys() == _DOC["paths"].keys()
    assert len(OPERATIONS) >= 35


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_operation_honours_its_contract(api: Api, operation: str) -> None:
    op = OPERATIONS[operation]
    # random patches must not disable the admin this test signs in as
    protect = operation == "PATCH /v1/admin/users/{username}"

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(op.as_strategy())
        if protect and case.path_parameters and case.path_parameters.get("username") == "admin":
            case.path_parameters["username"] = "someone-else"
        response = _send(api, case)
        case.validate_response(response, checks=CHECKS)

    run()
