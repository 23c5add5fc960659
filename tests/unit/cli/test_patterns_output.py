"""``metrify patterns run`` says why a run has no clusters."""

from __future__ import annotations

import dataclasses
import datetime as dt

from metrify.batch.patterns import Computed
from metrify.cli.patterns import run_line

START = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)


def _done(**changes: object) -> Computed:
    done = Computed(
        run_id=1,
        start=START,
        end=START + dt.timedelta(days=365),
        tz="UTC",
        meters=5,
        half_hours=87_596,
        shaped=5,
        clustered=0,
        k=None,
        segments=5,
        no_clustering="no k gives clusters of at least 5% of the households each",
    )
    return dataclasses.replace(done, **changes)  # type: ignore[arg-type]


def test_a_run_without_clusters_says_why() -> None:
    # five households with a year of complete days: the line said "0 of 5 with 30+
    # complete days clustered into k=None", as if none had the days
    line = run_line(_done(), 30)
    assert "5 with 30+ complete days, not clustered: no k gives clusters" in line
    assert "k=None" not in line and "0 of 5" not in line


def test_a_clustered_run_names_k() -> None:
    line = run_line(_done(clustered=94, shaped=99, k=2, no_clustering=None), 30)
    assert "94 of 99 with 30+ complete days clustered into k=2; 5 segments" in line


def test_the_default_period_is_a_calendar_year() -> None:
    # 365 days before 2013-02-01 is 2012-02-02: a leap year's period lost its first day
    from zoneinfo import ZoneInfo

    from metrify.cli.patterns import year_before

    london = ZoneInfo("Europe/London")
    assert year_before(dt.datetime(2013, 2, 1, tzinfo=london)) == dt.datetime(
        2012, 2, 1, tzinfo=london
    )
    assert year_before(dt.datetime(2024, 2, 29, tzinfo=dt.UTC)) == dt.datetime(
        2023, 2, 28, tzinfo=dt.UTC
    )
