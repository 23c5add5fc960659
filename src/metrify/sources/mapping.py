"""How a source's own columns and conventions map onto the contract.

Files in the wild never use our names, units or time conventions: ``--map`` renames,
``--set`` supplies a constant (a file of one region's demand has no node id column),
``--scale`` converts units (humidity as a fraction -> percent), ``--tz`` declares the zone
of naive local timestamps, ``--ts-end`` says timestamps mark the END of the interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from metrify.contracts.localtime import known_zones
from metrify.contracts.records import Contract, interval_is_valid


class MappingError(ValueError):
    """The options do not fit the contract (unknown field, bad zone, bad interval)."""


@dataclass(frozen=True)
class Mapping:
    """Options that turn one source's rows into contract records."""

    columns: dict[str, str] = field(default_factory=dict)  # contract field -> source column
    constants: dict[str, str] = field(default_factory=dict)  # contract field -> literal value
    scales: dict[str, float] = field(default_factory=dict)  # contract field -> factor
    interval_s: int | None = None
    tz: str = "UTC"
    ts_end: bool = False

    def source_column(self, name: str) -> str:
        return self.columns.get(name, name)


def _pairs(items: Iterable[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value:
            raise MappingError(f"{option} expects FIELD=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def build_mapping(
    contract: Contract,
    *,
    maps: Iterable[str] = (),
    sets: Iterable[str] = (),
    scales: Iterable[str] = (),
    interval_s: int | None = None,
    tz: str | None = None,
    ts_end: bool = False,
) -> Mapping:
    """Parse CLI-style options into a Mapping, checking them against the contract."""
    columns = _pairs(maps, "--map")
    constants = _pairs(sets, "--set")
    factors: dict[str, float] = {}
    for name, value in _pairs(scales, "--scale").items():
        try:
            factors[name] = float(value)
        except ValueError:
            raise MappingError(f"--scale {name}={value}: the factor must be a number") from None
    for option, names in (("--map", columns), ("--set", constants), ("--scale", factors)):
        unknown = [n for n in names if n not in contract.schema]
        if unknown:
            raise MappingError(
                f"{option}: {', '.join(unknown)} is not a field of {contract.kind}; "
                f"fields are {', '.join(contract.fields)}"
            )
    if (
        interval_s is not None
        and "interval_s" in contract.schema
        and not interval_is_valid(interval_s)
    ):
        raise MappingError(f"--interval {interval_s}: must be 60..86400 seconds and divide the day")
    zone = tz or "UTC"
    if not known_zones([zone]):
        raise MappingError(f"--tz {zone}: unknown time zone (use an IANA name like Europe/London)")
    return Mapping(
        columns=columns,
        constants=constants,
        scales=factors,
        interval_s=interval_s,
        tz=zone,
        ts_end=ts_end,
    )


def check_mapped_columns(mapping: Mapping, columns: list[str]) -> None:
    """Raise :class:`MappingError` if ``--map`` names a column the source does not have.

    An unknown column would otherwise read as a column of nulls: a mistyped optional
    field (``--map export_kwh=gg`` against ``GG``) would load every row without it,
    silently. Column names are matched exactly, as everywhere else; a name that differs
    only in case is suggested."""
    available = set(columns)
    by_case = {c.casefold(): c for c in columns}
    for name, src in mapping.columns.items():
        if src in available:
            continue
        near = by_case.get(src.casefold())
        hint = f" (did you mean {near!r}? names are case-sensitive)" if near else ""
        raise MappingError(
            f"--map {name}={src}: no column {src!r}{hint}; "
            f"columns are {', '.join(columns) or '(none)'}"
        )
