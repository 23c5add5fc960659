"""Interval detection on its own (no store): the modal spacing per meter with gaps,
duplicates and DST artefacts; meters told apart in one file; decisions carried across
chunks; ambiguous and short meters; the stamped batches keep every row. Expected
intervals are the spacings the test writes, or numpy's mode of the real file's spacing."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from metrify.contracts.records import READING
from metrify.sources.batches import RawBatch
from metrify.sources.files import read_batches
from metrify.sources.intervals import (
    IntervalDetector,
    detect_intervals,
    judge,
    needs_detection,
    stamp_intervals,
)
from metrify.sources.mapping import build_mapping
from support.realdata import shared_data

T0 = dt.datetime(2024, 1, 1)


def _rows(meter: str, seconds: list[int]) -> list[tuple[str, str, str]]:
    return [(meter, (T0 + dt.timedelta(seconds=s)).isoformat(sep=" "), "0.1") for s in seconds]


def _batch(rows: list[tuple[str, str, str]], first_line: int = 2) -> RawBatch:
    data = pl.DataFrame(
        {
            "meter_id": [r[0] for r in rows],
            "ts": [r[1] for r in rows],
            "import_kwh": [r[2] for r in rows],
        }
    )
    lines = np.arange(first_line, first_line + len(rows), dtype=np.int64)
    return RawBatch(data, [], "file:t.csv", first_line, lines=lines)


def _mapping(**options: object):  # type: ignore[no-untyped-def]
    return build_mapping(READING, detect_interval=True, **options)  # type: ignore[arg-type]


def test_the_mode_outvotes_gaps_duplicates_and_a_dst_hour() -> None:
    # 15-minute reads for 3 days with a 2-hour gap, a repeated time and an hour twice
    # as long (a local file's skipped hour read as UTC)
    times = list(range(0, 3 * 86_400, 900))
    times = [t for t in times if not 20_000 <= t < 27_000]  # a gap
    times += [times[10]]  # a duplicate
    times = [t + (3600 if t > 150_000 else 0) for t in times]  # one long step
    detector = IntervalDetector()
    ts = pl.Series([T0 + dt.timedelta(seconds=s) for s in times]).dt.replace_time_zone("UTC")
    detector.observe(pl.Series(["M"] * len(times)), ts)
    detector.settle(final=True)
    assert detector.decided == {"M": 900}


@pytest.mark.parametrize(
    ("counts", "decided"),
    [
        ({1800: 100}, 1800),
        ({1800: 60, 3600: 30, 5400: 5}, 1800),  # gaps of one and two reads
        ({900: 50, 1800: 50}, None),  # two spacings, neither dominant
        ({1000: 90, 1800: 3}, None),  # 1000 s does not divide the day
        ({1800: 2}, None),  # too few
    ],
)
def test_judge(counts: dict[int, int], decided: int | None) -> None:
    assert judge(counts).interval_s == decided


def test_ambiguous_meters_name_the_candidates() -> None:
    verdict = judge({900: 50, 1800: 50})
    assert verdict.interval_s is None and set(verdict.candidates) == {900, 1800}
    odd = judge({1000: 90, 1800: 10})
    assert odd.candidates == (1800,) and "1000 s" in odd.note


def test_meters_of_one_file_are_told_apart_and_stamped_in_order() -> None:
    rows = _rows("A", list(range(0, 86_400, 1800))) + _rows("B", list(range(0, 3 * 86_400, 3600)))
    mapping = _mapping()
    detector = IntervalDetector()
    out = list(stamp_intervals([_batch(rows)], READING, mapping, detector))
    assert detector.decided == {"A": 1800, "B": 3600}
    assert [(b.data.get_column("meter_id").unique().to_list(), m.interval_s) for b, m in out] == [
        (["A"], 1800),
        (["B"], 3600),
    ]
    # every row comes out once, with its own line number
    lines = np.concatenate([b.lines for b, _ in out if b.lines is not None])
    assert sorted(lines.tolist()) == list(range(2, 2 + len(rows)))


def test_a_meter_split_across_chunks_is_held_until_decided() -> None:
    """A meter whose first chunk holds too few times waits for the next chunk; both
    chunks come out with its interval, in order."""
    rows = _rows("A", list(range(0, 2 * 86_400, 900)))
    first, second = _batch(rows[:10]), _batch(rows[10:], first_line=12)
    detector = IntervalDetector()
    out = list(stamp_intervals([first, second], READING, _mapping(), detector))
    assert [b.first_line for b, _ in out] == [2, 12]
    assert {m.interval_s for _, m in out} == {900}


def test_a_short_meter_takes_the_interval_the_others_share() -> None:
    rows = _rows("A", list(range(0, 86_400, 1800))) + _rows("SHORT", [0, 1800])
    detector = IntervalDetector()
    out = list(stamp_intervals([_batch(rows)], READING, _mapping(), detector))
    assert detector.decided["SHORT"] == 1800 and detector.assumed == {"SHORT"}
    assert sum(b.data.height for b, _ in out) == len(rows)


def test_an_ambiguous_meter_is_quarantined_with_the_candidates() -> None:
    mixed = [t * 900 for t in range(60)] + [54_000 + t * 1800 for t in range(60)]
    rows = _rows("A", list(range(0, 86_400, 1800))) + _rows("MIX", mixed)
    detector = IntervalDetector()
    out = list(stamp_intervals([_batch(rows)], READING, _mapping(), detector))
    bad = [row for b, _ in out for row in b.bad]
    assert len(bad) == len(mixed)
    assert all("MIX" in r.reason and "900 s" in r.reason and "--interval" in r.reason for r in bad)
    assert sum(b.data.height for b, _ in out) == 48


def test_no_detection_where_the_interval_is_known() -> None:
    assert not needs_detection(READING, _mapping(interval_s=900), ["meter_id", "ts"])
    assert not needs_detection(READING, _mapping(), ["meter_id", "ts", "interval_s"])
    assert not needs_detection(READING, _mapping(sets=["interval_s=900"]), ["meter_id", "ts"])
    assert needs_detection(READING, _mapping(), ["meter_id", "ts", "import_kwh"])


def test_a_real_household_is_half_hourly() -> None:
    """A London household's year (gzipped CSV, read in chunks of 5,000 rows): the mode
    of its spacing, counted with numpy from the file's text, is what is detected."""
    path = sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[0]
    text = pl.read_csv(path).get_column("tstp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f")
    spacing = np.diff(np.unique(text.dt.epoch("s").to_numpy()))
    expected = Counter(spacing.tolist()).most_common(1)[0][0]
    mapping = _mapping(maps=["meter_id=LCLid", "ts=tstp", "import_kwh=energy(kWh/hh)"])
    detector = IntervalDetector()
    out = list(stamp_intervals(read_batches(path, 5_000), READING, mapping, detector))
    meter = pl.read_csv(path).get_column("LCLid")[0]
    assert detector.decided == {meter: expected}
    assert sum(b.data.height + len(b.bad) for b, _ in out) == text.len()


def test_irregular_register_reads_are_refused(tmp_path: Path) -> None:
    """Register reads taken at drifting times (every 55 to 65 minutes): no spacing
    dominates, so the first rows of the file are enough to refuse it."""
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.integers(3300, 3900, size=400))
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{1_700_000_000 + t},{i * 100}\n" for i, t in enumerate(times)))
    mapping = _mapping(maps=["ts=#1", "register_kwh=#2"], sets=["meter_id=R-1"], header=False)
    detector = detect_intervals(
        read_batches(path, 50_000, header=False), READING, mapping, complete=True
    )
    assert "R-1" in detector.refused and not detector.decided
