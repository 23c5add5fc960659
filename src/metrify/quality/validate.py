"""Batch-level validation shared by every source.

Contract checks that make a row unusable (no key, impossible values) happen while
decoding; here records that are usable get their quality flags and status. The full VEE
rule set (clock, spikes, flat lines, gaps, registers) builds on this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from metrify.records import Contract, Status


@dataclass
class Deduplicated:
    """A batch with at most one row per key, and what was taken out."""

    records: pl.DataFrame
    identical: int  # exact repeats, dropped (a re-sent row changes nothing)
    superseded: pl.DataFrame  # earlier conflicting versions of a key within the batch


def dedupe_batch(contract: Contract, records: pl.DataFrame) -> Deduplicated:
    """Keep one row per key: exact repeats vanish, and for conflicting rows the last wins.

    The store's single ``INSERT ... ON CONFLICT`` cannot touch a key twice, and a later
    row in a file is the later statement of the sender, so it wins; the earlier one is
    returned so that the caller can keep it (quarantine), never drop it.
    """
    key = list(contract.key)
    distinct = records.unique(maintain_order=True)
    identical = records.height - distinct.height
    if distinct.height == distinct.select(key).n_unique():
        return Deduplicated(distinct, identical, distinct.clear())
    last = distinct.select(pl.struct(key).is_last_distinct()).to_series()
    return Deduplicated(distinct.filter(last), identical, distinct.filter(~last))


def assess(contract: Contract, records: pl.DataFrame) -> pl.DataFrame:
    """Attach ``quality`` (flag bits) and ``status`` to decoded records."""
    return records.with_columns(
        quality=pl.lit(0, dtype=pl.Int32),
        status=pl.lit(Status.VALID.value, dtype=pl.String),
    )
