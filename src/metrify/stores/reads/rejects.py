"""What validation rejected of one source: the stored keys and their quality flags.

Rejected records are stored (status ``rejected``, with the flags that say why), so an
ingest can tell its caller which of its records failed without a second processing.
"""

from __future__ import annotations

import datetime as dt

from metrify.contracts.records import Contract
from metrify.stores.pools import Connection


def rejected(
    conn: Connection, contract: Contract, source: str, ids: list[str], *, limit: int
) -> list[tuple[str, dt.datetime, int]]:
    """(id, ts, quality) of up to ``limit`` rejected rows of ``source`` among ``ids``,
    in time order."""
    id_col = contract.key[0]
    # The ids narrow the search to their primary-key ranges (no scan of the table).
    rows = conn.execute(
        f"SELECT {id_col}, ts, quality FROM {contract.table} "
        f"WHERE {id_col} = ANY(%s) AND source = %s AND status = 'rejected' ORDER BY ts LIMIT %s",
        (ids, source, limit),
    ).fetchall()
    return [(ident, ts, quality) for ident, ts, quality in rows]
