"""The server's pools give up on an unreachable PostgreSQL instead of making every
request wait the whole pool timeout (no server needed: the URL names a socket folder
where none listens)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from psycopg_pool import PoolTimeout

from metrify.stores import pools


def nowhere(tmp_path: Path) -> str:
    return f"postgresql://nobody@/none?host={tmp_path}"


def test_the_sync_pool_ends_a_wait_once_postgres_is_unreachable(tmp_path: Path) -> None:
    pool = pools.sync_pool(nowhere(tmp_path), 2)
    assert pool.timeout >= 30  # the wait a busy pool still allows
    pool.open(wait=False)
    try:
        with pytest.raises(PoolTimeout, match="unreachable"), pool.connection():
            pass
    finally:
        pool.close()


def test_the_async_pool_ends_a_wait_once_postgres_is_unreachable(tmp_path: Path) -> None:
    async def borrow() -> None:
        pool = pools.async_pool(nowhere(tmp_path), 2)
        await pool.open(wait=False)
        try:
            async with pool.connection():
                pass
        finally:
            await pool.close()

    with pytest.raises(PoolTimeout, match="unreachable"):
        asyncio.run(borrow())
