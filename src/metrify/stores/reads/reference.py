"""Reference rows (meters, grid nodes, weather stations) by id, or a page of them.

A row is the contract's fields plus when it was created and last updated. Pages are
keyset-paginated on the id; only meters have a region to filter on.
"""

from __future__ import annotations

from typing import Any

from metrify.contracts.records import Contract
from metrify.stores.pools import AsyncConnection


def columns(contract: Contract) -> list[str]:
    """What a reference read returns of each row."""
    return [*contract.schema, "created_at", "updated_at"]


async def one(conn: AsyncConnection, contract: Contract, ident: str) -> dict[str, Any] | None:
    cols = columns(contract)
    cur = await conn.execute(
        f"SELECT {', '.join(cols)} FROM {contract.table} WHERE {contract.key[0]} = %s",
        (ident,),
    )
    row = await cur.fetchone()
    return None if row is None else dict(zip(cols, row, strict=True))


async def page(
    conn: AsyncConnection,
    contract: Contract,
    *,
    after: str | None = None,
    status: str | None = None,
    region: str | None = None,
    regions: tuple[str, ...] | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows with ids after ``after``, in id order, of lifecycle
    ``status``, in ``region`` and in one of ``regions`` (None: no such condition)."""
    id_field, cols = contract.key[0], columns(contract)
    where, params = ["TRUE"], []
    for clause, value in (
        (f"{id_field} > %s", after),
        ("status = %s", status),
        ("region = %s", region),
        ("region = ANY(%s)", None if regions is None else list(regions)),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    cur = await conn.execute(
        f"SELECT {', '.join(cols)} FROM {contract.table} "
        f"WHERE {' AND '.join(where)} ORDER BY {id_field} LIMIT %s",
        (*params, limit),
    )
    return [dict(zip(cols, r, strict=True)) for r in await cur.fetchall()]
