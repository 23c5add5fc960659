"""The register derivation on its own (no store): several meters, irregular reads
apportioned linearly, daily reads to hours, batches continued through the carry, reads
out of order and conflicting. Expected values are worked out by hand or with numpy."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.contracts.records import READING, Quality
from metrify.sources.registers import FLAGS, derive_intervals, empty_carry

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
EST = int(Quality.ESTIMATED)


def _reads(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    """(meter, seconds after T0, register kWh) as decoded reads."""
    frame = pl.DataFrame(
        {
            "meter_id": [m for m, _, _ in rows],
            "ts": [T0 + dt.timedelta(seconds=s) for _, s, _ in rows],
            "register_kwh": [v for _, _, v in rows],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    missing = [pl.lit(None, dtype=t).alias(n) for n, t in READING.schema.items() if n not in frame]
    return (
        frame.with_columns(missing)
        .select(list(READING.schema))
        .with_columns(_line=pl.int_range(1, pl.len() + 1))
    )


def _hours(frame: pl.DataFrame, meter: str) -> list[tuple[float, float, int]]:
    part = frame.filter(pl.col("meter_id") == meter).sort("ts")
    hours = [(t - T0).total_seconds() / 3600 for t in part["ts"]]
    return list(
        zip(hours, part["import_kwh"].round(9).to_list(), part[FLAGS].to_list(), strict=True)
    )


def test_irregular_reads_are_apportioned_linearly_per_meter() -> None:
    """A: reads at 00:00, 01:30, 03:00 (1.5 kWh per read span, so 1 kWh per hour);
    B, interleaved in the file, reads on the hour."""
    rows = [("A", 0, 10.0), ("B", 0, 0.0), ("A", 5400, 11.5), ("B", 3600, 2.0)]
    rows += [("A", 10800, 13.0), ("B", 7200, 5.0)]
    out = derive_intervals(_reads(rows), empty_carry(), interval_s=3600)
    # A's 01:00 and 02:00 ends lie 30 minutes from any read: apportioned, estimated
    assert _hours(out.records, "A") == [(0.0, 1.0, EST), (1.0, 1.0, EST), (2.0, 1.0, EST)]
    assert _hours(out.records, "B") == [(0.0, 2.0, 0), (1.0, 3.0, 0)]
    registers = out.records.filter(pl.col("meter_id") == "B")["register_kwh"].to_list()
    assert registers == [2.0, 5.0]
    assert out.rejects.height == 0


def test_daily_reads_to_hours_keep_the_day_total() -> None:
    days = np.array([100.0, 124.0, 172.0])
    rows = [("G", i * 86400, v) for i, v in enumerate(days)]
    out = derive_intervals(_reads(rows), empty_carry(), interval_s=3600)
    energy = out.records.sort("ts")["import_kwh"].to_numpy()
    assert len(energy) == 48
    assert energy[:24] == pytest.approx(np.full(24, (days[1] - days[0]) / 24))
    assert energy[24:] == pytest.approx(np.full(24, (days[2] - days[1]) / 24))
    # hours with no read at both ends are estimates; the day's last hour ends on a read
    # but starts 23 hours after the one before it
    assert (out.records[FLAGS] & EST != 0).all()


@pytest.mark.parametrize("cut", [1, 2, 3, 5])
def test_batches_continue_through_the_carry(cut: int) -> None:
    """Reads every 40 minutes to hours, split into two batches anywhere: the same
    intervals as in one batch."""
    values = np.cumsum(np.arange(1.0, 9.0))
    rows = [("A", i * 2400, float(v)) for i, v in enumerate(values)]
    whole = derive_intervals(_reads(rows), empty_carry(), interval_s=3600).records
    first = derive_intervals(_reads(rows[:cut]), empty_carry(), interval_s=3600)
    second = derive_intervals(_reads(rows[cut:]), first.carry, interval_s=3600)
    parts = pl.concat([first.records, second.records]).sort("ts")
    assert parts["ts"].to_list() == whole.sort("ts")["ts"].to_list()
    assert parts["import_kwh"].to_numpy() == pytest.approx(
        whole.sort("ts")["import_kwh"].to_numpy()
    )
    assert parts["import_kwh"].sum() == pytest.approx(values[6] - values[0])  # 4 whole hours


def test_late_and_conflicting_reads_are_rejected_with_their_lines() -> None:
    first = derive_intervals(
        _reads([("A", 0, 1.0), ("A", 3600, 2.0)]), empty_carry(), interval_s=3600
    )
    rows = [
        ("A", 3600, 2.0),
        ("A", 1800, 1.5),
        ("A", 7200, 3.0),
        ("A", 7200, 3.5),
        ("A", 10800, 4.0),
    ]
    out = derive_intervals(_reads(rows), first.carry, interval_s=3600)
    assert sorted(out.rejects.select("line", "reason").rows()) == [
        (
            2,
            "register read at or before the meter's previous read "
            "(a meter's reads must come in time order)",
        ),
        (3, "conflicting register read at the same time"),
    ]
    assert out.repeats == 1  # the carried 01:00 read sent again
    assert _hours(out.records, "A") == [(1.0, 1.5, 0), (2.0, 0.5, 0)]


def test_meter_groups_and_time_major_order_give_the_same_intervals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reads listed time by time (every meter at 00:00, then at 00:30, ...) are sorted
    per meter; a batch whose (meter, time) key would not fit one integer is derived a
    group of meters at a time. Each gives what meter-by-meter order in one key gives."""
    rng = np.random.default_rng(7)
    meters = [f"M{i}" for i in range(5)]
    totals = {m: np.cumsum(rng.random(12)) for m in meters}
    by_meter = [(m, i * 1800, float(totals[m][i])) for m in meters for i in range(12)]
    by_time = [(m, i * 1800, float(totals[m][i])) for i in range(12) for m in meters]
    plain = derive_intervals(_reads(by_meter), empty_carry(), interval_s=3600).records
    mixed = derive_intervals(_reads(by_time), empty_carry(), interval_s=3600).records
    from metrify.sources import registers

    monkeypatch.setattr(registers, "_KEY_ROOM", 3 * 12 * 1800e6)  # about two meters a group
    grouped = derive_intervals(_reads(by_meter), empty_carry(), interval_s=3600).records
    for other in (mixed, grouped):
        assert other.sort("meter_id", "ts").equals(plain.sort("meter_id", "ts"))
    for m in meters:  # 00:00 to 05:00: five whole hours from reads on the hour
        hours = plain.filter(pl.col("meter_id") == m)["import_kwh"].to_numpy()
        assert hours == pytest.approx(np.diff(totals[m][::2]))


