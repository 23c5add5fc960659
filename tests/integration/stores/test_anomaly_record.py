"""Recording incidents: calls inside one transaction behave as calls in their own."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.contracts.anomalies import INCIDENT_SCHEMA
from metrify.settings import Settings
from metrify.stores.anomalies import AnomalyStore
from metrify.stores.database import connect

UTC = dt.UTC
GAP_S = 6 * 3600


def _incident(start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "kind": ["vacancy"],
            "subject_type": ["meter"],
            "subject_id": ["M1"],
            "ts_start": [start],
            "ts_end": [end],
            "score": [0.8],
            "severity": ["low"],
            "detector": ["ewma_ratio"],
            "detector_version": ["1"],
            "evidence": ["{}"],
            "intervals": [10],
        },
        schema=INCIDENT_SCHEMA,
    )


OCTOBER = (
    dt.datetime(2013, 10, 7, 9, 30, tzinfo=UTC),
    dt.datetime(2013, 10, 9, 15, 30, tzinfo=UTC),
)
DECEMBER = (dt.datetime(2013, 12, 2, 9, 30, tzinfo=UTC), dt.datetime(2014, 1, 1, tzinfo=UTC))


def _spans(store: AnomalyStore) -> list[tuple[dt.datetime, dt.datetime]]:
    rows = store.conn.execute("SELECT ts_start, ts_end FROM anomalies ORDER BY ts_start")
    return [(start, end) for start, end in rows.fetchall()]  # type: ignore[misc]


def test_two_calls_in_one_transaction_record_two_incidents(settings: Settings) -> None:
    # Two vacancies two months apart (far beyond the merge gap) are two cases, whether
    # each call commits on its own or both run in a caller's transaction.
    with connect(settings) as conn:
        store = AnomalyStore(conn)
        with conn.transaction():
            store.record(_incident(*OCTOBER), merge_gap_s=GAP_S)
            store.record(_incident(*DECEMBER), merge_gap_s=GAP_S)
        assert _spans(store) == [OCTOBER, DECEMBER]


def test_a_continuation_in_the_same_transaction_extends_the_case(settings: Settings) -> None:
    # The second piece starts within the merge gap of the first: one case, both spans.
    follow = (OCTOBER[1] + dt.timedelta(hours=2), OCTOBER[1] + dt.timedelta(days=1))
    with connect(settings) as conn:
        store = AnomalyStore(conn)
        with conn.transaction():
            store.record(_incident(*OCTOBER), merge_gap_s=GAP_S)
            store.record(_incident(*follow), merge_gap_s=GAP_S)
            store.record(_incident(*DECEMBER), merge_gap_s=GAP_S)
        assert _spans(store) == [(OCTOBER[0], follow[1]), DECEMBER]
