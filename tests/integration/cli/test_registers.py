"""Interval energy derived from the cumulative registers of a real Dutch home (P1 port
reads, headerless ``epoch_seconds,Wh`` files): across a register rollover, chunks and
two loads; across a real meter reset of the PV production meter. Expected values are
computed from the raw file with numpy, not by the code under test."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import shared_data

runner = CliRunner()
ROLLOVER = 64
MISMATCH = 32


def _raw(name: str) -> np.ndarray:
    path = shared_data() / "dutch-home-registers" / name
    return np.loadtxt(path, delimiter=",", dtype=np.int64)


def _write(path: Path, rows: np.ndarray) -> Path:
    path.write_text("".join(f"{t},{v}\n" for t, v in rows.tolist()))
    return path


def _ingest(path: Path, *extra: str, interval: int = 3600) -> dict[str, object]:
    result = runner.invoke(
        app,
        [
            "ingest",
            "readings",
            str(path),
            "--no-header",
            "--map",
            "ts=#1",
            "--map",
            "register_kwh=#2",
            "--unit",
            "register_kwh=Wh",
            "--interval",
            str(interval),
            "--json",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def _ingest_export(path: Path, lines: list[str]) -> dict[str, Any]:
    """A head-end export (a header of OBIS codes, then ``lines``) loaded with no option
    but the hour to derive; its summary, after checking nothing was quarantined."""
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["ingest", "readings", str(path), "--interval", "3600", "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["quarantined"] == 0
    return summary


def _stored(conn: psycopg.Connection, meter: str) -> list[tuple]:
    return conn.execute(
        "SELECT extract(epoch FROM ts)::bigint, import_kwh, register_kwh, quality, status"
        " FROM readings WHERE meter_id = %s ORDER BY ts",
        (meter,),
    ).fetchall()


def test_a_seven_digit_register_rolls_over_across_chunks_and_loads(
    settings: Settings,
    conn: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The household's import register (Wh) as a 7-digit display shows it: it passes
    10,000,000 Wh in November 2022 and wraps. Loaded in two files, read in chunks of 200
    lines: the energy adds up to the register's real advance, the wrap is flagged on the
    one interval it falls in, and no interval is negative."""
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "200")
    raw = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_5yrhours.csv")
    cross = int(np.flatnonzero(raw[:, 1] >= 10_000_000)[0])
    part = raw[cross - 700 : cross + 500]
    shown = part.copy()
    shown[:, 1] %= 10_000_000
    first, second = shown[:600], shown[600:]
    summaries = [
        _ingest(_write(tmp_path / name, rows), "--set", "meter_id=NL-1", "--register-digits", "7")
        for name, rows in (("a.csv", first), ("b.csv", second))
    ]
    rows = _stored(conn, "NL-1")
    ts = np.array([r[0] for r in rows])
    energy = np.array([r[1] for r in rows])
    # every hour from the first read to the last, each derived once
    assert ts[0] == part[0, 0] and ts[-1] == part[-1, 0] - 3600
    assert len(rows) == (part[-1, 0] - part[0, 0]) // 3600
    assert np.all(np.diff(ts) == 3600)
    assert energy.min() >= 0
    assert energy.sum() == pytest.approx((part[-1, 1] - part[0, 1]) / 1000, abs=1e-6)
    # the hour whose reads straddle the wrap, and only it, carries the rollover bit
    wrap_read = part[int(np.flatnonzero(np.diff(shown[:, 1]) < 0)[0]) + 1, 0]
    wrapped = [r[0] for r in rows if r[3] & ROLLOVER]
    assert wrapped == [wrap_read - 3600]
    # where a read lies on an interval's end, the register is kept as read
    by_end = dict(zip(shown[:, 0].tolist(), (shown[:, 1] / 1000).tolist(), strict=True))
    kept = [(r[2], by_end[r[0] + 3600]) for r in rows if r[0] + 3600 in by_end]
    assert kept and all(a == pytest.approx(b) for a, b in kept)
    assert all(s["quarantined"] == 0 for s in summaries)


