"""The forecast service's storage on real PostgreSQL: the series a subject's history is
(checked against the files themselves), and stored forecasts written, replaced, read
back as the latest band and scored against the measured series."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import psycopg
import pytest

from integration.forecast.data import GB_FROM, load_gb, load_homes
from metrify.settings import Settings
from metrify.stores import forecasts, series
from metrify.stores.series import Subject

UTC = dt.UTC


def _app_conn(settings: Settings) -> psycopg.Connection:
    """The least-privileged role the code runs as: grants are part of what is tested."""
    return psycopg.connect(settings.database_url.get_secret_value(), autocommit=True)


@pytest.mark.realdata
def test_histories_are_the_stored_series(settings: Settings, tmp_path: Path) -> None:
    gb = load_gb(tmp_path)
    homes = load_homes(tmp_path)
    with _app_conn(settings) as conn:
        node = series.describe(conn, Subject("node", "GB"))
        assert (node.source, node.unit) == ("grid", "MW")
        got = series.history(conn, node, GB_FROM, GB_FROM + dt.timedelta(days=14))
        want = gb.filter(pl.col("ts") < GB_FROM + dt.timedelta(days=14))
        assert got["ts"].to_list() == want["ts"].to_list()
        assert got["value"].to_list() == pytest.approx(want["value"].to_list())

        meter = homes.meters[0]
        described = series.describe(conn, Subject("meter", meter))
        assert (described.zone, described.station) == ("Europe/London", "LDN")
        end = dt.datetime(2013, 2, 1, tzinfo=UTC)
        got = series.history(conn, described, dt.datetime(2013, 1, 1, tzinfo=UTC), end)
        want = homes.kwh[meter].filter(pl.col("ts") < end)
        # VEE may reject a few readings (those buckets are left out): nearly all remain
        assert got.height >= 0.99 * want.height
        joined = got.join(want, on="ts", suffix="_file")
        assert joined.height == got.height
        assert (joined["value"] - joined["value_file"]).abs().max() < 1e-9  # type: ignore[operator]

        # the feeder without measurements of its own: the sum of its meters per bucket
        feeder = series.describe(conn, Subject("node", "F1"))
        assert (feeder.source, feeder.unit, feeder.station) == ("aggregates", "kWh", "LDN")
        day = dt.datetime(2013, 2, 5, tzinfo=UTC)
        got = series.history(conn, feeder, day, day + dt.timedelta(days=1))
        frames = [h.filter(pl.col("ts").is_between(day, day + dt.timedelta(days=1), "left"))
                  for h in homes.kwh.values()]  # fmt: skip
        want = pl.concat(frames).group_by("ts").agg(pl.col("value").sum()).sort("ts")
        assert got.height == 48
        assert got["value"].to_list() == pytest.approx(want["value"].to_list(), abs=1e-6)

        many = series.meter_histories(conn, homes.meters[:2], day, day + dt.timedelta(days=1))
        assert many["meter_id"].unique().sort().to_list() == sorted(homes.meters[:2])

        weather = series.weather(conn, "LDN", day, day + dt.timedelta(days=1))
        assert weather is not None and weather.height == 24

        assert series.group_subjects(conn) == [
            Subject("fleet", "all"),
            Subject("node", "F1"),
            Subject("node", "GB"),
        ]
        for unknown in (Subject("meter", "nope"), Subject("node", "nope"),
                        Subject("segment", "nope"), Subject("region", "west")):  # fmt: skip
            with pytest.raises(series.UnknownSubject):
                series.describe(conn, unknown)


def _issue(issued: dt.datetime, values: list[float], model: str = "m") -> pl.DataFrame:
    start = dt.datetime(2013, 4, 2, tzinfo=UTC)
    return pl.DataFrame(
        {
            "subject_type": "node",
            "subject_id": "GB",
            "model": model,
            "horizon": "day-ahead",
            "issued_at": issued,
            "target_ts": [start + dt.timedelta(minutes=30 * i) for i in range(len(values))],
            "p10": [v - 1000 for v in values],
            "p50": values,
            "p90": [v + 1000 for v in values],
        }
    )


@pytest.mark.realdata
def test_issues_replace_read_and_score(settings: Settings, tmp_path: Path) -> None:
    gb = load_gb(tmp_path)
    early = dt.datetime(2013, 4, 1, 10, tzinfo=UTC)
    late = dt.datetime(2013, 4, 1, 22, tzinfo=UTC)
    subject = Subject("node", "GB")
    start = dt.datetime(2013, 4, 2, tzinfo=UTC)
    end = start + dt.timedelta(days=1)
    with _app_conn(settings) as conn:
        assert forecasts.write(conn, _issue(early, [30000.0] * 48)) == 48
        # the same issue again, shorter: it replaces the first run wholly
        assert forecasts.write(conn, _issue(early, [31000.0] * 40)) == 40
        got = forecasts.read(conn, subject, model="m", horizon="day-ahead", start=start, end=end)
        assert [p.p50 for p in got] == [31000.0] * 40
        # a later issue of the first 10 targets: latest per target, the given issue on ask
        forecasts.write(conn, _issue(late, [32000.0] * 10))
        got = forecasts.read(conn, subject, model="m", horizon="day-ahead", start=start, end=end)
        assert [p.p50 for p in got] == [32000.0] * 10 + [31000.0] * 30
        assert [p.issued_at for p in got] == [late] * 10 + [early] * 30
        only = forecasts.read(conn, subject, model="m", horizon="day-ahead", start=start,
                              end=end, issued_at=early)  # fmt: skip
        assert [p.p50 for p in only] == [31000.0] * 40
        assert forecasts.models(conn, subject, "day-ahead") == ["m"]
        assert forecasts.issues(conn, subject, "m", "day-ahead") == [late, early]

        scored = forecasts.score(
            conn, series.describe(conn, subject), horizon="day-ahead", start=start, end=end
        )
    # independently: the latest forecast of each target against the file's demand
    actual = gb.filter(pl.col("ts").is_between(start, end, "left"))["value"].to_list()[:40]
    p50 = [32000.0] * 10 + [31000.0] * 30
    errors = [abs(a - f) for a, f in zip(actual, p50, strict=True)]
    (only_model,) = scored
    assert only_model.n == 40
    assert only_model.mae == pytest.approx(sum(errors) / 40)
    assert only_model.mape == pytest.approx(
        100 * sum(e / a for e, a in zip(errors, actual, strict=True)) / 40
    )

    def loss(a: float, f: float, q: float) -> float:
        return max(q * (a - f), (q - 1) * (a - f))

    pin = [
        (loss(a, f - 1000, 0.1) + loss(a, f, 0.5) + loss(a, f + 1000, 0.9)) / 3
        for a, f in zip(actual, p50, strict=True)
    ]
    assert only_model.pinball == pytest.approx(sum(pin) / 40)
    inside = [f - 1000 <= a <= f + 1000 for a, f in zip(actual, p50, strict=True)]
    assert only_model.coverage_p10_p90 == pytest.approx(sum(inside) / 40)
