"""The benchmark suite's own logic: ratios, the table it writes, how it measures memory.

The figures themselves come from real runs (``make bench``); these tests only pin what
the suite computes from them, so a wrong ratio or a hidden failure cannot slip into
``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import sys

import pytest

from support.paths import REPO

BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))

import suite  # noqa: E402
from common import run_child  # noqa: E402


def runs(*values: float, rss: float = 100.0) -> list[dict[str, float]]:
    return [{"value": v, "seconds": 1.0, "peak_rss_mib": rss, "stored": 10} for v in values]


def results() -> dict[str, object]:
    london = suite.load_workload("london", "London CSV", 10, 10, ["copy", "dlt"])
    london["entries"]["metrify"]["runs"] = runs(40.0, 50.0, 60.0, rss=800)
    london["entries"]["copy"]["runs"] = runs(100.0, 90.0, 120.0)
    london["entries"]["dlt"]["runs"] = [
        {"value": None, "error": "boom: connection refused", "peak_rss_mib": 50.0},
        *runs(20.0, 30.0),
    ]
    london["entries"]["dlt"]["runs"][1]["short"] = "stored 9 of 10 distinct keys"
    # a workload that has no figure (not run, or not built) is shown with its status
    pending = {
        "name": "pending",
        "title": "a workload without figures",
        "peers": False,
        "status": "not built yet (no job to time)",
        "entries": {},
    }
    return {
        "machine": {"cores": 2, "memory_gib": 23.5, "python": "3.11.7", "platform": "Linux"},
        "postgres": "18.1",
        "workloads": [london, pending],
    }


def test_ratio_is_metrify_over_peer_and_undefined_without_figures() -> None:
    assert suite.ratio(50.0, 100.0) == pytest.approx(0.5)
    assert suite.ratio(None, 100.0) is None
    assert suite.ratio(50.0, 0.0) is None


def test_summary_is_median_min_max_of_successful_runs_only() -> None:
    entry = {"runs": [{"value": None, "error": "x"}, *runs(3.0, 1.0, 2.0, rss=7)]}
    s = suite.summarise(entry)
    assert s["n"] == 3
    assert s["value"] == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert s["peak_rss_mib"]["median"] == 7


def test_table_shows_medians_ratios_memory_and_every_failure() -> None:
    md = suite.render_markdown(results())
    row = next(line for line in md.splitlines() if line.startswith("| London CSV |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "50.0/s (40.0..60.0), 800 MiB, n=3"
    assert cells[2].startswith("100/s (90..120), 100 MiB, n=3; **Metrify/peer 0.50**")
    # dlt: median of the two successful runs, the failed and the short run both shown
    assert cells[3].startswith("25.0/s (20.0..30.0), 100 MiB, n=2; **Metrify/peer 2.00**")
    assert "run 1 failed: boom: connection refused" in cells[3]
    assert "run 2 SHORT: stored 9 of 10 distinct keys" in cells[3]
    assert "| a workload without figures | | not built yet (no job to time) |" in md
    assert "2 cores, 23.5 GiB memory" in md


def test_peer_runs_take_a_count_or_a_count_per_peer() -> None:
    parser = argparse.ArgumentParser()
    peers = ["copy", "pandas"]
    assert suite.parse_peer_runs(["2", "pandas=1"], peers, parser) == {"copy": 2, "pandas": 1}
    with pytest.raises(SystemExit):
        suite.parse_peer_runs(["nosuch=1"], peers, parser)


def test_peak_rss_is_the_childs_own_not_the_parents() -> None:
    ballast = bytearray(300 * 2**20)  # the driver holds 300 MiB ...
    ballast[:: 2**12] = b"\1" * (len(ballast) // 2**12)
    done = run_child([sys.executable, "-c", "print('ok')"])
    assert done["status"] == 0 and done["stdout"] == "ok\n"
    assert done["peak_rss_mib"] < 100  # ... and a bare interpreter is not charged for it
    assert len(ballast)
