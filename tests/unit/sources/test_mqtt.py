"""OBIS codes and topics to contract fields (IEC 62056-61 value groups A-B:C.D.E*F)."""

from __future__ import annotations

import orjson
import pytest

from metrify.sources.mqtt import broker_address, broker_tls, rows_of
from metrify.sources.obis import obis_field


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("1-0:1.8.0", "register_kwh"),
        ("1.8.0", "register_kwh"),
        ("1-0:1.8.0*255", "register_kwh"),
        ("1-0:2.8.0", "export_register_kwh"),
        ("1-0:1.29.0", "import_kwh"),
        ("1-0:2.29.0", "export_kwh"),
        ("1-0:1.7.0", "active_power_kw"),
        ("1-0:32.7.0", "voltage_v"),
        ("0-0:1.0.0", "ts"),  # the clock
        ("0-0:96.1.1", "meter_id"),  # the equipment identifier
        ("0-0:96.14.0", None),  # the current tariff: no field
        ("1.0.0", None),  # without A = 0 it is no clock
        ("7-0:3.0.0", None),  # a gas volume (A = 7) is not electricity's
        ("1-0:99.98.1", None),  # an event log: not a reading field
        ("import_kwh", None),
    ],
)
def test_obis_codes_name_contract_fields(key: str, field: str | None) -> None:
    assert obis_field(key) == field


def test_a_message_takes_its_meter_from_the_topic_and_its_fields_from_obis() -> None:
    payload = orjson.dumps(
        {"ts": "2025-01-01T00:00:00Z", "interval_s": 900, "1-0:1.29.0": 0.25, "1-0:2.7.0": 1.5}
    )
    rows, bad = rows_of("site/M-7/readings", payload, "site/+/readings", max_bytes=10_000)
    assert bad == []
    assert rows == [
        {
            "ts": "2025-01-01T00:00:00Z",
            "interval_s": 900,
            "import_kwh": 0.25,
            "active_power_kw": -1.5,  # export power is negative active power
            "meter_id": "M-7",
        }
    ]
    rows, bad = rows_of("site/M-7/readings", b"not json", "site/+/readings", max_bytes=10_000)
    assert rows == [] and len(bad) == 1 and "JSON" in bad[0].reason


def test_a_dsmr_telegrams_tariff_registers_add_up_to_its_total() -> None:
    """DSMR meters send 1.8.1 and 1.8.2 (low and normal tariff) and no 1.8.0: the total
    register is their sum. A total sent beside them wins, and a tariff value that is no
    number leaves the parts as sent (the load names them)."""
    dsmr = {"ts": "2025-01-01T00:00:00Z", "1-0:1.8.1": 1000.25, "1-0:1.8.2": "2000.5"}
    dsmr |= {"1-0:2.8.1": 3.0, "1-0:2.8.2": 4.0}
    rows, _ = rows_of("dsmr/E1", orjson.dumps(dsmr), "dsmr/+", max_bytes=10_000)
    assert rows == [
        {
            "ts": "2025-01-01T00:00:00Z",
            "register_kwh": 3000.75,
            "export_register_kwh": 7.0,
            "meter_id": "E1",
        }
    ]
    total = {**dsmr, "1-0:1.8.0": 3000.0}
    (row,), _ = rows_of("dsmr/E1", orjson.dumps(total), "dsmr/+", max_bytes=10_000)
    assert row["register_kwh"] == 3000.0 and row["1-0:1.8.1"] == 1000.25
    broken = {**dsmr, "1-0:1.8.2": "n/a"}
    (row,), _ = rows_of("dsmr/E1", orjson.dumps(broken), "dsmr/+", max_bytes=10_000)
    assert "register_kwh" not in row and row["1-0:1.8.2"] == "n/a"


def test_broker_urls() -> None:
    assert broker_address("mqtt://127.0.0.1:1883") == ("127.0.0.1", 1883)
    assert broker_address("mqtt://broker") == ("broker", 1883)
    with pytest.raises(ValueError, match="mqtt://"):
        broker_address("http://x")


def test_tls_broker_urls() -> None:
    """mqtts:// means TLS on 8883 unless a port is given; a login never rides in the URL
    (it would be in the process list), and the error does not repeat the password."""
    assert broker_address("mqtts://broker") == ("broker", 8883)
    assert broker_address("mqtts://broker:9883") == ("broker", 9883)
    assert broker_tls("mqtts://broker") and broker_tls("ssl://b")
    assert not broker_tls("mqtt://broker")
    with pytest.raises(ValueError, match="no login in the URL") as caught:
        broker_address("mqtts://user:hunter2@broker")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="port"):
        broker_address("mqtt://broker:99999")


def test_a_head_ends_estimate_keeps_its_mark_through_decoding() -> None:
    from metrify.contracts.records import READING
    from metrify.sources.decode import decode
    from metrify.sources.kafka import rows_frame
    from metrify.sources.mapping import Mapping

    payload = orjson.dumps(
        [
            {"ts": "2025-01-06T00:00:00Z", "interval_s": 900, "1-0:1.29.0": 0.25},
            {"ts": "2025-01-06T00:15:00Z", "interval_s": 900, "1-0:1.29.0": 0.3,
             "estimated": True},
        ]
    )  # fmt: skip
    rows, bad = rows_of("meters/M-7/readings", payload, "meters/+/readings", max_bytes=1 << 20)
    assert bad == []
    records = decode(READING, rows_frame(READING, rows), Mapping()).records
    assert records.select("meter_id", "import_kwh", "_flags").rows() == [
        ("M-7", 0.25, 0),
        ("M-7", 0.3, 256),
    ]
