"""An audit row holding an integer past 64 bits is still listed, not a 500.

Before edits were checked, an edit of ``1e300`` wrote a 301-digit integer into the audit
details; orjson cannot encode it, and every ``/v1/audit`` page holding the row answered
500. Such integers are now sent as their exact decimal text (a JSON string).
"""

from __future__ import annotations

import orjson

from support.api import Api

HUGE = 10**300  # what an unchecked edit of 1e300 wrote
JUST_PAST = 2**64  # one past the largest integer orjson encodes


def seed_api(api: Api) -> None:
    api.add_user("root", "admin")


def test_an_audit_page_with_a_huge_integer_lists_it_as_text(api: Api) -> None:
    details = f'{{"value": {HUGE}, "nested": {{"values": [{JUST_PAST}, 7]}}, "ok": 12}}'
    with api.conn() as conn:  # an old row, written straight into the table
        conn.execute(
            "INSERT INTO audit_log (actor, actor_kind, action, target, outcome, details)"
            " VALUES ('old', 'user', 'edits.create', 'M1', 'success', %s::jsonb)",
            (details,),
        )
    response = api.client.get(
        "/v1/audit", params={"action": "edits.create"}, headers=api.headers("root")
    )
    assert response.status_code == 200, response.text
    (row,) = orjson.loads(response.content)["items"]
    assert row["details"] == {
        "value": str(HUGE),
        "nested": {"values": [str(JUST_PAST), 7]},
        "ok": 12,
    }
