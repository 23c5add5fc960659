"""The daily job: feeder energy balance, the trained pattern model and peer comparison,
through the CLI and against the real store."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import psycopg
from typer.testing import CliRunner

from metrify.batch.daily import feeder_balance
from metrify.cli import app
from metrify.contracts.records import GRID, METER, NODE, READING
from metrify.pipeline.session import open_session
from metrify.settings import Settings
from metrify.settings.anomaly import AnomalyConfig
from support.series import PER_DAY, STEP, T0, shape


def submit(settings: Settings, contract: object, frame: pl.DataFrame) -> None:
    with open_session(settings) as session:
        p = session.pipeline(contract)  # type: ignore[arg-type]
        p.submit(frame, source="test")
        p.close()


def readings(
    meter: str, days: int, scale: float, change: dict[int, float] | None = None
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": meter,
            "ts": [T0 + dt.timedelta(seconds=STEP * i) for i in range(days * PER_DAY)],
            "interval_s": STEP,
            "import_kwh": [
                round((change or {}).get(i, scale * shape(i)), 4) for i in range(days * PER_DAY)
            ],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"), pl.col("interval_s").cast(pl.Int32))


def test_feeder_energy_balance(settings: Settings, conn: psycopg.Connection) -> None:
    submit(settings, NODE, pl.DataFrame({"node_id": ["F1", "F2"], "capacity_mw": [1.0, 1.0]}))
    submit(
        settings,
        METER,
        pl.DataFrame({"meter_id": ["A1", "A2", "B1"], "node_id": ["F1", "F1", "F2"]}),
    )
    submit(
        settings,
        READING,
        pl.concat([readings("A1", 1, 1.0), readings("A2", 1, 2.0), readings("B1", 1, 1.0)]),
    )
    day_kwh = sum(shape(i) for i in range(PER_DAY))
    f1_meters, f2_meters = 3 * day_kwh, day_kwh
    # F1 carries 15 % more than its meters recorded (theft-sized), F2 3 % (ordinary losses)
    f1_kw, f2_kw = f1_meters / 0.85 / 24, f2_meters / 0.97 / 24
    submit(
        settings,
        GRID,
        pl.DataFrame(
            {
                "node_id": ["F1"] * 48 + ["F2"] * 48,
                "ts": [T0 + dt.timedelta(seconds=STEP * i) for i in range(48)] * 2,
                "interval_s": STEP,
                "load_mw": [f1_kw / 1000] * 48 + [f2_kw / 1000] * 48,
            }
        ).with_columns(pl.col("ts").dt.cast_time_unit("us"), pl.col("interval_s").cast(pl.Int32)),
    )
    found = feeder_balance(conn, T0.date(), AnomalyConfig())
    assert found["subject_id"].to_list() == ["F1"]
    assert abs(found["score"][0] - 0.15) < 1e-3
    assert found["severity"][0] == "medium"  # above 8 %, not above twice that
    evidence = json.loads(found["evidence"][0])
    assert abs(evidence["meters_kwh"] - f1_meters) < 0.1 and evidence["meters"] == 2


def test_train_then_daily_job_finds_the_changed_meter(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """40 meters with the same shape at different sizes for 30 days; on the last day one of
    them draws 2.5 kW more from midnight to noon (a new heater on a timer), over three
    times its usual day. The model, trained on the
    days before, must isolate that meter-day; peers did not change, so it is a peer
    outlier too. Nothing else changed, so nothing else may be reported."""
    days, last = 30, 29
    changed = {
        i: round(1.0 * shape(i) + (1.25 if (i % PER_DAY) < 24 else 0.0), 4)
        for i in range(last * PER_DAY, days * PER_DAY)
    }
    frames = [
        readings(f"P{k:02d}", days, 0.5 + k / 40, changed if k == 20 else None) for k in range(40)
    ]
    # k == 20 has scale 1.0, so the change is exactly the added night load
    submit(settings, READING, pl.concat(frames))
    until = (T0 + dt.timedelta(days=last)).date()
    runner = CliRunner()
    trained = runner.invoke(
        app, ["anomalies", "train", "--until", until.isoformat(), "--days", "14"]
    )
    assert trained.exit_code == 0, trained.output
    assert "trained on 560 meter-days over 14 days" in trained.output  # 40 x 14
    daily = runner.invoke(app, ["anomalies", "daily", "--date", until.isoformat(), "--json"])
    assert daily.exit_code == 0, daily.output
    start = T0 + dt.timedelta(days=last)
    patterns = conn.execute(
        "SELECT subject_id, ts_start FROM anomalies WHERE kind = 'pattern_change'"
        " ORDER BY score DESC"
    ).fetchall()
    # the forest reports its top share of meter-days; the changed meter is the most isolated
    assert patterns[0] == ("P20", start)
    peers = conn.execute(
        "SELECT subject_id, ts_start, evidence FROM anomalies WHERE kind = 'peer_outlier'"
    ).fetchall()
    assert [p[:2] for p in peers] == [("P20", start)]
    # its day is its usual day plus 12 h x 2.5 kW; the peers did not change
    usual = sum(shape(i) for i in range(PER_DAY))
    assert (usual + 30.0) / usual > 3
    assert abs(peers[0][2]["own_change"] - (usual + 30.0) / usual) < 0.01
    assert peers[0][2]["peers_change"] == 1.0


def test_train_needs_enough_history(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["anomalies", "train", "--until", "2024-01-10"])
    assert result.exit_code == 2
    assert "need at least 50" in " ".join(result.output.split())