def test_reference_widths_tell_a_wrap_from_an_exchange() -> None:
    """Two meters fall from 999.5 to 0.5 kWh: the one whose reference row gives a
    3-digit kWh register wrapped (1 kWh used; it keeps its register, VEE knows the
    width); the other, of unknown width, below what a wrap is inferred at, was
    exchanged (0.5 kWh since zero, flagged)."""
    rows = [(m, s, v) for m in ("W", "X") for s, v in ((0, 999.0), (3600, 999.5), (7200, 0.5))]
    widths = pl.DataFrame({"meter_id": ["W"], "wrap_kwh": [1000.0]})
    out = derive_intervals(
        _reads(rows), empty_carry(), interval_s=3600, keep_wrap_register=False, widths=widths
    )
    roll, mismatch = int(Quality.REGISTER_ROLLOVER), int(Quality.REGISTER_MISMATCH)
    assert _hours(out.records, "W") == [(0.0, 0.5, 0), (1.0, 1.0, roll)]
    assert _hours(out.records, "X") == [(0.0, 0.5, 0), (1.0, 0.5, mismatch)]
    kept = out.records.sort("meter_id", "ts")["register_kwh"].to_list()
    assert kept == [999.5, 0.5, 999.5, 0.5]


def test_energy_between_reads_keeps_the_reads_decimals() -> None:
    """Reads written to the Wh (three decimals of kWh): each hour's energy is the exact
    difference of the texts, 0.222 and 1.001, not what binary floating point leaves of
    ``1234.789 - 1234.567`` (0.22199999999998). Energy apportioned between reads is a
    share, finer than the register, and keeps its digits."""
    rows = [("A", 0, 1234.567), ("A", 3600, 1234.789), ("A", 7200, 1235.790)]
    rows += [("B", 0, 10.001), ("B", 5400, 11.002)]  # B: one span over 1.5 hours
    out = derive_intervals(_reads(rows), empty_carry(), interval_s=3600)
    a = out.records.filter(pl.col("meter_id") == "A").sort("ts")["import_kwh"].to_list()
    assert a == [0.222, 1.001]
    assert 1234.789 - 1234.567 != 0.222  # what the subtraction alone would store
    b = out.records.filter(pl.col("meter_id") == "B").sort("ts")["import_kwh"].to_list()
    assert b[0] == pytest.approx(1.001 / 1.5 * 1.0)
    assert round(b[0], 3) != b[0]  # a share: not cut to the register's Wh


