"""One row per key within a batch.

The store's single ``INSERT ... ON CONFLICT`` cannot touch a key twice, and a later row
in a file is the sender's later statement, so it wins. Earlier conflicting versions are
returned so the caller can keep them (quarantine), never drop them, and the surviving row
is marked so that VEE can flag it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from metrify.contracts.records import Contract


@dataclass
class Deduplicated:
    """A batch with at most one row per key, and what was taken out."""

    records: pl.DataFrame  # with a boolean ``_conflict`` column: the key had other values
    superseded: pl.DataFrame  # earlier conflicting versions of a key within the batch
    repeats: pl.DataFrame  # exact repeats (same values, whatever the source), dropped

    @property
    def identical(self) -> int:
        """How many exact repeats were dropped."""
        return self.repeats.height


def dedupe_batch(
    contract: Contract, records: pl.DataFrame, ignore: Collection[str] = ()
) -> Deduplicated:
    """Drop exact repeats; for conflicting rows of a key keep the last and flag it.

    Only rows whose key occurs more than once can be repeats or conflicts, so only they
    are compared on every column (a batch holds few; hashing all of its rows on every
    column in order cost more than the rest of this function). Rows keep their order.
    ``ignore``: columns that say where a row came from, not what it says (like
    ``source``), so rows differing only there are still repeats.
    """
    key = list(contract.key)
    repeated = None if _keys_once(records, key) else records.select(key).is_duplicated()
    if repeated is None or not repeated.any():
        none = records.clear()
        return Deduplicated(records.with_columns(_conflict=pl.lit(False)), none, none)
    indexed = records.with_row_index("_i")
    several = indexed.filter(repeated)
    values = [c for c in records.columns if c != "source" and c not in ignore]
    distinct = several.unique(subset=values, keep="last", maintain_order=True)
    repeats = several.join(distinct.select("_i"), on="_i", how="anti").drop("_i")
    marked = distinct.with_columns(
        _last=pl.struct(key).is_last_distinct(),
        _conflict=pl.len().over(key) > 1,
    )
    kept = pl.concat(
        [
            indexed.filter(~repeated).with_columns(_conflict=pl.lit(False)),
            marked.filter(pl.col("_last")).drop("_last"),
        ]
    )
    superseded = marked.filter(~pl.col("_last")).drop("_last", "_conflict")
    return Deduplicated(kept.sort("_i").drop("_i"), superseded.sort("_i").drop("_i"), repeats)


def _keys_once(records: pl.DataFrame, key: list[str]) -> bool:
    """Whether the rows plainly hold each ``(id, ts)`` key once: each id's rows come
    together, in strictly increasing time (a file's, or files of one meter each).

    Two comparisons with the row before and a count of the ids cost a quarter of
    hashing every key, which a 1.7M-row batch with no repeat paid for nothing. False
    when it cannot tell (other keys, nulls, ids that come back, time out of order):
    the caller then looks for repeats the full way."""
    if len(key) != 2 or key[1] != "ts" or not records.height:
        return False
    ident, ts = pl.col(key[0]), pl.col("ts")
    nulls, back, runs, ids = records.select(
        nulls=ident.has_nulls() | ts.has_nulls(),
        back=((ident == ident.shift(1)) & (ts <= ts.shift(1))).any(),
        runs=(ident != ident.shift(1)).sum() + 1,
        ids=ident.n_unique(),
    ).row(0)
    return not nulls and not back and runs == ids
