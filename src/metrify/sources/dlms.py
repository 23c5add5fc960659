"""DLMS/COSEM event codes on the way in: the numbers of a meter's Standard Event Log as
the event families of the contract (IEC 61968-9 end-device event families).

A DLMS/COSEM meter (IEC 62056) logs events as numbers in its event logs; a head-end
export often passes them on as they are, in the event column or beside a free-text
name in a code column. The numbers of the Standard Event Log (OBIS 0-0:99.98.0.255, event
object 0-0:96.11.0.255) are the ones the IDIS companion specification and the Dutch
DSMR smart meter requirements fix; the table below follows:

* the IDIS Standard Event Log as described in public guides (codes 3 to 9: DST enabled
  or disabled, clock adjusted with the old and with the new time, clock invalid,
  replace battery, TOU activated);
* the event type table of the Open Smart Grid Platform (GXF, Alliander / Smart Society
  Services, Apache 2.0; ``EventType`` in its smart-metering domain), which implements
  the DSMR requirements: 1 power failure, 2 power returned, 3 to 20 as above and the
  hardware and firmware events, 40/41 terminal cover removed/closed, 42/43 strong DC
  field detected/gone, 44/45 meter cover removed/closed, 46 failed login attempt,
  47 configuration change, 255 event log cleared.

Codes other than those are manufacturer- or log-specific (the Fraud, Power Quality and
Communication logs reuse small numbers): a number the table does not hold is not
guessed at, it goes to quarantine saying so. The code is kept as given in ``code``, and
an event with no ``details`` gets the code's meaning there, so ``other`` events (a
battery warning, a firmware activation) still say what they were.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import polars as pl

from metrify.contracts.records import MeterEvent

__all__ = ["DLMS_EVENTS", "REASON", "decode_codes", "unknown_code_reason"]

_E = MeterEvent

#: Standard Event Log code -> (the contract's event family, what the code means)
DLMS_EVENTS: Final[dict[int, tuple[MeterEvent, str]]] = {
    1: (_E.POWER_FAILURE, "power down"),
    2: (_E.POWER_RESTORE, "power up"),
    3: (_E.CLOCK_SET, "daylight saving time enabled or disabled"),
    4: (_E.CLOCK_SET, "clock adjusted (old time)"),
    5: (_E.CLOCK_SET, "clock adjusted (new time)"),
    6: (_E.OTHER, "clock invalid"),
    7: (_E.OTHER, "replace battery"),
    8: (_E.OTHER, "battery voltage low"),
    9: (_E.OTHER, "TOU activated"),
    10: (_E.OTHER, "error register cleared"),
    11: (_E.OTHER, "alarm register cleared"),
    12: (_E.OTHER, "program memory error"),
    13: (_E.OTHER, "RAM error"),
    14: (_E.OTHER, "NV memory error"),
    15: (_E.OTHER, "watchdog error"),
    16: (_E.OTHER, "measurement system error"),
    17: (_E.OTHER, "firmware ready for activation"),
    18: (_E.OTHER, "firmware activated"),
    19: (_E.OTHER, "passive TOU programmed"),
    20: (_E.OTHER, "successful self-check after firmware update"),
    40: (_E.COVER_OPEN, "terminal cover removed"),
    41: (_E.COVER_CLOSE, "terminal cover closed"),
    42: (_E.MAGNETIC_FIELD, "strong DC field detected"),
    43: (_E.OTHER, "no strong DC field anymore"),
    44: (_E.COVER_OPEN, "meter cover removed"),
    45: (_E.COVER_CLOSE, "meter cover closed"),
    46: (_E.OTHER, "failed login attempt (association authentication failure)"),
    47: (_E.OTHER, "configuration change"),
    255: (_E.OTHER, "event log cleared"),
}

_NUMBER: Final = r"^\d{1,5}$"


#: the column of refused events that carries their quarantine reason
REASON: Final = "_reason"


def unknown_code_reason(number: pl.Expr) -> pl.Expr:
    """The quarantine reason of an event whose DLMS number the table does not hold."""
    return pl.concat_str(
        pl.lit("unknown DLMS/COSEM event code "),
        number,
        pl.lit(" (not a Standard Event Log code; give the event's name in its event column)"),
    )


def decode_codes(
    records: pl.DataFrame, names: Collection[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Events whose ``event`` is a DLMS number, or whose ``event`` is no known name
    (``names``: the contract's and head-ends' names, lower case, words joined by
    ``_``) while ``code`` is a DLMS number, named by the code's family: ``code`` keeps
    the number, ``details`` gets its meaning where it had none. Returns (the events,
    the events whose number is no Standard Event Log code, their fields unchanged
    and their quarantine reason in :data:`REASON`)."""
    if not records.height:
        return records, records.with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
    event = pl.col("event").str.strip_chars()
    code = pl.col("code").str.strip_chars()
    word = event.str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "_").str.strip_chars("_")
    number = (
        pl.when(event.str.contains(_NUMBER))
        .then(event)
        .when(~word.is_in(list(names)).fill_null(True) & code.str.contains(_NUMBER))
        .then(code)
        .otherwise(None)
    )
    keys = [str(n) for n in DLMS_EVENTS]
    family = number.str.strip_chars_start("0").replace_strict(
        keys, [e.value for e, _ in DLMS_EVENTS.values()], default=None, return_dtype=pl.String
    )
    meaning = number.str.strip_chars_start("0").replace_strict(
        keys,
        [f"DLMS/COSEM event {n}: {text}" for n, (_, text) in DLMS_EVENTS.items()],
        default=None,
        return_dtype=pl.String,
    )
    marked = records.with_columns(_number=number, _family=family, _meaning=meaning)
    unknown = pl.col("_number").is_not_null() & pl.col("_family").is_null()
    refused = marked.filter(unknown).with_columns(
        unknown_code_reason(pl.col("_number")).alias(REASON)
    )
    refused = refused.drop("_number", "_family", "_meaning")
    known = pl.col("_family").is_not_null()
    named = marked.filter(~unknown).with_columns(
        event=pl.when(known).then(pl.col("_family")).otherwise(pl.col("event")),
        code=pl.when(known & pl.col("code").is_null())
        .then(pl.col("_number"))
        .otherwise(pl.col("code")),
        details=pl.when(known & pl.col("details").is_null())
        .then(pl.col("_meaning"))
        .otherwise(pl.col("details")),
    )
    return named.drop("_number", "_family", "_meaning"), refused
