"""The daily peer comparison groups meters by commodity as well as tariff and region."""

from __future__ import annotations

import psycopg

from metrify.settings import Settings
from metrify.stores.detector_inputs import peer_groups


def test_gas_and_heat_meters_are_not_peers_of_electricity_meters(
    settings: Settings, conn: psycopg.Connection
) -> None:
    conn.execute(
        "INSERT INTO meters (meter_id, tariff, region, commodity) VALUES"
        " ('E1', 'std', 'north', 'electricity'), ('E2', 'std', 'north', NULL),"
        " ('G1', 'std', 'north', 'gas'), ('H1', 'std', 'north', 'heat')"
    )
    groups = dict(peer_groups(conn).iter_rows())
    assert groups == {
        "E1": "std/north",
        "E2": "std/north",  # no commodity: electricity, as before commodities
        "G1": "gas/std/north",
        "H1": "heat/std/north",
    }
