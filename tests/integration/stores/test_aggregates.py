"""Energy aggregates stay equal to a from-scratch recomputation under late data,
corrections, operator edits, meters moving between groups and meters of several
commodities (electricity, gas, water) in one group, changing commodity too.

Expected values are computed here from the stored readings and meters with Polars and
``zoneinfo`` (not with the aggregate SQL): 30-minute UTC buckets, group sums by the
meters' current node, region, tariff and commodity, and local days by each instant's
offset.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from metrify.contracts.records import METER, READING
from metrify.pipeline.edit import edit_readings
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from metrify.stores import aggregates
from support.database import clear_tables
from support.pipeline import submit_frames

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 29, 0, tzinfo=UTC)  # London springs forward on the 30th
METERS = ("A", "B", "C")
NODES = ("N1", "N2")
REGIONS = ("north", "south")
TARIFFS = ("std", "tou")
COMMODITIES = ("electricity", "gas", "water")
#: the commodity each meter starts with: one group holds electricity and water
FIRST_COMMODITY = {"A": "electricity", "B": "water", "C": "electricity"}
HALF_HOUR = dt.timedelta(minutes=30)


def _readings(meter: str, first: int, count: int, value: float) -> pl.DataFrame:
    """``count`` half-hours of ``meter`` from half-hour ``first`` after T0, as raw rows;
    meter C (only) exports too, so some groups have an export and others none."""
    rows = {
        "meter_id": [meter] * count,
        "ts": [(T0 + (first + i) * HALF_HOUR).isoformat() for i in range(count)],
        "interval_s": ["1800"] * count,
        "import_kwh": [str(round(value + 0.01 * i, 3)) for i in range(count)],
    }
    if meter == "C":
        rows["export_kwh"] = [str(round(value / 4, 3))] * count
    return pl.DataFrame(rows)


def _meter(
    meter: str, node: str, region: str, tariff: str, commodity: str | None = None
) -> pl.DataFrame:
    """A meter's reference row; without ``commodity`` the stored one is kept."""
    row = {
        "meter_id": [meter],
        "node_id": [node],
        "region": [region],
        "tariff": [tariff],
        "timezone": ["Europe/London"],
    }
    if commodity is not None:
        row["commodity"] = [commodity]
    return pl.DataFrame(row)


_ingest = st.tuples(
    st.just("ingest"),
    st.sampled_from(METERS),
    st.integers(0, 150),  # up to ~3 days in: later runs may land before earlier ones
    st.integers(1, 60),
    st.floats(0.0, 5.0).map(lambda v: round(v, 2)),
)
_edit = st.tuples(
    st.just("edit"),
    st.sampled_from(METERS),
    st.integers(0, 150),
    st.integers(1, 12),
    st.floats(0.0, 3.0).map(lambda v: round(v, 2)),
)
_move = st.tuples(
    st.just("move"),
    st.sampled_from(METERS),
    st.sampled_from(NODES),
    st.sampled_from(REGIONS),
    st.sampled_from(TARIFFS),
)
#: readings deleted by hand (SQL): buckets may lose their last reading
_delete = st.tuples(
    st.just("delete"), st.sampled_from(METERS), st.integers(0, 150), st.integers(1, 12)
)
#: a meter's commodity corrected in reference data: its buckets change commodity in
#: every group, the fleet included
_recommodity = st.tuples(
    st.just("recommodity"), st.sampled_from(METERS), st.sampled_from(COMMODITIES)
)
_refresh = st.tuples(st.just("refresh"))
STEPS = st.lists(
    st.one_of(_ingest, _ingest, _edit, _move, _delete, _recommodity, _refresh),
    min_size=2,
    max_size=8,
)


def _apply(settings: Settings, database_url: str, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "ingest":
        _, meter, first, count, value = step
        submit_frames(settings, READING, [_readings(meter, first, count, value)])
    elif kind == "edit":
        _, meter, first, count, value = step
        with open_session(settings) as session:
            pipeline = session.pipeline(READING)
            try:
                edit_readings(
                    pipeline,
                    meter,
                    T0 + first * HALF_HOUR,
                    T0 + (first + count) * HALF_HOUR,
                    value=value,
                    reestimate=False,
                    reason="test",
                    operator="tester",
                )
            except Exception as exc:  # no stored rows there yet: nothing to edit
                assert "no stored readings" in str(exc)
            pipeline.close()
    elif kind == "delete":
        _, meter, first, count = step
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "DELETE FROM readings WHERE meter_id = %s AND ts >= %s AND ts < %s",
                (meter, T0 + first * HALF_HOUR, T0 + (first + count) * HALF_HOUR),
            )
    elif kind == "move":
        _, meter, node, region, tariff = step
        submit_frames(settings, METER, [_meter(meter, node, region, tariff)])
    elif kind == "recommodity":
        _, meter, commodity = step
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE meters SET commodity = %s WHERE meter_id = %s", (commodity, meter))
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            aggregates.refresh(conn)


