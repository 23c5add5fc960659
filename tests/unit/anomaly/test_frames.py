"""The detectors' cheap frame steps do what Polars' own select, drop and filter do."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from metrify.anomaly import frames


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "a": [1, 2, 3, 4, 5],
            "b": ["v", "w", None, "y", "z"],
            "c": [0.5, None, 1.5, 2.5, 3.5],
            "keep": [True, None, False, True, True],
        }
    )


def test_columns_picks_in_the_order_given(frame: pl.DataFrame) -> None:
    assert_frame_equal(frames.columns(frame, "c", "a"), frame.select("c", "a"))


def test_without_leaves_the_rest_in_order(frame: pl.DataFrame) -> None:
    out = frames.without(frame, "b", "keep")
    assert out.columns == ["a", "c"]
    assert_frame_equal(out, frame.drop("b", "keep"))


@pytest.mark.parametrize("small", [True, False])
def test_where_keeps_the_rows_a_filter_keeps(
    frame: pl.DataFrame, small: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not small:  # the frame counts as large: Polars' own filter
        monkeypatch.setattr(frames, "SMALL", 0)
    mask = frame.get_column("keep")
    # rows 1, 4 and 5: the null in the mask counts as not kept
    expected = pl.DataFrame(
        {"a": [1, 4, 5], "b": ["v", "y", "z"], "c": [0.5, 2.5, 3.5]},
    )
    assert_frame_equal(frames.where(frame, "keep"), expected)
    assert_frame_equal(frames.where(frame, mask), expected.with_columns(keep=pl.lit(True)))
    assert frames.where(frame, ~mask).get_column("a").to_list() == [3]
