"""A load declares what its new meters measure: ``--set commodity=gas --set unit=l`` on
the real hourly gas register of a Dutch home (litres), and a Green Button feed whose
reading type is therms of natural gas. The new meters are registered as gas, their
readings become energy once (the register's litres by the default calorific value, the
therms by the reader), and they are judged by gas's rules from the first batch: no
kettle spikes, no seasonal incidents. The same litres loaded undeclared are an
electricity meter's, judged so (the premise). A meter described already keeps its
reference data. Expected values come from the raw file and the feed's numbers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import dutch_register_deltas, shared_data

runner = CliRunner()
GAS = "gas_quantity_CurrentGasQuantity_5yrhours.csv"
SPIKE, FLAT = 8, 16
SEASONAL = {"sustained_drop", "vacancy", "level_shift"}
#: the settings' default gross calorific value (MJ/m³) and correction factor
CV, CF = 39.0, 1.0
THERM_KWH = 29.3071
ESPI = 'xmlns="http://naesb.org/espi"'
BASE = "https://utility.example/espi/1_1/resource/RetailCustomer/7/UsagePoint/G9"
TYPES = "https://utility.example/espi/1_1/resource/ReadingType"

pytestmark = pytest.mark.realdata


def _ingest(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["ingest", "readings", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def _gas_reads(tmp_path: Path) -> Path:
    """The register's reads from February to December 2019 (heating, summer, heating)."""
    lo = dt.datetime(2019, 2, 1, tzinfo=dt.UTC).timestamp()
    hi = dt.datetime(2019, 12, 1, tzinfo=dt.UTC).timestamp()
    lines = (shared_data() / "dutch-home-registers" / GAS).read_text().split()
    kept = [line for line in lines if lo <= int(line.split(",")[0]) <= hi]
    path = tmp_path / "gas.csv"
    path.write_text("\n".join(kept) + "\n")
    return path