def test_a_reset_production_meter_is_flagged_never_negative(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The PV production meter read 4,424,261 Wh on 2020-01-09 22:00 and 1 Wh at 08:00
    the next day (a new counter), and stepped back 16 Wh on 2020-01-20: the reset's
    hours are suspect and count what the new register counted, the step back counts
    nothing until the register passes its old top, and nothing is negative."""
    raw = _raw("elec_solar_quantity_CurrentElectricityQuantity_5yrhours.csv")
    window = raw[(raw[:, 0] >= 1578268800) & (raw[:, 0] < 1579910400)]  # 2020-01-06..25
    _ingest(_write(tmp_path / "pv.csv", window), "--set", "meter_id=PV-1")
    rows = _stored(conn, "PV-1")
    energy = np.array([r[1] for r in rows])
    values = window[:, 1].astype(float)
    cut = int(np.flatnonzero(np.diff(values) < -1_000_000)[0]) + 1
    before, after = values[:cut], values[cut:]
    # counted: each stretch's rise of its running top; the new register from zero
    expected = (np.maximum.accumulate(before)[-1] - before[0]) + np.maximum.accumulate(after)[-1]
    assert energy.min() >= 0
    assert energy.sum() == pytest.approx(expected / 1000, abs=1e-6)
    reset_span = (window[cut - 1, 0], window[cut, 0])
    over_reset = [r for r in rows if reset_span[0] <= r[0] < reset_span[1]]
    assert len(over_reset) == (reset_span[1] - reset_span[0]) // 3600
    assert all(r[3] & MISMATCH and r[4] == "suspect" for r in over_reset)
    step = int(np.flatnonzero((np.diff(values) < 0) & (np.diff(values) > -1_000))[0]) + 1
    back = [r for r in rows if r[0] == window[step, 0] - 3600]
    assert back and back[0][1] == 0 and back[0][3] & MISMATCH


def test_a_second_load_continues_from_the_stored_read_and_a_reload_changes_nothing(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Daily reads of the low-tariff import register (Wh): the second month's first
    day is derived from the first month's last stored read; loading the first month
    again stores nothing new. The home's fixed offset names the meter's zone."""
    raw = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_10yrdays.csv")[:62]
    a = _write(tmp_path / "a.csv", raw[:31])
    b = _write(tmp_path / "b.csv", raw[31:])
    args = ("--set", "meter_id=NL-DAY", "--tz", "+01:00")
    # a value read beside the register is not derived: said, not stored
    first = _ingest(a, *args, "--set", "voltage_v=230", interval=86400)
    assert any("not derived from register reads" in w for w in first["warnings"])
    _ingest(b, *args, interval=86400)
    again = _ingest(a, *args, interval=86400)
    rows = _stored(conn, "NL-DAY")
    assert len(rows) == 61
    assert sum(r[1] for r in rows) == pytest.approx((raw[-1, 1] - raw[0, 1]) / 1000)
    assert [r[1] for r in rows if r[0] == raw[30, 0]] == [
        pytest.approx((raw[31, 1] - raw[30, 1]) / 1000)
    ]
    assert again["inserted"] == 0 and again["updated"] == 0
    assert conn.execute("SELECT count(voltage_v) FROM readings").fetchone() == (0,)
    zone = conn.execute("SELECT timezone FROM meters WHERE meter_id = 'NL-DAY'").fetchone()
    assert zone == ("Etc/GMT-1",)


@pytest.mark.parametrize(("digits", "given"), [(6, True), (7, False)])
def test_a_wrap_is_valid_whether_its_width_is_given_or_inferred(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path, digits: int, given: bool
) -> None:
    """A 6-digit Wh register wraps at 1,000 kWh, below the width VEE infers by itself:
    told the width, VEE judges the wrap valid; a 7-digit one read without
    ``--register-digits`` is inferred, and the wrap's interval keeps no register."""
    raw = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_5yrhours.csv")
    cross = int(np.flatnonzero(raw[:, 1] >= 10_000_000)[0])
    part = raw[cross - 48 : cross + 48].copy()
    part[:, 1] %= 10**digits
    extra = ("--register-digits", str(digits)) if given else ()
    _ingest(_write(tmp_path / "w.csv", part), "--set", "meter_id=W-1", *extra)
    rows = _stored(conn, "W-1")
    wrap_read = part[int(np.flatnonzero(np.diff(part[:, 1]) < 0)[0]) + 1]
    wrapped = [r for r in rows if r[3] & ROLLOVER]
    assert [r[0] for r in wrapped] == [wrap_read[0] - 3600]
    assert wrapped[0][3] & MISMATCH == 0 and wrapped[0][4] == "valid"
    assert (wrapped[0][2] is not None) == given
    if given:
        assert wrapped[0][2] == pytest.approx(wrap_read[1] / 1000)
    assert sum(r[1] for r in rows) == pytest.approx(
        (raw[cross + 47, 1] - raw[cross - 48, 1]) / 1000, abs=1e-6
    )


def test_a_meters_reference_width_gives_the_wrap(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A meter registered with a 4-digit kWh register (``register_digits`` in the
    meters table) wraps at 10,000 kWh: the real register (Wh) read modulo 10^7 Wh wraps
    there, and without --register-digits the load takes the reference's width."""
    meters = tmp_path / "meters.csv"
    meters.write_text("meter_id,register_digits\nREF-1,4\n")
    result = runner.invoke(app, ["ingest", "meters", str(meters)])
    assert result.exit_code == 0, result.stderr
    raw = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_5yrhours.csv")
    cross = int(np.flatnonzero(raw[:, 1] >= 10_000_000)[0])
    part = raw[cross - 24 : cross + 24].copy()
    part[:, 1] %= 10_000_000
    _ingest(_write(tmp_path / "r.csv", part), "--set", "meter_id=REF-1")
    rows = _stored(conn, "REF-1")
    wrapped = [r for r in rows if r[3] & ROLLOVER]
    assert len(wrapped) == 1 and wrapped[0][4] == "valid" and wrapped[0][2] is not None
    assert sum(r[1] for r in rows) == pytest.approx(
        (raw[cross + 23, 1] - raw[cross - 24, 1]) / 1000, abs=1e-6
    )


def test_a_head_end_export_named_by_obis_codes_loads_without_a_map(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The home's import register as a head-end exports it: semicolons, columns named by
    OBIS code only (clock 0-0:1.0.0, equipment id 0-0:96.1.1, A+ register 1-0:1.8.0 in
    kWh, L1 voltage 1-0:32.7.0) and a code Metrify has no field for. No --map: every
    field is found by its code, the interval energy is the register's rise per hour, and
    the voltage, a value of each read, is named as read but not stored with intervals."""
    raw = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_5yrhours.csv")[:240]
    volts = 230.0 + (np.arange(len(raw)) % 7) / 10  # per read: not stored with intervals
    lines = ["0-0:1.0.0;0-0:96.1.1;1-0:1.8.0;1-0:32.7.0;0-0:96.14.0"]
    for (t, wh), v in zip(raw.tolist(), volts.tolist(), strict=True):
        lines.append(f"{t};E0012;{wh / 1000:.3f};{v:.1f};2")
    summary = _ingest_export(tmp_path / "export.csv", lines)
    assert any("0-0:96.14.0" in w for w in summary["warnings"])  # named, not guessed
    rows = _stored(conn, "E0012")
    # one hour per pair of reads on the hour (the file's reads are hourly)
    assert len(rows) == (raw[-1, 0] - raw[0, 0]) // 3600
    energy = np.array([r[1] for r in rows])
    assert energy.sum() == pytest.approx((raw[-1, 1] - raw[0, 1]) / 1000, abs=1e-6)
    hourly = np.diff(raw[:, 1]) / 1000
    assert energy[: len(hourly)] == pytest.approx(hourly, abs=1e-6)
    # and exactly the reads' difference in Wh, as a number of three decimals would be
    # written: no floating-point crumbs (0.22199999999998) in what exports show
    whole_wh = [round(float(d)) / 1000 for d in np.diff(raw[:, 1])]
    assert energy[: len(hourly)].tolist() == whole_wh
    # 1-0:32.7.0 was read as voltage_v: derived intervals keep only the register and
    # its energy, and the summary says so by the field's name
    assert any(w.startswith("not derived") and "voltage_v" in w for w in summary["warnings"])
    stored_volts = conn.execute(
        "SELECT count(voltage_v) FROM readings WHERE meter_id = 'E0012'"
    ).fetchone()
    assert stored_volts == (0,)


def test_a_dsmr_export_of_tariff_registers_loads_as_their_sum(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The home's two import registers (low and normal tariff) as a DSMR meter exports
    them: 1-0:1.8.1 and 1-0:1.8.2 and no total. With no --map, the register is their
    sum, and each hour's energy is the sum's rise (both read from the real files)."""
    low = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_5yrhours.csv")
    normal = _raw("elec_quantity_nt_orig_CurrentElectricityQuantity_5yrhours.csv")
    times, at_low, at_normal = np.intersect1d(low[:, 0], normal[:, 0], return_indices=True)
    both = np.column_stack((times, low[at_low, 1], normal[at_normal, 1]))[:480]
    assert np.all(np.diff(both[:, 1]) >= 0) and np.all(np.diff(both[:, 2]) >= 0)
    assert np.all(np.diff(both[:, 0]) == 3600)  # hourly reads throughout this stretch
    lines = ["0-0:1.0.0;0-0:96.1.1;1-0:1.8.1;1-0:1.8.2"]
    lines += [f"{t};E0013;{a / 1000:.3f};{b / 1000:.3f}" for t, a, b in both.tolist()]
    summary = _ingest_export(tmp_path / "dsmr.csv", lines)
    assert not any("1.8.1" in w or "1.8.2" in w for w in summary["warnings"])  # both read
    rows = _stored(conn, "E0013")
    total = both[:, 1] + both[:, 2]
    assert [r[1] for r in rows] == [round(float(d)) / 1000 for d in np.diff(total)]
    assert rows[-1][2] == pytest.approx(total[-1] / 1000)  # the register kept: the sum


def test_reads_the_source_estimated_mark_the_days_they_bound(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A month of the home's daily register reads (Wh) with a third column in which the
    provider marks the reads it estimated (E) and the rest actual (A): exactly the days
    that begin or end on an estimated read are estimated; the energy is unchanged."""
    raw = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_10yrdays.csv")[:31]
    marked = {5, 6, 19}
    path = tmp_path / "marked.csv"
    path.write_text(
        "".join(f"{t},{v},{'E' if i in marked else 'A'}\n" for i, (t, v) in enumerate(raw))
    )
    summary = _ingest(
        path, "--set", "meter_id=NL-EST", "--tz", "+01:00", "--map", "estimated=#3",
        interval=86400,
    )  # fmt: skip
    assert summary["quarantined"] == 0
    assert not any("not derived" in w for w in summary["warnings"])
    rows = _stored(conn, "NL-EST")
    assert len(rows) == 30
    # day d runs from read d to read d + 1
    expected = {d for d in range(30) if d in marked or d + 1 in marked}
    est = {i for i, r in enumerate(rows) if r[3] & 256}
    assert est == expected
    assert {r[4] for i, r in enumerate(rows) if i in expected} == {"estimated"}
    # the other days are plain valid days (a day's reading is no flat line alone)
    assert {(r[3], r[4]) for i, r in enumerate(rows) if i not in expected} == {(0, "valid")}
    steps = np.diff(raw[:, 1]) / 1000
    assert [r[1] for r in rows] == pytest.approx(steps.tolist())


def test_daily_reads_at_local_midnight_load_as_measured_local_days(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The home's daily register values written as a provider exports them: one read
    per local midnight in Amsterdam, a month across the spring change. Each day runs
    from its local midnight to the next (23 hours on 30 March), measured and valid; the
    energy of each is the advance between its reads."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Amsterdam")
    raw = _raw("elec_quantity_lt_orig_CurrentElectricityQuantity_10yrdays.csv")[:31]
    days = [dt.date(2025, 3, 15) + dt.timedelta(days=i) for i in range(len(raw))]
    path = tmp_path / "local.csv"
    path.write_text(
        "meter,read_at,wh\n"
        + "".join(f"NL-LOC,{d} 00:00,{v}\n" for d, v in zip(days, raw[:, 1], strict=True))
    )
    result = runner.invoke(
        app,
        [
            "ingest", "readings", str(path), "--map", "meter_id=meter", "--map", "ts=read_at",
            "--map", "register_kwh=wh", "--unit", "register_kwh=Wh",
            "--tz", "Europe/Amsterdam", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _stored(conn, "NL-LOC")
    starts = [int(dt.datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()) for d in days]
    assert [r[0] for r in rows] == starts[:-1]
    assert [r[1] for r in rows] == pytest.approx((np.diff(raw[:, 1]) / 1000).tolist())
    assert {(r[3], r[4]) for r in rows} == {(0, "valid")}
