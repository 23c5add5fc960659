"""``metrify ingest`` without ``--interval``: the interval of each meter detected from
its timestamps, stored and reported; an ambiguous file refused before anything is
stored; register reads derived at the spacing of the reads; and the DST warning for a
UTC file loaded as London clock time. Expected values are counted from the raw files
(numpy, polars), not taken from the code under test."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import shared_data

runner = CliRunner()
LONDON = ["--map", "meter_id=LCLid", "--map", "ts=tstp", "--map", "import_kwh=energy(kWh/hh)"]


def _london(count: int) -> list[Path]:
    return sorted((shared_data() / "london-smart-meters-2013").glob("*.csv.gz"))[:count]


def _write_meter(path: Path, meter: str, times: list[dt.datetime]) -> Path:
    """One meter's rows at ``times`` (0.1 kWh each) as a plain CSV."""
    path.write_text(
        "meter_id,ts,import_kwh\n" + "".join(f"{meter},{t:%Y-%m-%d %H:%M},0.1\n" for t in times)
    )
    return path


def _ingest(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["ingest", "readings", *args, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_london_households_are_detected_half_hourly(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Two households' years and a third household cut to hourly sums (two rows into
    one, written by this test): two meters at 1800 s and one at 3600 s, in the summary
    and in the store, every row stored."""
    first, second, third = _london(3)
    raw = pl.read_csv(third).with_columns(
        t=pl.col("tstp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f"),
        e=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False),
    )
    hourly = (
        raw.group_by_dynamic("t", every="1h", group_by="LCLid")
        .agg(pl.col("e").sum(), pl.len().alias("n"))
        .filter(pl.col("n") == 2)
    )
    path = tmp_path / "hourly.csv"
    hourly.select(
        "LCLid", tstp=pl.col("t").dt.strftime("%Y-%m-%d %H:%M:%S"), energy=pl.col("e")
    ).write_csv(path)
    summary = _ingest(str(first), str(second), *LONDON)
    more = _ingest(
        str(path), "--map", "meter_id=LCLid", "--map", "ts=tstp", "--map", "import_kwh=energy"
    )
    assert summary["intervals_detected"] == {"1800": 2}
    assert more["intervals_detected"] == {"3600": 1}
    with gzip.open(first, "rt") as a, gzip.open(second, "rt") as b:
        rows = sum(1 for _ in a) - 1 + sum(1 for _ in b) - 1
    assert summary["read"] == rows
    stored = dict(
        conn.execute(
            "SELECT meter_id, min(interval_s) FROM readings GROUP BY meter_id "
            "HAVING min(interval_s) = max(interval_s)"
        ).fetchall()
    )
    meter = hourly.get_column("LCLid")[0]
    assert stored[meter] == 3600
    assert sorted(v for k, v in stored.items() if k != meter) == [1800, 1800]
    assert more["read"] == hourly.height
    assert conn.execute(
        "SELECT count(*) FROM readings WHERE meter_id = %s AND quality & 257 = 0", (meter,)
    ).fetchone() == (hourly.height,)


def test_an_ambiguous_file_is_refused_naming_the_candidates(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A meter sent every 15 minutes for 16 hours, then every 30 minutes for two days:
    64 differences of 900 s against 96 of 1800 s, neither dominant (more than half of
    them and twice the other). Refused with exit 2, one line, before anything is stored."""
    start = dt.datetime(2024, 5, 1)
    times = [start + dt.timedelta(minutes=15 * i) for i in range(64)]
    times += [times[-1] + dt.timedelta(minutes=30 * (i + 1)) for i in range(96)]
    path = _write_meter(tmp_path / "mixed.csv", "M1", times)
    result = runner.invoke(app, ["ingest", "readings", str(path)])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "mixed.csv" in message and "M1" in message
    assert "900 s" in message and "1800 s" in message and "--interval" in message
    assert "Traceback" not in result.output
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)
    # told the interval, the same file loads
    assert _ingest(str(path), "--interval", "900")["read"] == len(times)


def test_files_checked_side_by_side_refuse_at_the_first_bad_one_in_order(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Six files checked before the load (on several threads): two good London
    households, then two ambiguous files (the 15/30-minute meter above, as B1 and B2),
    then two good ones. The refusal names the first ambiguous file in the command's
    order, whichever thread finished first, and nothing is stored."""
    start = dt.datetime(2024, 5, 1)
    times = [start + dt.timedelta(minutes=15 * i) for i in range(64)]
    times += [times[-1] + dt.timedelta(minutes=30 * (i + 1)) for i in range(96)]
    bad = []
    for name in ("B1", "B2"):
        path = tmp_path / f"mixed-{name}.csv"
        path.write_text(
            "LCLid,tstp,energy(kWh/hh)\n"
            + "".join(f"{name},{t:%Y-%m-%d %H:%M:%S},0.1\n" for t in times)
        )
        bad.append(path)
    london = _london(4)
    files = [*london[:2], *bad, *london[2:]]
    for _ in range(3):  # the order of the threads' finishing varies from run to run
        result = runner.invoke(app, ["ingest", "readings", *map(str, files), *LONDON])
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.split())
        assert "mixed-B1.csv" in message and "B1" in message and "mixed-B2" not in message
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)


def test_hourly_register_reads_derive_hourly_without_interval(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """300 hourly reads of the Dutch home's import register (Wh): the hour is detected
    from the reads, and the derived energy equals the register's advance."""
    src = shared_data() / "dutch-home-registers"
    raw = np.loadtxt(
        src / "elec_quantity_lt_orig_CurrentElectricityQuantity_5yrhours.csv",
        delimiter=",",
        dtype=np.int64,
    )[1000:1300]
    spacing = np.diff(raw[:, 0])
    assert np.bincount(spacing // 60).argmax() * 60 == 3600  # hourly reads, by numpy
    path = tmp_path / "reg.csv"
    path.write_text("".join(f"{t},{v}\n" for t, v in raw.tolist()))
    summary = _ingest(
        str(path), "--no-header", "--map", "ts=#1", "--map", "register_kwh=#2",
        "--unit", "register_kwh=Wh", "--set", "meter_id=NL-R",
    )  # fmt: skip
    assert summary["intervals_detected"] == {"3600": 1}
    total, count, intervals = conn.execute(
        "SELECT sum(import_kwh), count(*), array_agg(DISTINCT interval_s) FROM readings"
    ).fetchone()
    assert intervals == [3600]
    assert count == (raw[-1, 0] - raw[0, 0]) // 3600
    assert total == pytest.approx((raw[-1, 1] - raw[0, 1]) / 1000, abs=1e-6)


def test_a_utc_file_loaded_as_london_clock_is_warned_about(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Forty London households (UTC, per the dataset's README) summed per half hour into
    one feeder-like series by this test, loaded as London clock time: the warning names
    Europe/London and +00:00. Written out in London time with its offsets and loaded
    as London time: no such warning."""
    frames = [pl.read_csv(p, schema_overrides={"energy(kWh/hh)": pl.String}) for p in _london(40)]
    total = (
        pl.concat(frames)
        .with_columns(e=pl.col("energy(kWh/hh)").str.strip_chars().cast(pl.Float64, strict=False))
        .group_by("tstp")
        .agg(pl.col("e").sum())
        .sort("tstp")
    )
    utc = tmp_path / "feeder.csv"
    total.select(meter_id=pl.lit("FEEDER"), ts=pl.col("tstp"), import_kwh=pl.col("e")).write_csv(
        utc
    )
    wrong = _ingest(str(utc), "--tz", "Europe/London")
    warned = [w for w in wrong["warnings"] if "DST changes" in w]  # type: ignore[union-attr]
    assert len(warned) == 1
    assert "Europe/London" in warned[0] and "--tz +00:00" in warned[0]
    local = tmp_path / "feeder-local.csv"
    total.select(
        meter_id=pl.lit("FEEDER-LOCAL"),
        ts=pl.col("tstp")
        .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC")
        .dt.convert_time_zone("Europe/London")
        .dt.strftime("%Y-%m-%dT%H:%M:%S%:z"),
        import_kwh=pl.col("e"),
    ).write_csv(local)
    also_right = _ingest(str(local), "--tz", "Europe/London")
    assert not [w for w in also_right["warnings"] if "DST changes" in w]  # type: ignore[union-attr]


def test_the_load_keeps_the_interval_the_check_of_the_files_decided(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A meter whose first 200 rows are half 15-minute and half 30-minute, then 1,100
    rows every 30 minutes. The check of the files before the load sees enough rows to
    decide 1800 s; the load takes that verdict instead of judging the meter again on its
    first 200 rows (where no spacing dominates, and the meter's rows would be
    quarantined after the command had accepted the file)."""
    start = dt.datetime(2024, 5, 1)
    times = [start + dt.timedelta(minutes=15 * i) for i in range(100)]
    times += [times[-1] + dt.timedelta(minutes=30 * (i + 1)) for i in range(1_100)]
    path = _write_meter(tmp_path / "settles.csv", "M1", times)
    summary = _ingest(str(path))
    assert summary["intervals_detected"] == {"1800": 1}
    assert summary["quarantined"] == 0
    assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    assert conn.execute(
        "SELECT count(DISTINCT interval_s), min(interval_s) FROM readings WHERE meter_id = 'M1'"
    ).fetchone() == (1, 1800)


def test_the_check_hands_on_only_meters_found_whole_in_one_file(tmp_path: Path) -> None:
    """What the check of the files hands to the load: the meters of a file it read
    whole, each in one file only. A meter in two files is left to the load (which
    decides it with the files in their order), and so is every meter of a file longer
    than the check's first rows."""
    from metrify.cli.ingest import _INTERVAL_PEEK_ROWS, _check_files
    from metrify.contracts.records import READING
    from metrify.sources.mapping import build_mapping

    start = dt.datetime(2024, 5, 1)

    def write(name: str, meter: str, minutes: int, rows: int) -> Path:
        times = [start + dt.timedelta(minutes=minutes * i) for i in range(rows)]
        return _write_meter(tmp_path / name, meter, times)

    files = [
        write("a.csv", "M1", 30, 100),
        write("b.csv", "M2", 15, 100),
        write("c.csv", "M1", 30, 100),
        write("d.csv", "M3", 60, _INTERVAL_PEEK_ROWS + 10),
    ]
    mapping = build_mapping(READING, detect_interval=True)
    assert _check_files(files, READING, mapping) == {"M2": 900}
