"""Every PostgreSQL panel and template variable of the Grafana dashboards runs against a
real Metrify database holding a little of everything, with Grafana's macros filled in
as Grafana's PostgreSQL data source fills them; as the least-privileged app role in a
read-only transaction (a dashboard's login needs SELECT only). A renamed column or a
query that no longer parses fails here, not on a control-room wall."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.settings import Settings
from metrify.stores import aggregates
from support.database import app_url

from .dashboards import FOLDER, targets

FROM = dt.datetime(2013, 6, 1, tzinfo=dt.UTC)
TO = dt.datetime(2013, 6, 4, tzinfo=dt.UTC)
VARIABLES = {"meter": "M1", "node": "F1"}
INTERVAL = "30m"
#: panels that may come back empty on this data, and why
MAY_BE_EMPTY: set[tuple[str, str, str]] = set()


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(interval: str) -> int:
    value = interval.strip().strip("'\"")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    found = re.fullmatch(r"(\d+)([smhd])", value)
    assert found, f"interval {interval!r}"
    return int(found.group(1)) * units[found.group(2)]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def fill(sql: str, start: dt.datetime, end: dt.datetime, variables: dict[str, str]) -> str:
    """Grafana's PostgreSQL macros and variables, as its data source expands them:
    ``$__interval`` first (a duration such as 30m), then ``$__timeFilter(c)`` ->
    ``c BETWEEN 'from' AND 'to'``, ``$__timeGroup(c, i)`` -> ``floor(extract(epoch from
    c)/s)*s`` (``...Alias`` adds ``AS "time"``), ``$__timeFrom()``/``$__timeTo()`` ->
    quoted RFC 3339 times, ``${v:sqlstring}`` -> a quoted literal, ``$v`` -> the raw value."""
    out = sql.replace("$__interval", INTERVAL)

    def group(m: re.Match[str], alias: bool) -> str:
        s = _seconds(m.group(2))
        return f"floor(extract(epoch from {m.group(1)})/{s})*{s}" + (' AS "time"' if alias else "")

    out = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*([^)]+)\)", lambda m: group(m, True), out)
    out = re.sub(r"\$__timeGroup\(([^,]+),\s*([^)]+)\)", lambda m: group(m, False), out)
    out = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: f"{m.group(1)} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'",
        out,
    )
    out = out.replace("$__timeFrom()", f"'{_rfc3339(start)}'")
    out = out.replace("$__timeTo()", f"'{_rfc3339(end)}'")
    for name, value in variables.items():
        out = out.replace(f"${{{name}:sqlstring}}", _quote(value))
        out = re.sub(rf"\$\{{{name}\}}|\${name}\b", value, out)
    assert "$" not in out, f"unexpanded macro or variable in: {out}"
    return out


def test_fill_expands_like_grafana() -> None:
    got = fill(
        "SELECT $__timeGroupAlias(ts, $__interval), x FROM t WHERE $__timeFilter(ts)"
        " AND m = ${meter:sqlstring} AND d >= $__timeFrom()::date",
        FROM,
        TO,
        {"meter": "O'Brien"},
    )
    assert got == (
        'SELECT floor(extract(epoch from ts)/1800)*1800 AS "time", x FROM t WHERE ts BETWEEN'
        " '2013-06-01T00:00:00Z' AND '2013-06-04T00:00:00Z' AND m = 'O''Brien'"
        " AND d >= '2013-06-01T00:00:00Z'::date"
    )


def _load(tmp: Path) -> None:
    """Two meters under feeder F1 for three days of June 2013 (one interval missing from
    M1, which VEE estimates, one voltage out of band, which makes a reading suspect, one
    line unreadable, then a corrected value), F1's measurements, one anomaly."""
    slots = [FROM + dt.timedelta(minutes=30 * i) for i in range(3 * 48)]
    (tmp / "nodes.csv").write_text(
        "node_id,parent_id,kind,capacity_mw,nominal_kv\nF1,,feeder,0.004,0.4\n"
    )
    (tmp / "meters.csv").write_text(
        "meter_id,node_id,region,timezone,tariff\n"
        "M1,F1,north,Europe/London,Std\nM2,F1,south,Europe/London,ToU\n"
    )
    lines = ["meter_id,ts,interval_s,import_kwh,voltage_v"]
    for i, t in enumerate(slots):
        for meter in ("M1", "M2"):
            if meter == "M1" and i == 50:
                continue  # a gap
            kwh = 0.2 + 0.8 * (17 <= t.hour < 20) + 0.01 * (i % 7)
            volts = 262 if (meter, i) == ("M1", 60) else 231  # out of band: suspect
            lines.append(f"{meter},{t:%Y-%m-%dT%H:%M:%SZ},1800,{kwh:.3f},{volts}")
    lines.append("M2,not-a-time,1800,0.5,230")
    (tmp / "readings.csv").write_text("\n".join(lines) + "\n")
    (tmp / "fix.csv").write_text(
        f"meter_id,ts,interval_s,import_kwh\nM1,{slots[3]:%Y-%m-%dT%H:%M:%SZ},1800,0.777\n"
    )
    grid = ["node_id,ts,interval_s,load_mw,voltage_kv,frequency_hz"] + [
        f"F1,{t:%Y-%m-%dT%H:%M:%SZ},1800,{0.001 + 0.003 * (17 <= t.hour < 20)},0.41,50.01"
        for t in slots
    ]
    (tmp / "grid.csv").write_text("\n".join(grid) + "\n")
    from metrify.cli import app

    runner = CliRunner()
    for args in (
        ["ingest", "nodes", str(tmp / "nodes.csv")],
        ["ingest", "meters", str(tmp / "meters.csv")],
        ["ingest", "grid", str(tmp / "grid.csv")],
        ["ingest", "readings", str(tmp / "readings.csv")],
        ["ingest", "readings", str(tmp / "fix.csv")],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code in (0, 1), done.output  # 1: the unreadable line


def _run(conn: psycopg.Connection[Any], sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        cur = conn.execute(sql)  # type: ignore[arg-type]
        names = [d.name for d in cur.description or []]
        return names, cur.fetchall()


def test_every_postgres_panel_runs(settings: Settings, database_url: str, tmp_path: Path) -> None:
    _load(tmp_path)
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(
            "INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score,"
            " severity, detector, detector_version, evidence, intervals)"
            " VALUES ('spike', 'meter', 'M1', %s, %s, 4.2, 'high', 'test', '1', '{}', 1)",
            (FROM + dt.timedelta(hours=18), FROM + dt.timedelta(hours=19)),
        )
        aggregates.refresh(owner)  # the batch job's refresh; Grafana reads the tables
        assert owner.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)
        # as if the unreadable line had arrived with the data, inside the panels' range
        owner.execute("UPDATE quarantine SET received_at = %s", (FROM + dt.timedelta(hours=1),))
        assert owner.execute("SELECT count(*) FROM reading_history").fetchone() == (1,)
        statuses = dict(owner.execute("SELECT status, count(*) FROM readings GROUP BY 1"))
        assert statuses.get("estimated") == 1 and statuses.get("suspect") == 1, statuses

    checked = 0
    with psycopg.connect(app_url(database_url), autocommit=True) as conn:
        for path in sorted((FOLDER / "dashboards").glob("*.json")):
            for var in json.loads(path.read_text())["templating"]["list"]:
                _, rows = _run(conn, fill(var["query"], FROM, TO, VARIABLES))
                assert VARIABLES[var["name"]] in [r[0] for r in rows], (path.name, var["name"])
        for board, panel, target in targets("postgres"):
            where = (board, panel["title"], target["refId"])
            try:
                names, rows = _run(conn, fill(target["rawSql"], FROM, TO, VARIABLES))
            except psycopg.Error as exc:
                pytest.fail(f"{where}: {exc}\n{target['rawSql']}")
            if where not in MAY_BE_EMPTY:
                assert rows, f"{where} returned nothing"
            if target["format"] == "time_series":
                assert "time" in names, f"{where}: a time series needs a time column"
                values = [n for n in names if n not in ("time", "metric")]
                assert values, f"{where}: no value column"
                for row in rows:
                    assert row[names.index("time")] is not None
            checked += 1
    assert checked >= 20