def _marked(reads: pl.DataFrame, estimated: list[int]) -> pl.DataFrame:
    """``reads`` with the source's estimate mark (the decoder's bit) on rows ``estimated``."""
    bits = [EST if i in estimated else 0 for i in range(reads.height)]
    return reads.with_columns(pl.Series(FLAGS, bits, dtype=pl.Int32))


@pytest.mark.parametrize("cut", [None, 2, 3, 4])
def test_an_estimated_read_marks_the_intervals_it_bounds(cut: int | None) -> None:
    """Hourly reads 0..6 h, the 3 h read estimated by the source: the hours ending and
    starting at it (2-3 and 3-4) are estimates, the others measured, wherever the reads
    are cut into batches (the mark travels with the carried read)."""
    values = [100.0, 101.0, 103.0, 106.0, 110.0, 115.0, 121.0]
    reads = _marked(_reads([("H", i * 3600, v) for i, v in enumerate(values)]), [3])
    if cut is None:
        out = derive_intervals(reads, empty_carry(), interval_s=3600).records
    else:
        first = derive_intervals(reads[:cut], empty_carry(), interval_s=3600)
        second = derive_intervals(reads[cut:], first.carry, interval_s=3600)
        out = pl.concat([first.records, second.records])
    steps = np.diff(values)
    expected = [(float(h), float(steps[h]), EST if h in (2, 3) else 0) for h in range(6)]
    assert _hours(out, "H") == expected


def _local_reads(meter: str, zone: str, first: dt.date, values: list[float], hours: int = 24):
    """Reads every ``hours`` hours of ``zone``'s wall clock from ``first``'s midnight."""
    from zoneinfo import ZoneInfo

    start = dt.datetime(first.year, first.month, first.day)
    times = [
        (start + dt.timedelta(hours=i * hours)).replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
        for i in range(len(values))
    ]
    return _reads(
        [(meter, int((t - T0).total_seconds()), v) for t, v in zip(times, values, strict=True)]
    ), times


BERLIN = pl.DataFrame({"meter_id": ["DE"], "timezone": ["Europe/Berlin"]})


@pytest.mark.parametrize("cut", [None, 4, 9])
def test_daily_reads_at_local_midnight_give_measured_local_days(cut: int | None) -> None:
    """Reads at Berlin's midnights across the spring change (a 23-hour day): with the
    meter's zone each day runs from one read to the next, measured, 23 hours included;
    the cut into batches changes nothing."""
    values = [100.0 + 3.0 * i + (i % 3) for i in range(12)]
    reads, times = _local_reads("DE", "Europe/Berlin", dt.date(2025, 3, 25), values)
    if cut is None:
        out = derive_intervals(reads, empty_carry(), interval_s=86400, zones=BERLIN).records
    else:
        first = derive_intervals(reads[:cut], empty_carry(), interval_s=86400, zones=BERLIN)
        second = derive_intervals(reads[cut:], first.carry, interval_s=86400, zones=BERLIN)
        out = pl.concat([first.records, second.records])
    out = out.sort("ts")
    assert out["ts"].to_list() == times[:-1]
    assert out["import_kwh"].to_list() == pytest.approx(np.diff(values).tolist())
    assert out[FLAGS].to_list() == [0] * 11
    assert out["register_kwh"].to_list() == values[1:]


