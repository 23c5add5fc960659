"""The in-memory history window VEE judges batches against."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.contracts.records import READING
from metrify.quality.history import HISTORY_COLUMNS, HistoryCache

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 10, tzinfo=UTC)


def rows(meter: str, start: dt.datetime, n: int, step_h: float = 1.0) -> pl.DataFrame:
    stamps = [start + dt.timedelta(hours=step_h * i) for i in range(n)]
    data = {c: [None] * n for c in HISTORY_COLUMNS}
    data.update(
        meter_id=[meter] * n,
        ts=stamps,
        interval_s=[3600] * n,
        import_kwh=[float(i) for i in range(n)],
        quality=[0] * n,
        status=["valid"] * n,
        source=["test"] * n,
    )
    schema = {**READING.schema, "quality": pl.Int32(), "status": pl.String(), "source": pl.String()}
    return pl.DataFrame(data, schema=schema)


class Store:
    """Stands in for the database side: records what was asked, returns stored rows."""

    def __init__(self, stored: pl.DataFrame) -> None:
        self.stored = stored
        self.calls: list[list[str]] = []

    def load(self, ids: pl.Series, since: dt.datetime, until: dt.datetime) -> pl.DataFrame:
        self.calls.append(sorted(ids.to_list()))
        return self.stored.filter(
            pl.col("meter_id").is_in(ids.to_list()) & pl.col("ts").is_between(since, until)
        )


def batch(*meters: tuple[str, dt.datetime]) -> pl.DataFrame:
    """A batch's keys: one reading per (meter, ts)."""
    return pl.DataFrame(
        {"meter_id": [m for m, _ in meters], "ts": [t for _, t in meters]},
        schema={"meter_id": pl.String(), "ts": READING.schema["ts"]},
    )


def test_loads_each_meter_once_then_serves_from_memory() -> None:
    store = Store(rows("A", T0 - dt.timedelta(days=3), 72))
    cache = HistoryCache(store.load, days=7)
    got = cache.get(batch(("A", T0), ("B", T0)), T0)
    assert got.height == 72 and store.calls == [["A", "B"]]
    cache.remember(rows("A", T0, 24))  # what this process wrote next
    later = cache.get(batch(("A", T0 + dt.timedelta(days=1))), T0 + dt.timedelta(days=1))
    assert store.calls == [["A", "B"]]  # no second trip to the database
    assert later.height == 72 + 24


def test_coverage_is_per_meter_when_a_batch_mixes_times() -> None:
    # Partitions drain at their own pace: A is three days ahead of B in the stream.
    a0, b0 = T0 + dt.timedelta(days=3), T0
    store = Store(pl.concat([rows("A", a0 - dt.timedelta(days=10), 240), rows("B", b0, 1)]))
    cache = HistoryCache(store.load, days=7)
    first = cache.get(batch(("A", a0), ("B", b0)), a0)
    # each meter gets its own window: A's seven days before a0 (inclusive), not B's
    expected_a = rows("A", a0 - dt.timedelta(days=10), 240).filter(
        pl.col("ts") >= a0 - dt.timedelta(days=7)
    )
    assert first.filter(pl.col("meter_id") == "A").height == expected_a.height
    cache.remember(pl.concat([rows("A", a0, 1), rows("B", b0, 1)]))
    hour = dt.timedelta(hours=1)
    cache.get(batch(("A", a0 + hour), ("B", b0 + hour)), a0 + hour)
    assert len(store.calls) == 1  # B's older start does not send A back to the database


def test_window_is_trimmed_and_older_requests_go_to_the_database() -> None:
    store = Store(rows("A", T0 - dt.timedelta(days=30), 30 * 24))
    cache = HistoryCache(store.load, days=2)
    cache.get(batch(("A", T0)), T0)
    cache.remember(rows("A", T0, 48))  # two more days: the window slides
    assert cache.rows == 2 * 24 + 1  # newest ts minus two days, inclusive
    cache.get(batch(("A", T0 - dt.timedelta(days=3))), T0)
    assert len(store.calls) == 2  # older than what memory covers: asked again


