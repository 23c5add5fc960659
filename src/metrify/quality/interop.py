"""Quality codes other systems speak, derived from Metrify's flags, status and source.

- IEEE 2030.5 (SEP 2.0) ``ReadingBase.qualityFlags`` bitmap: 0x01 valid, 0x02 manually
  edited, 0x04 estimated using a reference day, 0x08 estimated using linear interpolation,
  0x10 questionable, 0x20 derived, 0x40 projected (forecast).
- German MSCONS (BDEW) quantity qualifier of a reading: ``220`` true value (wahrer Wert),
  ``67`` substitute value (Ersatzwert), ``201`` proposed value (Vorschlagswert, not yet
  confirmed), ``20`` unusable value (nicht verwendbarer Wert).

Metrify's own bits never change; these are views for exports and the API.
"""

from __future__ import annotations

import polars as pl

from metrify.contracts.records import Quality, Status

IEEE_VALID = 0x01
IEEE_EDITED = 0x02
IEEE_REFERENCE_DAY = 0x04
IEEE_LINEAR = 0x08
IEEE_QUESTIONABLE = 0x10

MSCONS_TRUE = "220"
MSCONS_SUBSTITUTE = "67"
MSCONS_PROPOSED = "201"
MSCONS_UNUSABLE = "20"


def ieee2030_5_flags(quality: int, status: str, source: str = "") -> int:
    """IEEE 2030.5 qualityFlags for one reading."""
    flags = 0
    if status == Status.VALID and not quality & Quality.EDITED:
        flags |= IEEE_VALID
    if quality & Quality.EDITED:
        flags |= IEEE_EDITED
    if quality & Quality.ESTIMATED:
        flags |= IEEE_LINEAR if "linear" in source else IEEE_REFERENCE_DAY
    if status in (Status.SUSPECT, Status.REJECTED):
        flags |= IEEE_QUESTIONABLE
    return flags


def mscons_status(quality: int, status: str) -> str:
    """MSCONS quantity qualifier for one reading."""
    if status == Status.REJECTED or (quality & Quality.MISSING and not quality & Quality.ESTIMATED):
        return MSCONS_UNUSABLE
    if quality & (Quality.ESTIMATED | Quality.EDITED) or status == Status.ESTIMATED:
        return MSCONS_SUBSTITUTE
    if status == Status.SUSPECT:
        return MSCONS_PROPOSED
    return MSCONS_TRUE


def ieee2030_5_expr(
    quality: str = "quality", status: str = "status", source: str = "source"
) -> pl.Expr:
    """Vectorised :func:`ieee2030_5_flags` for exports."""
    q, st = pl.col(quality), pl.col(status)
    edited = (q & int(Quality.EDITED)) != 0
    estimated = (q & int(Quality.ESTIMATED)) != 0
    linear = pl.col(source).fill_null("").str.contains("linear", literal=True)
    return (
        pl.when((st == Status.VALID.value) & ~edited).then(IEEE_VALID).otherwise(0)
        + pl.when(edited).then(IEEE_EDITED).otherwise(0)
        + pl.when(estimated & linear).then(IEEE_LINEAR).otherwise(0)
        + pl.when(estimated & ~linear).then(IEEE_REFERENCE_DAY).otherwise(0)
        + pl.when(st.is_in([Status.SUSPECT.value, Status.REJECTED.value]))
        .then(IEEE_QUESTIONABLE)
        .otherwise(0)
    ).cast(pl.Int32)


def mscons_expr(quality: str = "quality", status: str = "status") -> pl.Expr:
    """Vectorised :func:`mscons_status` for exports."""
    q, st = pl.col(quality), pl.col(status)
    missing = (q & int(Quality.MISSING)) != 0
    estimated = (q & int(Quality.ESTIMATED)) != 0
    substitute = ((q & int(Quality.ESTIMATED | Quality.EDITED)) != 0) | (
        st == Status.ESTIMATED.value
    )
    return (
        pl.when((st == Status.REJECTED.value) | (missing & ~estimated))
        .then(pl.lit(MSCONS_UNUSABLE))
        .when(substitute)
        .then(pl.lit(MSCONS_SUBSTITUTE))
        .when(st == Status.SUSPECT.value)
        .then(pl.lit(MSCONS_PROPOSED))
        .otherwise(pl.lit(MSCONS_TRUE))
    )
