"""Grid and weather records skip VEE: a key that came with other values in the same
batch is flagged DUPLICATE, every record is valid, and the helper column goes."""

from __future__ import annotations

import polars as pl

from metrify.contracts.records import Quality, Status
from metrify.quality.engine import assess_plain


def test_in_batch_conflicts_are_flagged_and_the_helper_column_dropped() -> None:
    records = pl.DataFrame(
        {
            "node_id": ["N1", "N1", "N2"],
            "load_mw": [1.0, 2.0, 3.0],
            "_conflict": [True, True, False],
        }
    )
    out = assess_plain(records)
    assert out.columns == ["node_id", "load_mw", "quality", "status"]
    assert out["quality"].to_list() == [int(Quality.DUPLICATE), int(Quality.DUPLICATE), 0]
    assert out["quality"].dtype == pl.Int32
    assert out["status"].to_list() == [Status.VALID.value] * 3


def test_records_without_the_conflict_column_are_all_clean() -> None:
    out = assess_plain(pl.DataFrame({"station_id": ["S"], "temperature_c": [4.5]}))
    assert out.columns == ["station_id", "temperature_c", "quality", "status"]
    assert out.row(0) == ("S", 4.5, 0, Status.VALID.value)