def _expected(conn: psycopg.Connection[Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Meter and group buckets recomputed from the readings and meters as stored."""
    cur = conn.execute(
        "SELECT meter_id, ts, interval_s, import_kwh, export_kwh, quality, status FROM readings"
    )
    schema = {
        "meter_id": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        "interval_s": pl.Int64,
        "import_kwh": pl.Float64,
        "export_kwh": pl.Float64,
        "quality": pl.Int64,
        "status": pl.String,
    }
    readings = pl.DataFrame(cur.fetchall(), schema=schema, orient="row")
    kept = pl.col("status") != "rejected"
    meters = (
        readings.with_columns(bucket=pl.col("ts").dt.truncate("30m"))
        .group_by("meter_id", "bucket")
        .agg(
            import_kwh=pl.col("import_kwh").filter(kept).sum(),
            export_kwh=pl.when(pl.col("export_kwh").filter(kept).count() > 0).then(
                pl.col("export_kwh").filter(kept).sum()
            ),
            peak_kw=(pl.col("import_kwh") * 3600.0 / pl.col("interval_s")).filter(kept).max(),
            n_present=((pl.col("quality") & 1) == 0).sum(),
            n_estimated=(pl.col("status") == "estimated").sum(),
            n_suspect=(pl.col("status") == "suspect").sum(),
            n_rejected=(pl.col("status") == "rejected").sum(),
            n_missing=((pl.col("quality") & 1) != 0).sum(),
        )
    )
    refs = pl.DataFrame(
        conn.execute("SELECT meter_id, node_id, region, tariff, commodity FROM meters").fetchall(),
        schema=["meter_id", "node", "region", "segment", "commodity"],
        orient="row",
    ).with_columns(fleet=pl.lit("all"), commodity=pl.col("commodity").fill_null("electricity"))
    groups = []
    for dim in ("node", "region", "segment", "fleet"):
        part = (
            meters.join(
                refs.select("meter_id", "commodity", pl.col(dim).alias("key")), on="meter_id"
            )
            .filter(pl.col("key").is_not_null())
            .group_by("key", "commodity", "bucket")
            .agg(
                pl.len().alias("meters"),
                pl.col("import_kwh").sum(),
                pl.when(pl.col("export_kwh").count() > 0).then(pl.col("export_kwh").sum()),
                *(pl.col(c).sum() for c in aggregates.COUNTS),
            )
            .with_columns(dim=pl.lit(dim), peak_kw=pl.col("import_kwh") / 0.5)
        )
        groups.append(part)
    return meters, pl.concat(groups, how="vertical_relaxed")


def _stored(conn: psycopg.Connection[Any], table: str, keys: list[str]) -> pl.DataFrame:
    cols = [*keys, "import_kwh", "export_kwh", "peak_kw", *aggregates.COUNTS]
    if table == "agg_group_30m":
        cols.append("meters")
    cur = conn.execute(f"SELECT {', '.join(cols)} FROM {table}")
    return pl.DataFrame(cur.fetchall(), schema=cols, orient="row", infer_schema_length=None)


def _same(stored: pl.DataFrame, expected: pl.DataFrame, keys: list[str]) -> None:
    cols = stored.columns
    a = stored.sort(keys)
    b = expected.select(cols).sort(keys)
    assert a.height == b.height
    for c in cols:
        left, right = a[c].to_list(), b[c].to_list()
        if a[c].dtype.is_float() or b[c].dtype.is_float():
            assert [v is None for v in left] == [v is None for v in right], c
            pairs = [(x, y) for x, y in zip(left, right, strict=True) if x is not None]
            assert [x for x, _ in pairs] == pytest.approx([y for _, y in pairs], rel=1e-9), c
        else:
            assert [str(v) for v in left] == [str(v) for v in right], c


@hsettings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
# the difference path: a group bucket changed after it was built, with and without an
# exporting member; then a move, which sums a group-day again
@example(
    steps=[
        ("ingest", "A", 0, 8, 1.0),
        ("ingest", "C", 4, 8, 2.0),
        ("refresh",),
        ("edit", "A", 2, 2, 0.5),
        ("ingest", "C", 6, 2, 3.0),
        ("refresh",),
        ("move", "C", "N1", "north", "std"),
        ("edit", "C", 5, 1, 0.0),
        ("refresh",),
        ("delete", "A", 0, 2),
    ]
)
# the water meter B on A's node, then turned to gas after its buckets were built and
# changed again before a refresh: every group (the fleet too) moves it between commodities
@example(
    steps=[
        ("ingest", "A", 0, 8, 1.0),
        ("ingest", "B", 0, 8, 2.0),
        ("move", "B", "N1", "north", "std"),
        ("refresh",),
        ("recommodity", "B", "gas"),
        ("ingest", "B", 4, 8, 0.5),
        ("refresh",),
        ("recommodity", "B", "electricity"),
        ("edit", "B", 1, 2, 3.0),
    ]
)
def test_aggregates_equal_a_recomputation(
    settings: Settings, database_url: str, steps: list[tuple[Any, ...]]
) -> None:
    clear_tables(database_url)
    for meter, node, region, tariff in zip(
        METERS, NODES * 2, REGIONS * 2, TARIFFS * 2, strict=False
    ):
        submit_frames(
            settings, METER, [_meter(meter, node, region, tariff, FIRST_COMMODITY[meter])]
        )
    for step in steps:
        _apply(settings, database_url, step)
    with psycopg.connect(database_url, autocommit=True) as conn:
        aggregates.refresh(conn)
        meters, groups = _expected(conn)
        _same(
            _stored(conn, "agg_meter_30m", ["meter_id", "bucket"]), meters, ["meter_id", "bucket"]
        )
        _same(
            _stored(conn, "agg_group_30m", ["dim", "key", "commodity", "bucket"]),
            groups,
            ["dim", "key", "commodity", "bucket"],
        )
        assert not aggregates.pending(conn)


def test_local_days_and_hours(settings: Settings, database_url: str) -> None:
    """Days and hours in a zone across a clock change, against zoneinfo: the local day
    of the change holds 46 half-hours, and hourly buckets start on local hours."""
    submit_frames(settings, METER, [_meter("A", "N1", "north", "std")])
    submit_frames(settings, READING, [_readings("A", 0, 4 * 48, 1.0)])
    zone = ZoneInfo("Europe/London")
    raw = _readings("A", 0, 4 * 48, 1.0).with_columns(
        pl.col("ts").str.to_datetime(time_zone="UTC"), pl.col("import_kwh").cast(pl.Float64)
    )
    by_day: dict[dt.date, tuple[float, int]] = {}
    for ts, kwh in raw.select("ts", "import_kwh").iter_rows():
        day = ts.astimezone(zone).date()
        total, n = by_day.get(day, (0.0, 0))
        by_day[day] = (total + kwh, n + 1)
    start = dt.datetime(2025, 3, 29, tzinfo=zone)
    end = dt.datetime(2025, 4, 1, tzinfo=zone)
    with psycopg.connect(database_url, autocommit=True) as conn:
        days = json.loads(aggregates.buckets(conn, "meter", "A", "1d", start, end, "Europe/London"))
        hours = json.loads(
            aggregates.buckets(conn, "node", "N1", "1h", start, end, "Europe/London")
        )
    for item in days + hours:
        item["start"] = dt.datetime.fromisoformat(item["start"])
    got = {d["start"].astimezone(zone).date(): (d["import_kwh"], d["present"]) for d in days}
    want = {d: v for d, v in by_day.items() if start.date() <= d < end.date()}
    assert got.keys() == want.keys()
    for day, (total, n) in want.items():
        assert got[day][0] == pytest.approx(total)
        assert got[day][1] == n
    assert got[dt.date(2025, 3, 30)][1] == 46  # the short day
    assert all(h["start"].astimezone(zone).minute == 0 for h in hours)
    assert len(hours) == 3 * 24 - 1


def test_group_answers_keep_commodities_apart(settings: Settings, database_url: str) -> None:
    """A feeder with an electricity meter (1 kWh per half-hour) and a water meter (2 m³
    per half-hour): the feeder's day is 48 kWh of electricity by default and 96 m³ of
    water when asked, never 144; a meter answers in its own commodity and unit."""
    submit_frames(settings, METER, [_meter("A", "N1", "north", "std", "electricity")])
    submit_frames(settings, METER, [_meter("B", "N1", "north", "std", "water")])
    for meter, value in (("A", 1.0), ("B", 2.0)):
        rows = _readings(meter, 0, 48, value).with_columns(import_kwh=pl.lit(str(value)))
        submit_frames(settings, READING, [rows])
    with psycopg.connect(database_url, autocommit=True) as conn:

        def ask(dim: aggregates.Dim, key: str, commodity: str | None) -> aggregates.Answered:
            return aggregates.answer(
                conn, dim, key, "1d", "2025-03-29", "2025-03-30", "UTC", "UTC", commodity
            )

        power, water = ask("node", "N1", None), ask("fleet", "all", "water")
        gas = ask("region", "north", "gas")
        own = ask("meter", "B", None)
        with pytest.raises(aggregates.BadQuery, match="measures water, not electricity"):
            ask("meter", "B", "electricity")
        with pytest.raises(aggregates.BadQuery, match="unknown commodity 'steam'"):
            ask("node", "N1", "steam")
    assert (power.commodity, power.unit) == ("electricity", "kWh")
    assert [b["import_kwh"] for b in json.loads(power.buckets)] == pytest.approx([48 * 1.0])
    assert (water.commodity, water.unit) == ("water", "m3")
    assert [b["import_kwh"] for b in json.loads(water.buckets)] == pytest.approx([48 * 2.0])
    assert json.loads(gas.buckets) == []
    assert (own.commodity, own.unit) == ("water", "m3")
    assert [b["present"] for b in json.loads(own.buckets)] == [48]