def test_new_versions_replace_cached_ones_and_forget_clears() -> None:
    store = Store(rows("A", T0, 3))
    cache = HistoryCache(store.load, days=1)
    cache.get(batch(("A", T0 + dt.timedelta(days=1))), T0 + dt.timedelta(hours=2))
    corrected = rows("A", T0, 1).with_columns(import_kwh=pl.lit(9.0))
    cache.remember(corrected)
    got = cache.get(batch(("A", T0 + dt.timedelta(days=1))), T0 + dt.timedelta(hours=2))
    assert got.sort("ts")["import_kwh"].to_list() == [9.0, 1.0, 2.0]
    cache.forget()
    cache.get(batch(("A", T0 + dt.timedelta(days=1))), T0 + dt.timedelta(hours=2))
    assert len(store.calls) == 2


def test_a_batch_reach_picks_hours_and_keeps_verdicts() -> None:
    """Asked with a batch's reach, the cache hands over the recent hours and the same
    hours of earlier days, plus the whole window of a meter with a hole; VEE's verdicts
    on that are the verdicts on the whole window."""
    from metrify.quality.context import reach_of
    from metrify.quality.engine import run_vee
    from metrify.settings.vee import VeeConfig

    start = T0 - dt.timedelta(days=7)
    hourly = 7 * 24
    steady = rows("A", start, hourly).with_columns(
        import_kwh=(pl.col("import_kwh") % 5) * 0.1 + 0.05
    )
    holed = rows("B", start, hourly - 5).with_columns(import_kwh=pl.col("import_kwh") * 0.01 + 0.3)
    store = Store(pl.concat([steady, holed]))
    cache = HistoryCache(store.load, days=7)
    now = T0 + dt.timedelta(hours=3)
    batch_rows = (
        pl.concat([rows("A", T0, 3), rows("B", T0, 3)])
        .with_columns(import_kwh=pl.col("import_kwh") * 0.1 + 0.2, source=pl.lit("batch"))
        .select(*READING.fields, "source")
    )
    meters = pl.DataFrame({"meter_id": ["A", "B"], "timezone": ["UTC", "UTC"]})
    cfg = VeeConfig()
    reach = reach_of(batch_rows, meters, cfg, T0 - dt.timedelta(days=7))
    last = T0 + dt.timedelta(hours=2)
    lean = cache.get(batch_rows.select("meter_id", "ts"), last, reach)
    whole = cache.get(batch_rows.select("meter_id", "ts"), last)
    got_a = lean.filter(pl.col("meter_id") == "A")
    # A: the last 7 hours, then only the batch's hours (00..02 UTC) of the earlier days
    assert got_a.height < whole.filter(pl.col("meter_id") == "A").height / 2
    old_hours = set(got_a.filter(pl.col("ts") < reach.cut)["ts"].dt.hour().to_list())
    assert old_hours == {0, 1, 2}
    # B stopped five hours before the batch: its whole window comes along
    assert lean.filter(pl.col("meter_id") == "B").height == holed.height
    judged = run_vee(batch_rows, lean, meters, cfg, now, lean=True).sort("meter_id", "ts")
    expected = run_vee(batch_rows, whole, meters, VeeConfig(lean_context=False), now)
    assert judged.equals(expected.sort("meter_id", "ts"))
    assert judged.filter(pl.col("meter_id") == "B").height == 3 + 5  # gap rows in front