def test_without_the_zone_local_midnights_are_apportioned_to_utc_days() -> None:
    values = [100.0 + 3.0 * i for i in range(6)]
    # (in summer: two hours from UTC's midnight, beyond the reads' 5 % tolerance)
    reads, _ = _local_reads("DE", "Europe/Berlin", dt.date(2025, 7, 10), values)
    out = derive_intervals(reads, empty_carry(), interval_s=86400).records.sort("ts")
    assert [t.hour for t in out["ts"].to_list()] == [0] * 4  # UTC midnights between reads
    assert (out[FLAGS] & EST != 0).all()


def test_hourly_reads_to_local_days_across_the_autumn_change() -> None:
    """Hourly reads of Berlin's wall clock (the repeated hour read twice) derived to days:
    the 25-hour day holds its 25 hours' energy, every day starts at local midnight and
    the total is the register's advance."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2025, 10, 24, tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime(2025, 10, 29, tzinfo=zone).astimezone(dt.UTC)
    hours = int((end - start).total_seconds() // 3600)
    values = [500.0 + 0.25 * i for i in range(hours + 1)]  # 0.25 kWh every UTC hour
    reads = _reads(
        [("DE", int((start - T0).total_seconds()) + 3600 * i, v) for i, v in enumerate(values)]
    )
    out = derive_intervals(reads, empty_carry(), interval_s=86400, zones=BERLIN).records.sort("ts")
    starts = [dt.datetime(2025, 10, d, tzinfo=zone).astimezone(dt.UTC) for d in range(24, 29)]
    assert out["ts"].to_list() == starts
    assert out["import_kwh"].to_list() == pytest.approx([6.0, 6.0, 6.25, 6.0, 6.0])
    assert out[FLAGS].to_list() == [0] * 5
    assert out["import_kwh"].sum() == pytest.approx(values[-1] - values[0])


def test_hours_of_a_half_hour_zone_follow_its_clock_without_daylight_saving_only() -> None:
    """Hourly reads on Kolkata's wall clock (half past the UTC hour) give measured hours
    on that clock; in Adelaide (half hours, with daylight saving) hours across the
    clock change stay on UTC's grid, never a repeated or skipped wall hour."""
    values = [10.0 + 0.5 * i for i in range(30)]
    reads, times = _local_reads("IN", "Asia/Kolkata", dt.date(2025, 3, 3), values, hours=1)
    india = pl.DataFrame({"meter_id": ["IN"], "timezone": ["Asia/Kolkata"]})
    out = derive_intervals(reads, empty_carry(), interval_s=3600, zones=india).records.sort("ts")
    assert out["ts"].to_list() == times[:-1]
    assert out[FLAGS].to_list() == [0] * 29
    # Adelaide moved its clocks forward on 5 October 2025 at 02:00 (+09:30 -> +10:30)
    reads, _ = _local_reads("AU", "Australia/Adelaide", dt.date(2025, 10, 4), values, hours=1)
    adelaide = pl.DataFrame({"meter_id": ["AU"], "timezone": ["Australia/Adelaide"]})
    out = derive_intervals(reads, empty_carry(), interval_s=3600, zones=adelaide).records
    steps = out.sort("ts")["ts"].diff().drop_nulls().unique().to_list()
    assert steps == [dt.timedelta(hours=1)]
    assert [t.minute for t in out["ts"].to_list()] == [0] * out.height