def test_a_gas_register_declared_gas_is_judged_as_gas(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = _gas_reads(tmp_path)
    common = ["--no-header", "--map", "ts=#1", "--map", "register_kwh=#2", "--interval", "3600"]
    _ingest(str(path), *common, "--set", "meter_id=NL-GAS", "--set", "commodity=gas",
            "--set", "unit=l", "--tz", "Europe/Amsterdam")  # fmt: skip
    # the premise: the same litres, undeclared, scaled to about their kWh
    _ingest(str(path), *common, "--set", "meter_id=NL-AS-ELEC", "--scale", "register_kwh=0.0108")

    meters = dict(
        conn.execute(
            "SELECT meter_id, array[commodity, unit, timezone, status] FROM meters"
        ).fetchall()
    )
    assert meters["NL-GAS"] == ["gas", "l", "Europe/Amsterdam", "unregistered"]
    assert meters["NL-AS-ELEC"][:2] == ["electricity", None]  # the default, as before

    # energy once: litres to m3 to kWh by the calorific value; the volume kept beside it
    hours = dutch_register_deltas(GAS, "2019-02-01", "2019-12-01")
    t, litres = next((t, v) for t, v in hours if v > 500)
    kwh, m3 = conn.execute(
        "SELECT import_kwh, volume_m3 FROM readings WHERE meter_id = 'NL-GAS' AND ts = %s",
        (dt.datetime.fromtimestamp(t, dt.UTC),),
    ).fetchone() or (None, None)
    assert m3 == pytest.approx(litres / 1000, abs=1e-9)
    assert kwh == pytest.approx(litres / 1000 * CV * CF / 3.6, rel=1e-9)
    total = conn.execute(
        "SELECT sum(volume_m3) FROM readings WHERE meter_id = 'NL-GAS' AND ts = ANY(%s)",
        ([dt.datetime.fromtimestamp(h, dt.UTC) for h, _ in hours],),
    ).fetchone()
    assert total is not None and total[0] == pytest.approx(sum(v for _, v in hours) / 1000)

    flags = dict(
        conn.execute(
            "SELECT meter_id, array[count(*) FILTER (WHERE quality & %s <> 0),"
            " count(*) FILTER (WHERE quality & %s <> 0 AND import_kwh = 0)]"
            " FROM readings GROUP BY 1",
            (SPIKE, FLAT),
        ).fetchall()
    )
    kinds = dict(
        conn.execute(
            "SELECT subject_id, array_agg(DISTINCT kind) FROM anomalies GROUP BY 1"
        ).fetchall()
    )
    # electricity's rules take the heating hours for spikes and the seasons for incidents
    assert flags["NL-AS-ELEC"][0] > 0 or SEASONAL & set(kinds.get("NL-AS-ELEC", [])), (
        flags,
        kinds,
    )
    assert flags["NL-GAS"] == [0, 0], flags
    assert not SEASONAL & set(kinds.get("NL-GAS", [])), kinds


def _feed(path: Path, therms: list[float], start: int) -> Path:
    readings = "".join(
        f"<IntervalReading><timePeriod><duration>3600</duration><start>{start + 3600 * i}"
        f"</start></timePeriod><value>{value}</value></IntervalReading>"
        for i, value in enumerate(therms)
    )
    entries = [
        (f"{BASE}/MeterReading/1", f"<MeterReading {ESPI}/>", f"{TYPES}/1"),
        (f"{BASE}/MeterReading/1/IntervalBlock/1", f"<IntervalBlock {ESPI}>{readings}"
         "</IntervalBlock>", None),
        (f"{TYPES}/1", f"<ReadingType {ESPI}><commodity>7</commodity><flowDirection>1"
         "</flowDirection><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>169</uom>"
         "</ReadingType>", None),
    ]  # fmt: skip
    body = "".join(
        f'<entry><link href="{href}" rel="self"/>'
        + (f'<link href="{rel}" rel="related"/>' if rel else "")
        + f"<content>{content}</content></entry>"
        for href, content, rel in entries
    )
    path.write_text(f'<feed xmlns="http://www.w3.org/2005/Atom">{body}</feed>')
    return path


def test_a_green_button_feed_of_therms_registers_a_gas_meter(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    # two weeks of the Dutch home's gas hours, as therms (1 m3 is about 0.37 therm)
    hours = dutch_register_deltas(GAS, "2019-02-01", "2019-02-15")
    start = hours[0][0]
    by_hour = dict(hours)
    therms = [round(by_hour.get(start + 3600 * i, 0.0) / 1000 * 0.37, 4) for i in range(336)]
    _ingest(str(_feed(tmp_path / "gas.xml", therms, start)))

    row = conn.execute("SELECT commodity, unit FROM meters WHERE meter_id = 'G9'").fetchone()
    assert row == ("gas", "kWh")
    stored = conn.execute(
        "SELECT import_kwh, quality FROM readings WHERE meter_id = 'G9' ORDER BY ts"
    ).fetchall()
    assert [r[0] for r in stored] == pytest.approx([v * THERM_KWH for v in therms])
    assert not [q for _, q in stored if q & SPIKE]

    # a meter described already keeps what its reference data says
    conn.execute(
        "INSERT INTO meters (meter_id, status, commodity, unit) "
        "VALUES ('G9-KNOWN', 'active', 'electricity', 'kWh')"
    )
    conn.commit()
    feed = _feed(tmp_path / "known.xml", therms[:24], start)
    feed.write_text(feed.read_text().replace("UsagePoint/G9", "UsagePoint/G9-KNOWN"))
    _ingest(str(feed))
    row = conn.execute("SELECT commodity, unit FROM meters WHERE meter_id = 'G9-KNOWN'").fetchone()
    assert row == ("electricity", "kWh")


def test_a_meter_loaded_undeclared_takes_the_declaration_of_a_later_load(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The gas register loaded first as it comes (an electricity meter in kWh, on UTC
    days), then again declared gas in litres on Amsterdam's clock: the meter becomes
    gas, its readings are converted by the calorific value (the first load's values kept
    in history), and its daily scores count Amsterdam's days. A meter with reference
    data keeps it, and the load says so."""
    path = _gas_reads(tmp_path)
    common = ["--no-header", "--map", "ts=#1", "--map", "register_kwh=#2", "--interval", "3600"]
    _ingest(str(path), *common, "--set", "meter_id=NL-LATE")
    row = conn.execute("SELECT commodity, unit, timezone FROM meters WHERE meter_id = 'NL-LATE'")
    assert row.fetchone() == ("electricity", None, None)  # the premise: nothing declared

    summary = _ingest(str(path), *common, "--set", "meter_id=NL-LATE", "--set", "commodity=gas",
                      "--set", "unit=l", "--tz", "Europe/Amsterdam")  # fmt: skip
    row = conn.execute("SELECT commodity, unit, timezone, status FROM meters"
                       " WHERE meter_id = 'NL-LATE'")  # fmt: skip
    assert row.fetchone() == ("gas", "l", "Europe/Amsterdam", "unregistered")

    hours = dutch_register_deltas(GAS, "2019-02-01", "2019-12-01")
    stored = dict(
        conn.execute(
            "SELECT extract(epoch FROM ts)::bigint, array[import_kwh, volume_m3] FROM readings"
            " WHERE meter_id = 'NL-LATE' AND ts = ANY(%s)",
            ([dt.datetime.fromtimestamp(h, dt.UTC) for h, _ in hours],),
        ).fetchall()
    )
    assert len(stored) == len(hours)
    for t, litres in hours:
        kwh, m3 = stored[t]
        assert m3 == pytest.approx(litres / 1000, abs=1e-9)
        assert kwh == pytest.approx(litres / 1000 * CV * CF / 3.6, rel=1e-9, abs=1e-12)
    # the first load's litres-as-kWh are the replaced versions
    changed = sum(1 for _, litres in hours if litres > 0)
    assert summary["updated"] >= changed
    kept = conn.execute(
        "SELECT count(*) FROM reading_history WHERE meter_id = 'NL-LATE'"
    ).fetchone()
    assert kept is not None and kept[0] >= changed

    # the daily scores re-counted on Amsterdam's days: what the stored rows give per day
    local = dict(
        conn.execute(
            "SELECT (ts AT TIME ZONE 'Europe/Amsterdam')::date,"
            " count(*) FILTER (WHERE quality & 1 = 0) FROM readings"
            " WHERE meter_id = 'NL-LATE' GROUP BY 1"
        ).fetchall()
    )
    scored = dict(
        conn.execute("SELECT day, present FROM quality_daily WHERE meter_id = 'NL-LATE'").fetchall()
    )
    assert scored == local
    # (the premise: Amsterdam's days differ from UTC's; the reads start at midnight UTC)
    utc = conn.execute(
        "SELECT count(*) FILTER (WHERE quality & 1 = 0) FROM readings"
        " WHERE meter_id = 'NL-LATE' AND ts < %s",
        (dt.datetime.combine(min(local), dt.time(), dt.UTC) + dt.timedelta(days=1),),
    ).fetchone()
    assert utc is not None and utc[0] != local[min(local)]

    # a described meter keeps its reference data; the load tells which and why
    conn.execute(
        "INSERT INTO meters (meter_id, status, commodity, unit) "
        "VALUES ('NL-KNOWN', 'active', 'electricity', 'kWh')"
    )
    conn.commit()
    told = _ingest(str(path), *common, "--set", "meter_id=NL-KNOWN", "--set", "commodity=gas",
                   "--set", "unit=l")  # fmt: skip
    row = conn.execute("SELECT commodity, unit FROM meters WHERE meter_id = 'NL-KNOWN'")
    assert row.fetchone() == ("electricity", "kWh")
    assert any(
        "1 meter kept its reference data" in w
        and "NL-KNOWN: commodity electricity, not gas; unit kWh, not l" in w
        for w in told["warnings"]
    ), told["warnings"]
