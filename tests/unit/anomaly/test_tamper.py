"""A sustained drop beside a tamper event is urgent at once; other drops and kinds wait."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from metrify.anomaly.meters import tamper_raised

T = dt.datetime(2025, 1, 10, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def test_tamper_near_a_drop_makes_it_high_and_says_why() -> None:
    incidents = pl.DataFrame(
        {
            "kind": ["sustained_drop", "vacancy", "sustained_drop", "sustained_drop"],
            "subject_id": ["A", "A", "B", "C"],
            "ts_start": [T] * 4,
            "ts_end": [T + 48 * H] * 4,
            "severity": ["low"] * 4,
            "evidence": ['{"base_load_share":0.1}', "{}", "{}", "{}"],
        }
    )
    tampers = pl.DataFrame(
        {
            "meter_id": ["A", "B", "C"],
            # A: 5 h before its drop; B: 9 days before (outside 72 h); C: during it
            "ts": [T - 5 * H, T - 216 * H, T + H],
            "event": ["cover_open", "tamper", "magnetic_field"],
        }
    )
    out = tamper_raised(incidents, tampers, 72 * H)
    assert out["severity"].to_list() == ["high", "low", "low", "high"]
    evidence = [json.loads(e) for e in out["evidence"]]
    assert evidence[0] == {
        "base_load_share": 0.1,
        "tamper_event": "cover_open",
        "tamper_event_at": "2025-01-09T19:00:00Z",
    }
    assert evidence[1] == {} and evidence[2] == {}
    assert evidence[3]["tamper_event"] == "magnetic_field"