def test_each_meter_gets_its_own_window_and_late_rows_are_found_by_hour() -> None:
    """A live fleet's batch asks for every cached meter at slightly different times: each
    still gets exactly its own window. A corrected row filed late in an older day is
    found when the batch's hours are picked from that day."""
    from metrify.quality.context import Reach

    start = T0 - dt.timedelta(days=10)
    # A's readings run three hours further than B's: each batch row follows its last one
    stored = pl.concat([rows("A", start, 10 * 24 + 3), rows("B", start, 10 * 24)])
    cache = HistoryCache(Store(stored).load, days=7)
    a_at, b_at = T0 + dt.timedelta(hours=3), T0
    until = T0 + dt.timedelta(hours=3)
    keys = batch(("A", a_at), ("B", b_at))
    got = cache.get(keys, until)
    for meter, at in (("A", a_at), ("B", b_at)):
        want = stored.filter(
            (pl.col("meter_id") == meter)
            & pl.col("ts").is_between(at - dt.timedelta(days=7), until)
        )
        assert got.filter(pl.col("meter_id") == meter).sort("ts")["ts"].equals(want["ts"])
    # a correction of A's reading at 05:00 three days back, filed after newer rows
    fixed_at = T0 - dt.timedelta(days=3) + dt.timedelta(hours=5)
    cache.remember(
        stored.filter((pl.col("meter_id") == "A") & (pl.col("ts") == fixed_at)).with_columns(
            import_kwh=pl.lit(99.0)
        )
    )
    cut = T0 - dt.timedelta(hours=2)
    reach = Reach(cut, (5,), keys.with_columns(interval_s=pl.lit(3600), import_kwh=pl.lit(1.0)))
    lean = cache.get(keys, until, reach)
    old = lean.filter(pl.col("ts") < cut)
    assert set(old["ts"].dt.hour().to_list()) == {5}
    # every 05:00 of both meters' windows, each once, the corrected value among them
    want_old = stored.filter(
        (pl.col("ts").dt.hour() == 5)
        & (pl.col("ts") < cut)
        & (
            pl.col("ts")
            >= pl.when(pl.col("meter_id") == "A").then(a_at).otherwise(b_at) - dt.timedelta(days=7)
        )
    )
    assert old.height == want_old.height
    fixed = old.filter((pl.col("meter_id") == "A") & (pl.col("ts") == fixed_at))
    assert fixed["import_kwh"].to_list() == [99.0]
    # from the cut (22:00) on: A's 22:00 .. 02:00 and B's 22:00 .. 23:00
    assert lean.filter(pl.col("ts") >= cut).height == 5 + 2


def test_file_batches_filed_as_they_come_are_cut_as_the_whole_window_judges() -> None:
    """A file's batches (a day or more, in meter order) are kept as they come, not in
    time order. The next day-long batch cuts them by day, and a stream batch after it
    by hour; both are judged as against the whole window."""
    from metrify.quality.context import reach_of
    from metrify.quality.engine import run_vee
    from metrify.settings.vee import VeeConfig

    cfg, now = VeeConfig(), T0 + dt.timedelta(days=3)
    meters = pl.DataFrame({"meter_id": ["A", "B"], "timezone": ["UTC", "UTC"]})
    cache = HistoryCache(Store(rows("A", T0, 0)).load, days=7)

    def shaped(meter: str, start: dt.datetime, n: int, high: int | None = None) -> pl.DataFrame:
        frame = rows(meter, start, n).with_columns(
            import_kwh=0.2 + (pl.col("ts").dt.hour() % 6) * 0.05
        )
        if high is not None:  # one reading far above its hour's baseline: a spike
            frame = frame.with_columns(
                import_kwh=pl.when(pl.int_range(pl.len()) == high)
                .then(9.0)
                .otherwise(pl.col("import_kwh"))
            )
        return frame

    start = T0 - dt.timedelta(days=7)
    cache.remember(pl.concat([shaped("A", start, 7 * 24), shaped("B", start, 7 * 24)]))
    held = pl.concat([cache._days[d] for d in sorted(cache._days)])
    assert not held["ts"].is_sorted()  # filed in meter order, as written

    begin = T0
    for hours, spike_at in ((48, 30), (3, 1)):  # a two-day file batch, then a stream's
        fresh = pl.concat([shaped("A", begin, hours, spike_at), shaped("B", begin, hours)])
        batch_rows = fresh.select(*READING.fields, "source")
        reach = reach_of(batch_rows, meters, cfg, begin - dt.timedelta(days=7))
        assert len(reach.hours) == (24 if hours == 48 else 3)
        last = fresh["ts"].max()
        assert isinstance(last, dt.datetime)
        keys = batch_rows.select("meter_id", "ts")
        lean = cache.get(keys, last, reach)
        whole = cache.get(keys, last)
        assert lean.filter(~pl.col("_baseline_only"))["ts"].min() == reach.cut
        judged = run_vee(batch_rows, lean, meters, cfg, now, lean=True).sort("meter_id", "ts")
        expected = run_vee(batch_rows, whole, meters, VeeConfig(lean_context=False), now)
        assert judged.equals(expected.sort("meter_id", "ts"))
        spikes = judged.filter((pl.col("quality") & 8) != 0)
        assert spikes["ts"].to_list() == [begin + dt.timedelta(hours=spike_at)]
        cache.remember(fresh)
        begin += dt.timedelta(hours=hours)


