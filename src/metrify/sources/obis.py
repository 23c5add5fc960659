"""OBIS codes (IEC 62056-61) as contract fields.

Head-ends and data concentrators name values by OBIS code rather than by a name of
their own: ``1-0:1.8.0`` is the active energy import register wherever it comes from.
A code may be written in full (``1-0:1.8.0``), with its billing-period group
(``1-0:1.8.0*255``, ``1-0:1.8.0.255``) or as the value groups C.D.E alone (``1.8.0``);
all read the same. MQTT payloads (:mod:`metrify.sources.mqtt`) and the column headers of
files (:meth:`metrify.sources.mapping.Mapping.resolve`) both go through
:func:`obis_field`, so one table says what every code means.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["OBIS_ABSTRACT", "OBIS_FIELDS", "obis_columns", "obis_field", "tariff_register"]

#: OBIS value groups C.D.E (electricity, A = 1) and the contract field each one fills.
#: Energy registers (x.8.0) and interval energy (x.29.0) in kWh, power (x.7.0) in kW,
#: voltage (32.7.0) in V, current (31.7.0) in A, reactive power in kvar.
OBIS_FIELDS: Final[dict[str, str]] = {
    "1.8.0": "register_kwh",  # active energy import (A+), total register
    "2.8.0": "export_register_kwh",  # active energy export (A-), total register
    "1.29.0": "import_kwh",  # A+ energy over the last integration period
    "2.29.0": "export_kwh",  # A- energy over the last integration period
    "1.7.0": "active_power_kw",  # instantaneous active power import
    "3.7.0": "reactive_power_kvar",  # instantaneous reactive power import
    "13.7.0": "power_factor",
    "14.7.0": "frequency_hz",
    "32.7.0": "voltage_v",  # L1
    "31.7.0": "current_a",  # L1
}
#: abstract objects (A = 0, written with it: ``1.0.0`` alone would be electricity's):
#: the clock and the meter's identifiers, so an export named by code throughout maps whole
OBIS_ABSTRACT: Final[dict[str, str]] = {
    "1.0.0": "ts",  # clock
    "96.1.0": "meter_id",  # device identifier (serial number)
    "96.1.1": "meter_id",  # equipment identifier (DSMR)
}
#: tariff registers (x.8.T, T = 1..9) and the total register their sum is: a DSMR meter
#: (the Netherlands, Belgium) sends 1.8.1 and 1.8.2, low and normal tariff, and no 1.8.0
_TARIFF_TOTALS: Final[dict[str, str]] = {"1.8": "register_kwh", "2.8": "export_register_kwh"}
#: active power export (2.7.0) is the same field with the sign of export
_EXPORT_POWER: Final = "2.7.0"
_OBIS: Final = re.compile(
    r"^(?:(?P<a>\d+)-(?P<b>\d+):)?(?P<c>\d+)\.(?P<d>\d+)\.(?P<e>\d+)(?:[*.&](?P<f>\d+))?$"
)


def obis_field(key: str) -> str | None:
    """The contract field an OBIS-coded key names; None when ``key`` is not an OBIS code
    Metrify maps (a code of another medium, A other than 0 and 1, is not electricity's;
    of the abstract objects, A = 0, only the clock and the meter's id are). Export power
    (2.7.0) comes back as ``-active_power_kw``: the field, negated."""
    match = _OBIS.match(key.strip())
    if match is None or match["a"] not in (None, "0", "1"):
        return None
    code = f"{int(match['c'])}.{int(match['d'])}.{int(match['e'])}"
    if match["a"] == "0":
        return OBIS_ABSTRACT.get(code)
    if code == _EXPORT_POWER:
        return "-active_power_kw"
    return OBIS_FIELDS.get(code)


def tariff_register(key: str) -> str | None:
    """The total register a tariff register's code adds up to (``1-0:1.8.2``:
    ``register_kwh``), or None for any other key."""
    match = _OBIS.match(key.strip())
    if match is None or match["a"] not in (None, "1") or not 1 <= int(match["e"]) <= 9:
        return None
    return _TARIFF_TOTALS.get(f"{int(match['c'])}.{int(match['d'])}")


def obis_columns(columns: Iterable[str]) -> dict[str, str]:
    """Contract field -> the column that carries it, for columns named by OBIS code.

    Only plain fields: export power, which must be negated, is left to ``--map`` and
    ``--scale``. Where two columns carry one field (``1.8.0`` and ``1-0:1.8.0*255``), the
    first in the file's order does. A total register no column carries is the sum of
    the tariff registers that are there (``1-0:1.8.1+1-0:1.8.2``, the ``--map A+B``
    form), the first column of each tariff counting."""
    found: dict[str, str] = {}
    tariffs: dict[str, dict[str, str]] = {}
    for column in columns:
        if ":" not in column and not column[:1].isdigit():
            continue  # not a code: the common case costs one look at the name
        name = obis_field(column)
        if name is not None and not name.startswith("-"):
            found.setdefault(name, column)
        total = tariff_register(column) if name is None else None
        if total is not None:
            match = _OBIS.match(column.strip())
            assert match is not None
            tariffs.setdefault(total, {}).setdefault(match["e"].lstrip("0"), column)
    for total, parts in tariffs.items():
        if total not in found:
            found[total] = "+".join(parts.values())
    return found
