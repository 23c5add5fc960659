"""``metrify audit verify``: the audit log's hash chain names the first row an owner
rewrote, removed or moved (issue 20), and holds under concurrent inserts.

The owner can switch the append-only trigger off (the app cannot); these tests do so to
tamper as such an owner would, and check that the chain gives it away. Expected hashes
are computed here from the encoding the migration documents, not by the code under test.
"""

from __future__ import annotations

import calendar
import hashlib
import threading
from typing import Any

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores import audit, database

runner = CliRunner()


def _record(settings: Settings, n: int, prefix: str = "test.act") -> None:
    with database.connect(settings) as conn:
        for i in range(n):
            event = audit.Event(
                actor=f"user{i}",
                actor_kind="user",
                action=f"{prefix}{i}",
                target=None if i % 2 else f"M{i}",
                details={"n": i, "note": "é ü"},
            )
            audit.record(conn, event)


def _verify() -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["audit", "verify", "--json"])
    return result.exit_code, orjson.loads(result.stdout)


def _ids(conn: psycopg.Connection[Any]) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM audit_log ORDER BY seq")]


def _as_owner_untriggered(conn: psycopg.Connection[Any], *statements: str) -> None:
    """What an owner can do and the app cannot: run statements with the append-only
    trigger off (in one transaction, as the owner's tampering would)."""
    with conn.transaction():
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        for statement in statements:
            conn.execute(statement)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def _expected_hash(row: tuple[Any, ...]) -> str:
    """The documented encoding, written out independently of metrify.stores.audit_chain."""
    seq, ident, at, *rest = row
    micros = calendar.timegm(at.utctimetuple()) * 10**6 + at.microsecond
    parts = []
    for value in [str(seq), str(ident), str(micros), *rest]:
        data = None if value is None else value.encode("utf-8")
        parts.append(b"N" if data is None else b"S" + str(len(data)).encode() + b":" + data)
    return hashlib.sha256(b"".join(parts)).hexdigest()