def test_seen_names_the_keys_at_or_before_each_meters_newest_cached_reading() -> None:
    """What the store must upsert: keys not after the meter's newest cached (or loaded)
    reading; later keys, and meters with nothing cached, go in with a plain COPY."""
    store = Store(rows("B", T0 - dt.timedelta(hours=5), 3))  # B stored up to T0 - 3h
    cache = HistoryCache(store.load, days=7)
    cache.get(batch(("B", T0)), T0)
    cache.remember(rows("A", T0, 3))  # A written up to T0 + 2h
    asked = batch(
        ("A", T0 - dt.timedelta(hours=1)),  # before A's newest: may be stored
        ("A", T0 + dt.timedelta(hours=2)),  # A's newest itself
        ("A", T0 + dt.timedelta(hours=3)),  # after it: new
        ("B", T0 - dt.timedelta(hours=3)),  # B's newest loaded row
        ("B", T0 - dt.timedelta(hours=2)),  # after it: new
        ("C", T0),  # nothing cached for C
    )
    seen = cache.seen(asked)
    assert seen.columns == ["meter_id", "ts"]
    assert sorted(seen.iter_rows()) == [
        ("A", T0 - dt.timedelta(hours=1)),
        ("A", T0 + dt.timedelta(hours=2)),
        ("B", T0 - dt.timedelta(hours=3)),
    ]


def test_other_cached_meters_change_nothing_a_batch_is_handed() -> None:
    """A meter's context with a reach is the same whether the cache also holds other
    meters' windows (a load's earlier files) or only its own; and the cache of a load's
    first batch (nothing stored) hands over nothing, for every meter."""
    from metrify.quality.context import reach_of
    from metrify.settings.vee import VeeConfig

    start = T0 - dt.timedelta(days=7)
    hourly = 7 * 24
    mine = pl.concat(
        [
            rows("A", start, hourly).with_columns(import_kwh=(pl.col("import_kwh") % 5) * 0.1),
            rows("B", start, hourly - 5),  # a hole before the batch: its whole window
        ]
    )
    others = pl.concat([rows(f"X{i}", start, hourly) for i in range(3)])
    batch_rows = (
        pl.concat([rows("A", T0, 3), rows("B", T0, 3)])
        .with_columns(source=pl.lit("batch"))
        .select(*READING.fields, "source")
    )
    meters = pl.DataFrame({"meter_id": ["A", "B"], "timezone": ["UTC", "UTC"]})
    reach = reach_of(batch_rows, meters, VeeConfig(), start)
    last = T0 + dt.timedelta(hours=2)
    keys = batch_rows.select("meter_id", "ts")

    alone = HistoryCache(Store(mine).load, days=7)
    crowded = HistoryCache(Store(pl.concat([mine, others])).load, days=7)
    # the other meters' windows are in the cache before the batch asks
    crowded.get(others.select("meter_id", "ts").filter(pl.col("ts") == pl.col("ts").max()), last)
    got_alone, got_crowded = alone.get(keys, last, reach), crowded.get(keys, last, reach)
    assert got_alone.height > 0 and set(got_alone["meter_id"]) == {"A", "B"}
    assert got_crowded.equals(got_alone)

    empty = HistoryCache(Store(mine.clear()).load, days=7)
    got_empty = empty.get(keys, last, reach)
    assert got_empty.height == 0 and got_empty.columns == got_alone.columns
