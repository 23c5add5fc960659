"""A reload that carries fewer fields keeps the stored values of the others.

A field the input does not carry at all (not mapped, no such column) is unknown, not
null: reloading a file with one optional field left unmapped changes nothing, a changed
value of a carried field is a correction (one history row per changed record) that
keeps the unmapped field, and an empty cell of a mapped column is a value (null). The
lake matches the store after each load. Readings, grid measurements and weather
observations share the path, so each is checked the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores.lake import Lake

runner = CliRunner()
T0 = dt.datetime(2025, 4, 7, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Kind:
    """One record kind as the test loads it: its command, table, history table, id
    field, required value field and two optional ones (``kept`` is left unmapped on
    reload, ``other`` stays mapped), and extra ingest options."""

    command: str
    table: str
    history: str
    ident: str
    main: str
    other: str
    kept: str
    extra: tuple[str, ...] = ()


KINDS = [
    Kind(
        "readings", "readings", "reading_history", "meter_id", "import_kwh",
        "export_kwh", "voltage_v", ("--interval", "3600"),
    ),
    Kind(
        "grid", "grid_measurements", "grid_measurement_history", "node_id", "load_mw",
        "frequency_hz", "price_per_mwh", ("--interval", "300"),
    ),
    Kind(
        "weather", "weather_observations", "weather_observation_history", "station_id",
        "temperature_c", "humidity_pct", "wind_speed_ms",
    ),
]  # fmt: skip

#: the first load: (main, other, kept) per record, all given
FIRST = [(1.5, 50.0, 230.0), (1.25, 49.5, 231.0), (2.0, 50.5, 229.5), (1.75, 51.0, 232.0)]


def _write(path: Path, rows: list[tuple[float, float, str]], kept: list[str] | None) -> Path:
    """A file with the source's own column names: ID, WHEN, MAIN, OTHER and, when
    ``kept`` is given, KEPT (its cells as given: '' is an empty cell)."""
    header = "ID,WHEN,MAIN,OTHER" + (",KEPT" if kept is not None else "")
    lines = [header]
    for i, (main, other, _) in enumerate(rows):
        ts = (T0 + i * dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        cells = [f"X1,{ts},{main},{other}"] + ([kept[i]] if kept is not None else [])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def _ingest(kind: Kind, path: Path, *, map_kept: bool) -> dict[str, object]:
    maps = [f"{kind.ident}=ID", "ts=WHEN", f"{kind.main}=MAIN", f"{kind.other}=OTHER"]
    if map_kept:
        maps.append(f"{kind.kept}=KEPT")
    args = ["ingest", kind.command, str(path), "--json", *kind.extra]
    for m in maps:
        args += ["--map", m]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _stored(conn: psycopg.Connection, kind: Kind) -> list[tuple[object, ...]]:
    return conn.execute(
        f"SELECT {kind.main}, {kind.other}, {kind.kept} FROM {kind.table} ORDER BY ts"
    ).fetchall()


def _history(conn: psycopg.Connection, kind: Kind) -> list[tuple[object, ...]]:
    return conn.execute(
        f"SELECT ts, {kind.main}, {kind.other}, {kind.kept} FROM {kind.history} ORDER BY ts"
    ).fetchall()


def _lake_matches(settings: Settings, kind: Kind, expected: list[tuple[object, ...]]) -> None:
    verify = runner.invoke(app, ["lake", "verify", "--json"])
    assert verify.exit_code == 0, verify.output
    assert verify.stdout.strip() == ""
    # the lake keeps every version (by ingested_at): the newest of each record is current
    lake = Lake(settings.lake).read(kind.command).sort("ts", "ingested_at")
    current = lake.group_by("ts", maintain_order=True).last()
    got = current.select(kind.main, kind.other, kind.kept).rows()
    assert got == expected


@pytest.mark.parametrize("kind", KINDS, ids=[k.command for k in KINDS])
def test_a_reload_without_a_field_keeps_it(
    kind: Kind, settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    full = [f"{k:g}" for _, _, k in FIRST]
    first = _ingest(kind, _write(tmp_path / "a.csv", FIRST, full), map_kept=True)
    assert first["inserted"] == 4
    assert _stored(conn, kind) == FIRST

    # the same file, KEPT not mapped: nothing changes, nothing goes to history
    again = _ingest(kind, _write(tmp_path / "b.csv", FIRST, full), map_kept=False)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 4)
    assert _stored(conn, kind) == FIRST
    assert _history(conn, kind) == []

    # a file without the KEPT column at all, correcting MAIN of record 0 and OTHER of 2
    fixed = [list(r) for r in FIRST]
    fixed[0][0], fixed[2][1] = 1.0, 48.0
    corrected = [(m, o, k) for m, o, k in fixed]
    third = _ingest(kind, _write(tmp_path / "c.csv", corrected, None), map_kept=False)
    assert (third["inserted"], third["updated"], third["unchanged"]) == (0, 2, 2)
    assert _stored(conn, kind) == corrected  # KEPT is the first load's everywhere
    old = [(T0 + i * dt.timedelta(hours=1), *FIRST[i]) for i in (0, 2)]
    assert _history(conn, kind) == old
    _lake_matches(settings, kind, corrected)

    # KEPT mapped again with an empty cell for record 1: that is a value, null
    cells = [f"{k:g}" for _, _, k in corrected]
    cells[1] = ""
    fourth = _ingest(kind, _write(tmp_path / "d.csv", corrected, cells), map_kept=True)
    assert (fourth["inserted"], fourth["updated"], fourth["unchanged"]) == (0, 1, 3)
    emptied = [r if i != 1 else (r[0], r[1], None) for i, r in enumerate(corrected)]
    assert _stored(conn, kind) == emptied
    assert len(_history(conn, kind)) == 3
    _lake_matches(settings, kind, emptied)


def test_the_aemo_reload_without_price_keeps_the_price(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The user's case: a month of QLD 5-minute demand and price, loaded again without
    ``--map price_per_mwh=RRP``."""
    source = Path("/work/shared/data/aemo-5min/aemo_price_demand_202501_QLD.csv")
    if not source.exists():
        pytest.skip("shared AEMO data not present")
    frame = pl.read_csv(source, infer_schema=False)
    rows = frame.height
    priced = frame.filter(pl.col("RRP").str.strip_chars() != "").height
    common = ["--map", "node_id=REGION", "--map", "ts=SETTLEMENTDATE"]
    common += ["--map", "load_mw=TOTALDEMAND", "--interval", "300", "--tz", "+10:00"]
    common += ["--ts-end", "--json"]
    args = ["ingest", "grid", str(source), *common]
    first = runner.invoke(app, [*args, "--map", "price_per_mwh=RRP"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["inserted"] == rows
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert (summary["inserted"], summary["updated"], summary["unchanged"]) == (0, 0, rows)
    count = "SELECT count(*) FROM grid_measurements WHERE price_per_mwh IS NOT NULL"
    assert conn.execute(count).fetchone() == (priced,)
    assert conn.execute("SELECT count(*) FROM grid_measurement_history").fetchone() == (0,)


def test_files_of_one_load_each_keep_what_they_lack(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Two files in one command are written in one batch: one carries voltage_v (and
    corrects it), the other has no such column, and keeps its stored voltages."""
    stamps = [(T0 + i * dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(3)]
    energy, volts = [0.5, 0.75, 0.5], [230.0, 231.0, 232.0]

    def write(name: str, meter: str, voltages: list[float] | None) -> Path:
        header = "meter_id,ts,interval_s,import_kwh" + (",voltage_v" if voltages else "")
        lines = [header]
        for i, ts in enumerate(stamps):
            extra = f",{voltages[i]:g}" if voltages else ""
            lines.append(f"{meter},{ts},3600,{energy[i]:g}{extra}")
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    def ingest(*paths: Path) -> dict[str, object]:
        result = runner.invoke(app, ["ingest", "readings", *map(str, paths), "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    assert ingest(write("a.csv", "M1", volts), write("b.csv", "M2", volts))["inserted"] == 6
    fixed = [volts[0], 229.0, volts[2]]
    again = ingest(write("a2.csv", "M1", fixed), write("b2.csv", "M2", None))
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 1, 5)
    rows = conn.execute(
        "SELECT meter_id, import_kwh, voltage_v FROM readings ORDER BY meter_id, ts"
    ).fetchall()
    expected = [("M1", e, v) for e, v in zip(energy, fixed, strict=True)]
    expected += [("M2", e, v) for e, v in zip(energy, volts, strict=True)]
    assert rows == expected
    history = conn.execute("SELECT meter_id, ts, voltage_v FROM reading_history").fetchall()
    assert history == [("M1", T0 + dt.timedelta(hours=1), volts[1])]
    _lake_matches_rows(settings, expected)


def _lake_matches_rows(settings: Settings, expected: list[tuple[object, ...]]) -> None:
    verify = runner.invoke(app, ["lake", "verify", "--json"])
    assert verify.exit_code == 0 and verify.stdout.strip() == "", verify.output
    lake = Lake(settings.lake).read("readings").sort("meter_id", "ts", "ingested_at")
    current = lake.group_by("meter_id", "ts", maintain_order=True).last()
    assert current.select("meter_id", "import_kwh", "voltage_v").rows() == expected
