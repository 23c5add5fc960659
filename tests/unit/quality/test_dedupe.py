"""One row per key within a batch, checked against a plain-Python reading of the rule:
an exact repeat (every value but the source) is dropped, the last one kept; of the rows
left, the last of each key wins and the earlier ones are superseded; order is kept."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metrify.contracts.records import GRID
from metrify.quality.dedupe import dedupe_batch

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

rows = st.lists(
    st.tuples(
        st.sampled_from(["N1", "N2", "N3"]),
        st.integers(0, 3),  # interval number: few, so keys repeat
        st.sampled_from([1.0, 2.0, None]),  # load: repeats and conflicts
        st.sampled_from(["a", "b"]),  # source: not part of what makes a repeat
    ),
    max_size=40,
)


def _frame(data: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "node_id": [r[0] for r in data],
            "ts": [T0 + dt.timedelta(minutes=15 * r[1]) for r in data],
            "load_mw": [r[2] for r in data],
            # the row's place rides in the source, which a repeat may differ in
            "source": [f"{r[3]}:{i}" for i, r in enumerate(data)],
        },
        schema={
            "node_id": pl.String(),
            "ts": pl.Datetime("us", "UTC"),
            "load_mw": pl.Float64(),
            "source": pl.String(),
        },
    )


def _expected(data: list[tuple[Any, ...]]) -> tuple[list[int], int, list[int], set[int]]:
    """(indices kept, identical count, indices superseded, kept indices in conflict)."""
    last_of_value = {(n, t, v): i for i, (n, t, v, _) in enumerate(data)}
    left = sorted(last_of_value.values())
    last_of_key: dict[tuple[Any, ...], int] = {}
    count: dict[tuple[Any, ...], int] = {}
    for i in left:
        k = data[i][:2]
        last_of_key[k] = i
        count[k] = count.get(k, 0) + 1
    kept = [i for i in left if last_of_key[data[i][:2]] == i]
    superseded = [i for i in left if last_of_key[data[i][:2]] != i]
    conflict = {i for i in kept if count[data[i][:2]] > 1}
    return kept, len(data) - len(left), superseded, conflict


@settings(max_examples=200, deadline=None)
@given(rows)
def test_dedupe_follows_the_rule(data: list[tuple[Any, ...]]) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(0, 39))
def test_rows_in_key_order_follow_the_rule_too(data: list[tuple[Any, ...]], cut: int) -> None:
    """Rows in (id, time) order, as a file of one meter comes, which a batch without
    repeats can be told by from the rows before: a repeated time within an id, or an
    id that comes back further on (the tail moved to the front), must still be found."""
    ordered = sorted(data, key=lambda r: (r[0], r[1]))
    _check(ordered)
    _check(ordered[cut:] + ordered[:cut])


def _check(data: list[tuple[Any, ...]]) -> None:
    result = dedupe_batch(GRID, _frame(data))
    kept, identical, superseded, conflict = _expected(data)

    def places(frame: pl.DataFrame) -> list[int]:
        return [int(s.split(":")[1]) for s in frame["source"]]

    assert result.identical == identical
    assert places(result.records) == kept
    assert places(result.superseded) == superseded
    flags = result.records["_conflict"].to_list()
    assert {n for n, c in zip(places(result.records), flags, strict=True) if c} == conflict
