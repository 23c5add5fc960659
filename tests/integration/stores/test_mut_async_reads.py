"""The API's async reference reads on a real database, called directly (the API tests
reach them through HTTP, which the stores' mutation run does not include)."""

from __future__ import annotations

import asyncio

import psycopg

from metrify.contracts.records import METER
from metrify.stores.reads import meters, reference


def _read(url: str, ident: str) -> tuple[tuple[bool, str | None], dict[str, object] | None]:
    async def go() -> tuple[tuple[bool, str | None], dict[str, object] | None]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await meters.region_of(conn, ident), await reference.one(conn, METER, ident)

    return asyncio.run(go())


def test_region_and_row_of_known_and_unknown_meters(
    conn: psycopg.Connection, database_url: str
) -> None:
    conn.execute("INSERT INTO meters (meter_id, region) VALUES ('A', 'north'), ('C', NULL)")
    url = database_url
    known, row = _read(url, "A")
    assert known == (True, "north")
    assert row is not None
    assert list(row) == [*METER.schema, "created_at", "updated_at"]
    assert row["meter_id"] == "A" and row["region"] == "north"
    assert _read(url, "C")[0] == (True, None)  # known, without a region
    assert _read(url, "NEW") == ((False, None), None)