def test_a_fresh_log_verifies_and_each_row_carries_the_documented_hash(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    _record(settings, 5)
    rows = conn.execute(
        "SELECT seq, id, at, actor, actor_kind, action, target, outcome, request_id, client,"
        " details::text, prev_hash, hash FROM audit_log ORDER BY seq"
    ).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    prev = "0" * 64
    for row in rows:
        assert row[11] == prev
        assert row[12] == _expected_hash(row[:12])
        prev = row[12]
    code, out = _verify()
    assert code == 0
    assert out == {"ok": True, "rows": 5, "head": {"seq": 5, "hash": prev}, "broken": None}
    assert runner.invoke(app, ["audit", "verify"]).stdout.startswith("audit chain intact: 5 rows")


def test_an_empty_log_verifies(settings: Settings) -> None:
    assert _verify() == (
        0,
        {"ok": True, "rows": 0, "head": {"seq": 0, "hash": "0" * 64}, "broken": None},
    )


def test_altered_details_name_the_row(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    _record(settings, 6)
    third = _ids(conn)[2]
    _as_owner_untriggered(
        conn, f"UPDATE audit_log SET details = '{{\"n\": 99}}' WHERE id = {third}"
    )
    code, out = _verify()
    assert code == 1
    assert out["ok"] is False and out["rows"] == 2
    assert out["broken"]["kind"] == "altered"
    assert (out["broken"]["seq"], out["broken"]["id"]) == (3, third)
    human = runner.invoke(app, ["audit", "verify"])
    assert human.exit_code == 1 and f"row id {third} (seq 3) was altered" in human.stderr


def test_a_deleted_middle_row_is_missing(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    _record(settings, 6)
    ids = _ids(conn)
    _as_owner_untriggered(conn, f"DELETE FROM audit_log WHERE id = {ids[3]}")
    code, out = _verify()
    assert code == 1
    assert out["broken"]["kind"] == "missing"
    assert (out["broken"]["seq"], out["broken"]["id"]) == (4, ids[4])
    assert "seq 4 missing" in out["broken"]["message"]


def test_a_deleted_last_row_is_missing(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    _record(settings, 4)
    ids = _ids(conn)
    _as_owner_untriggered(conn, f"DELETE FROM audit_log WHERE id = {ids[-1]}")
    code, out = _verify()
    assert code == 1 and out["rows"] == 3
    assert out["broken"] == {
        "kind": "missing",
        "seq": 4,
        "id": None,
        "message": "seq 4 missing at the end of the log",
    }


def test_reordered_rows_are_named(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    _record(settings, 5)
    ids = _ids(conn)
    # rows 2 and 3 swap places, carrying their hashes with them
    _as_owner_untriggered(
        conn,
        f"UPDATE audit_log SET seq = -seq WHERE id IN ({ids[1]}, {ids[2]})",
        f"UPDATE audit_log SET seq = 3 WHERE id = {ids[1]}",
        f"UPDATE audit_log SET seq = 2 WHERE id = {ids[2]}",
    )
    code, out = _verify()
    assert code == 1
    assert out["broken"]["kind"] == "reordered"
    assert (out["broken"]["seq"], out["broken"]["id"]) == (2, ids[2])


REHASH = """
DO $$
DECLARE
    r audit_log;
    prev text := (SELECT hash FROM audit_log WHERE seq = 1);
BEGIN
    FOR r IN SELECT * FROM audit_log WHERE seq >= 2 ORDER BY seq LOOP
        UPDATE audit_log SET prev_hash = prev, hash = audit_row_hash(r.seq, r.id, r.at,
            r.actor, r.actor_kind, r.action, r.target, r.outcome, r.request_id, r.client,
            r.details, prev) WHERE id = r.id RETURNING hash INTO prev;
    END LOOP;
    UPDATE audit_chain SET hash = prev;
END $$
"""


def test_an_anchor_catches_a_chain_rewritten_after_a_change(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    """An owner who rehashes everything after the changed row makes a chain that holds;
    a hash kept off the database (``--anchor``) still tells."""
    _record(settings, 4)
    third = _hash_at(conn, 3)
    _as_owner_untriggered(conn, "UPDATE audit_log SET details = '{\"n\": 7}' WHERE seq = 2", REHASH)
    assert _verify()[0] == 0  # the chain alone cannot tell
    result = runner.invoke(app, ["audit", "verify", "--json", "--anchor", f"3:{third}"])
    assert result.exit_code == 1
    broken = orjson.loads(result.stdout)["broken"]
    assert (broken["kind"], broken["seq"]) == ("altered", 3)
    assert f"(seq 3) no longer has the anchored hash {third}:" in broken["message"]
    untouched = runner.invoke(app, ["audit", "verify", "--anchor", f"1:{_hash_at(conn, 1)}"])
    assert untouched.exit_code == 0
    past_end = runner.invoke(app, ["audit", "verify", "--json", "--anchor", f"9:{third}"])
    assert past_end.exit_code == 1
    assert orjson.loads(past_end.stdout)["broken"]["kind"] == "missing"


def _hash_at(conn: psycopg.Connection[Any], seq: int) -> str:
    row = conn.execute("SELECT hash FROM audit_log WHERE seq = %s", (seq,)).fetchone()
    assert row is not None
    return str(row[0])


def test_concurrent_inserts_chain_in_one_line(settings: Settings) -> None:
    """Eight writers at once, some inside longer transactions: every row still follows
    the one before it."""
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with database.connect(settings) as conn:
                for i in range(25):
                    event = audit.Event(actor=f"w{k}", actor_kind="user", action=f"t.{i}")
                    if k % 2:
                        with conn.transaction():
                            audit.record(conn, event)
                            conn.execute("SELECT pg_sleep(0.001)")
                    else:
                        audit.record(conn, event)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    code, out = _verify()
    assert (code, out["ok"], out["rows"], out["head"]["seq"]) == (0, True, 200, 200)


def test_rows_stored_before_the_chain_are_chained_by_the_migration(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    owner = settings.database_owner_url
    assert owner is not None
    database.downgrade(owner.get_secret_value(), "0009")
    try:
        for i in range(3):
            conn.execute(
                "INSERT INTO audit_log (actor, actor_kind, action, outcome, details)"
                " VALUES ('old', 'user', %s, 'success', '{\"k\": 1}')",
                (f"old.{i}",),
            )
    finally:
        database.upgrade(owner.get_secret_value())
    _record(settings, 2)
    code, out = _verify()
    assert (code, out["rows"]) == (0, 5)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert actions == ["old.0", "old.1", "old.2", "test.act0", "test.act1"]


def test_the_listing_keeps_its_options(settings: Settings) -> None:
    """``metrify audit`` became a group: the bare command and ``list`` both list."""
    _record(settings, 3)
    bare = runner.invoke(app, ["audit", "--limit", "2", "--json"])
    listed = runner.invoke(app, ["audit", "list", "--actor", "user1", "--json"])
    assert bare.exit_code == 0 and listed.exit_code == 0
    assert [orjson.loads(x)["action"] for x in bare.stdout.splitlines()] == [
        "test.act1",
        "test.act2",
    ]
    assert [orjson.loads(x)["action"] for x in listed.stdout.splitlines()] == ["test.act1"]


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "verify", "--bogus"],
        ["audit", "nope"],
        ["audit", "verify", "--anchor", "3"],
        ["audit", "verify", "--anchor", "0:" + "a" * 64],
        ["audit", "verify", "--anchor", "3:xyz"],
    ],
)
def test_bad_arguments_exit_2(settings: Settings, command: list[str]) -> None:
    assert runner.invoke(app, command).exit_code == 2
