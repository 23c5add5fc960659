"""``metrify grid`` tables say what the JSON says: the peak's time, the observed tariff
effect in the right direction."""

from __future__ import annotations

import datetime as dt

import pytest

from metrify.cli import grid
from metrify.cli.common import console


def test_a_list_cell_prints_its_items(monkeypatch: pytest.MonkeyPatch) -> None:
    # peak-drivers answers peak_ts as a list (the ``top`` intervals); the table printed
    # an empty cell for it, so the table never said when the peak was
    monkeypatch.setattr(console, "_width", 200)
    first = dt.datetime(2013, 1, 16, 17, 0, tzinfo=dt.UTC)
    second = dt.datetime(2013, 1, 16, 17, 30, tzinfo=dt.UTC)
    with console.capture() as captured:
        grid._facts("peak", {"peak_kw": 5.5, "peak_ts": [first, second]}, ["peak_kw", "peak_ts"])
    text = captured.get()
    assert "2013-01-16 17:00:00+00:00" in text and "2013-01-16 17:30:00+00:00" in text


def test_a_negative_observed_reduction_reads_as_more() -> None:
    # ToU meters that used 42.1% MORE of their energy in the window: the old line said
    # "used -42.1% ... less", a double negative an analyst can read either way
    effect = {
        "n_tou": 3,
        "n_std": 4,
        "relative": -0.421,
        "relative_low": -1.285,
        "relative_high": 0.012,
    }
    line = grid._observed(effect, "16-20", "ToU", "Std")
    assert "42.1% more of their energy in 16-20 than 4 Std meters" in line
    assert "-1.2% to 128.5% more" in line and "-42" not in line
    effect = {**effect, "relative": 0.1, "relative_low": 0.05, "relative_high": 0.2}
    assert "10.0% less" in grid._observed(effect, "16-20", "ToU", "Std")
