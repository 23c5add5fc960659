"""A password change over the API is in the audit log as one, and never the password.

The audit store drops every details key naming a password (so no caller can leak one);
the row of a password change used to lose with it the only sign that the password
changed, leaving an empty ``users.update``.
"""

from __future__ import annotations

from support.api import Api

NEW_PASSWORD = "another quite long password"


def seed_api(api: Api) -> None:
    api.add_user("root", "admin")
    api.add_user("carol", "viewer")


def test_a_password_change_is_audited_without_the_password(api: Api) -> None:
    response = api.client.patch(
        "/v1/admin/users/carol", json={"password": NEW_PASSWORD}, headers=api.headers("root")
    )
    assert response.status_code == 200, response.text
    with api.conn() as conn:
        rows = conn.execute(
            "SELECT actor, actor_kind, action, target, outcome, details::text FROM audit_log"
            " WHERE target = 'carol' AND action LIKE 'users.%'"
        ).fetchall()
    assert len(rows) == 1, rows
    *row, details = rows[0]
    assert row == ["root", "user", "users.update", "carol", "success"]
    assert '"credential_changed": true' in details
    assert NEW_PASSWORD not in details and "argon2" not in details
