"""How a source's own columns and conventions map onto the contract.

Files in the wild never use our names, units or time conventions: ``--map`` renames
(``--map ts=#1`` names a column by its 1-based position; ``--map import_kwh=A+B`` adds
columns up, as a meter's tariff registers), ``--set`` supplies a constant
(a file of one region's demand has no node id column), ``--scale`` multiplies
(humidity as a fraction -> percent), ``--unit`` converts from a named unit (``degF``,
``Wh``, ``GJ``; see :mod:`metrify.sources.units`), ``--tz`` declares the zone of naive
local timestamps (an IANA name, or a fixed offset such as ``+10:00`` for a file kept in
standard time all year), ``--ts-end`` says timestamps mark the END of the interval,
``--ts-format`` gives their one format (strftime) where reading them row by row would
have to guess (``--map ts=DATE+TIME`` joins a date column and a time column),
``--no-header`` says a CSV file starts with data, ``--skip-lines`` passes over the
lines an export writes above its table, ``--encoding`` names the character set of a
CSV file not written in UTF-8 (``cp1252``, ``latin-1``), and
``--channels CHANNEL=VALUE`` reads a file with a row per value (its channel in one
column, the value in another) as rows of records, and
``--register-digits`` gives the width of a cumulative register whose interval energy is
derived (:mod:`metrify.sources.registers`). ``--map estimated=COLUMN`` names the column
in which a source marks the values it estimated (a meter data provider's substitutes):
no contract field, but the quality the pipeline gives those readings (beside register
reads: the intervals each estimated read bounds).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from metrify.contracts.commodities import unit_key
from metrify.contracts.localtime import known_zones
from metrify.contracts.records import READING, Contract, interval_is_valid
from metrify.sources.attributes import METER_ATTRIBUTES, attribute_problem
from metrify.sources.obis import obis_columns

#: ``--tz`` as a fixed offset from UTC: ``+10:00``, ``-0500``, ``+10``, ``UTC+10``,
#: ``UTC-03:30``, ``GMT+1``
_OFFSET: Final = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
#: ``#N``: a column named by its 1-based position
_POSITION: Final = re.compile(r"(?:^|\+)\s*#([1-9]\d*)\s*(?:$|\+)")
_ONE_POSITION: Final = re.compile(r"^#([1-9]\d*)$")
#: the fields a cumulative register derivation produces and needs
REGISTER_FIELD: Final = "register_kwh"
ENERGY_FIELD: Final = "import_kwh"
#: what ``--map``/``--set`` may name besides a reading's fields: whether the source
#: estimated the value (read by :func:`metrify.sources.decode.decode`, carried as the
#: ``estimated`` quality bit). A column of this name is read without ``--map``.
ESTIMATED_INPUT: Final = "estimated"
#: offsets of minutes (seconds east of UTC) as the IANA zone that has kept each all
#: year, without daylight saving, since at least the 1980s: a meter declared
#: ``--tz +05:30`` gets a zone on its reference row, so that its local hours and days
#: are known (no ``Etc/GMT`` zone has minutes). Offsets only zones with daylight saving
#: or recent changes hold (``+03:30``, ``+10:30``, ``+12:45``) are left without one.
MINUTE_OFFSET_ZONES: Final = {
    16200: "Asia/Kabul",  # +04:30
    19800: "Asia/Kolkata",  # +05:30
    20700: "Asia/Kathmandu",  # +05:45
    23400: "Asia/Yangon",  # +06:30
    34200: "Australia/Darwin",  # +09:30
    -34200: "Pacific/Marquesas",  # -09:30
}


def mappable(contract: Contract) -> list[str]:
    """The names ``--map`` and ``--set`` take for ``contract``: its fields, and for
    readings :data:`ESTIMATED_INPUT` (a reading's quality is the pipeline's, but a
    provider's estimate is a fact about the value that only the source knows) and the
    meter attributes a load declares for the meters it registers
    (:mod:`metrify.sources.attributes`)."""
    if contract is READING:
        return [*contract.fields, ESTIMATED_INPUT, *METER_ATTRIBUTES]
    return contract.fields


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
    #: ``--ts-format``: the one strftime format of the timestamps' text (None: the
    #: readers of :mod:`metrify.sources.decode` tell the format row by row)
    ts_format: str | None = None
    #: contract field -> (factor, offset, unit as given): ``--unit`` conversions
    units: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    #: whether a CSV file's first line names the columns (``--no-header``: it does not,
    #: and the columns are ``#1``, ``#2``, ... by position)
    header: bool = True
    #: ``--encoding``: the character set of a CSV file's bytes (Python's codec name;
    #: files from Windows spreadsheets are often ``cp1252``)
    encoding: str = "utf-8"
    #: ``--skip-lines``: lines before a CSV file's header (an export's title, account
    #: and address lines) that are no part of the table
    skip_lines: int = 0
    #: ``--sheet``: a spreadsheet's sheet to read, by name or 1-based number (None: the
    #: first)
    sheet: str | None = None
    #: ``--wide FIELD``: a row per day, a column per interval holding FIELD
    wide: str | None = None
    #: ``--channels CHANNEL=VALUE``: a row per value, the column naming its channel and
    #: the column holding it (:mod:`metrify.sources.channels`)
    channels: tuple[str, str] | None = None
    #: the fields that identify a record of the kind (its key, and its interval where it
    #: has one): with ``channels``, the columns they are read from gather a record's rows
    identity: tuple[str, ...] = ()
    #: digits of a cumulative register (it rolls over at 10**digits of its own unit);
    #: None: detected at a wrap from the value before it
    register_digits: int | None = None
    #: no ``--interval`` was given: a file without an interval column has each meter's
    #: interval detected from its timestamps (:mod:`metrify.sources.intervals`)
    detect_interval: bool = False

    def source_column(self, name: str) -> str:
        return self.columns.get(name, name)

    @property
    def file_options(self) -> dict[str, Any]:
        """How the file readers read a file for this mapping: the keyword arguments of
        :func:`metrify.sources.files.read_batches` the options set."""
        return {
            "header": self.header,
            "encoding": self.encoding,
            "skip_lines": self.skip_lines,
            "sheet": self.sheet,
            "wide": (self.wide, self.source_column("ts")) if self.wide else None,
            "channels": (*self.channels, self.identity_columns) if self.channels else None,
        }

    def identity_columns(self, columns: list[str]) -> list[str]:
        """The columns of a source with ``columns`` that the record's identity is read
        from (``--map``, ``#N``, ``DATE+TIME``, OBIS codes, the fields' own names)."""
        resolved = self.resolve(columns)
        return [
            column
            for name in self.identity
            if name not in resolved.constants
            for column in source_columns(resolved, name, columns)
        ]

    @property
    def offset_s(self) -> int | None:
        """``tz`` as seconds east of UTC when it is a fixed offset, else None."""
        return fixed_offset(self.tz)

    @property
    def zone_name(self) -> str | None:
        """The IANA name of ``tz`` for a meter's reference row: the zone itself, the
        ``Etc/GMT`` zone of a whole-hour offset (``+10:00`` is ``Etc/GMT-10``, POSIX
        signs), the zone that has kept an offset of minutes all year for decades
        (``+05:30`` is ``Asia/Kolkata``: :data:`MINUTE_OFFSET_ZONES`), None for another."""
        offset = self.offset_s
        if offset is None:
            return self.tz
        if offset == 0:
            return "UTC"
        if offset % 3600:
            return MINUTE_OFFSET_ZONES.get(offset)
        hours = offset // 3600
        return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"

    def factor(self, name: str) -> float:
        """What a field's source value is multiplied by (``--scale`` or ``--unit``)."""
        if name in self.units:
            return self.units[name][0]
        return self.scales.get(name, 1.0)

    def resolve(self, columns: list[str]) -> Mapping:
        """This mapping for a source with these columns: ``#N`` sources replaced by the
        name of the source's N-th column, and fields the source names by OBIS code
        (``1-0:1.8.0``, see :mod:`metrify.sources.obis`) read from those columns.

        A column literally named ``#N`` wins over the position; a position past the last
        column is left as it is (and reported as a missing column). An OBIS column fills
        a field only where ``--map`` and ``--set`` say nothing of it and no column has
        the field's own name: what the user or the file names plainly comes first."""
        coded = obis_columns(columns)
        if not coded and not any(_POSITION.search(src) for src in self.columns.values()):
            return self
        names = set(columns)
        resolved = {}
        for name, src in self.columns.items():
            if src not in names and "+" in src:  # a sum: each part by its position
                resolved[name] = "+".join(_at_position(p.strip(), columns) for p in src.split("+"))
                continue
            resolved[name] = _at_position(src, columns)
        for name, src in coded.items():
            if name not in resolved and name not in self.constants and name not in names:
                resolved[name] = src
        return replace(self, columns=resolved)

    def derives_energy(self, contract: Contract, columns: Iterable[str]) -> bool:
        """Whether interval energy is derived from a cumulative register for a source
        with these columns: the register is read, no energy column or constant is, and
        ``--interval`` gives the length of the intervals to derive (without it, a
        missing energy column stays the error it always was: the API's bodies, which
        have no interval option, are never derived)."""
        names = list(columns)
        available = set(names)
        resolved = self.resolve(names)
        return (
            self.interval_s is not None
            and ENERGY_FIELD in contract.schema
            and REGISTER_FIELD in contract.schema
            and has_source(resolved, REGISTER_FIELD, available)
            and ENERGY_FIELD not in resolved.constants
            and not has_source(resolved, ENERGY_FIELD, available)
        )


def _check_attributes(constants: dict[str, str], converted: list[str]) -> None:
    """Declared meter attributes (:mod:`metrify.sources.attributes`): known values, and
    no declared unit other than kWh where ``--unit`` converts the energy into kWh
    already: the pipeline would convert it from the meter's unit again. (``--scale``
    only multiplies: ``--scale import_kwh=0.001 --set unit=m3`` reads litres as m³.)"""
    for name in METER_ATTRIBUTES:
        value = constants.get(name)
        problem = attribute_problem(name, value) if value is not None else None
        if problem:
            raise MappingError(f"--set {name}={value}: {problem}")
    energy = [f for f in converted if f.endswith("_kwh")]
    unit = constants.get("unit")
    if energy and unit is not None and unit_key(unit) != "kwh":
        raise MappingError(
            f"--set unit={unit} and --unit {energy[0]}=...: --unit converts the values "
            f"into kWh, and the meter's unit {unit} would convert them again (declare the "
            "unit the file's values are in, or convert them, not both)"
        )


def _at_position(src: str, columns: list[str]) -> str:
    """``#N`` as the N-th column's name (a column literally named ``#N`` wins, and a
    position past the last column stays as written); any other name as it is."""
    match = _ONE_POSITION.match(src)
    if match and src not in columns and int(match.group(1)) <= len(columns):
        return columns[int(match.group(1)) - 1]
    return src


def summed(source: str, columns: Iterable[str]) -> list[str] | None:
    """The columns a ``--map FIELD=A+B`` source adds up, when ``source`` is no column
    itself and every ``+``-separated part is one (a column named ``A+B`` wins); else None.

    Meters that count per tariff export one column per tariff register (DSMR's
    ``Electricity 1 (Low Tariff)`` and ``Electricity 2 (Normal Tariff)``): the meter's
    energy is their sum, and loading one of them would store half of it."""
    names = set(columns)
    if "+" not in source or source in names:
        return None
    parts = [part.strip() for part in source.split("+")]
    if len(parts) < 2 or any(part not in names for part in parts):
        return None
    return parts


def source_columns(mapping: Mapping, name: str, columns: Iterable[str]) -> list[str]:
    """The source's columns that field ``name`` is read from: its column, the columns
    it sums or joins (``A+B``), or none."""
    names = list(columns)
    src = mapping.source_column(name)
    if src in names:
        return [src]
    return summed(src, names) or []


def has_source(mapping: Mapping, name: str, columns: Iterable[str]) -> bool:
    """Whether the source supplies field ``name``: its column, or the columns it sums."""
    names = list(columns)
    src = mapping.source_column(name)
    return src in names or summed(src, names) is not None


def fixed_offset(tz: str) -> int | None:
    """Seconds east of UTC of a fixed-offset ``--tz`` (``+10:00``, ``UTC-5``), else None."""
    match = _OFFSET.match(tz.strip())
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    seconds = int(hours) * 3600 + int(minutes or 0) * 60
    return -seconds if sign == "-" else seconds


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
    ts_format: str | None = None,
    units: Iterable[str] = (),
    header: bool = True,
    encoding: str | None = None,
    skip_lines: int = 0,
    sheet: str | None = None,
    wide: str | None = None,
    channels: str | None = None,
    register_digits: int | None = None,
    detect_interval: bool = False,
) -> Mapping:
    """Parse CLI-style options into a Mapping, checking them against the contract.

    ``detect_interval``: the caller detects a missing interval from the timestamps (a
    file load); without it, register reads need ``--interval``."""
    columns = _pairs(maps, "--map")
    unit_names = _pairs(units, "--unit")
    constants = _pairs(sets, "--set")
    factors: dict[str, float] = {}
    for name, value in _pairs(scales, "--scale").items():
        try:
            factors[name] = float(value)
        except ValueError:
            raise MappingError(f"--scale {name}={value}: the factor must be a number") from None
    for option, names, allowed in (
        ("--map", columns, mappable(contract)),
        ("--set", constants, mappable(contract)),
        ("--scale", factors, contract.fields),
        ("--unit", unit_names, contract.fields),
    ):
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise MappingError(
                f"{option}: {', '.join(unknown)} is not a field of {contract.kind}; "
                f"fields are {', '.join(allowed)}"
            )
    _check_attributes(constants, list(unit_names))
    if (
        interval_s is not None
        and "interval_s" in contract.schema
        and not interval_is_valid(interval_s)
    ):
        raise MappingError(f"--interval {interval_s}: must be 60..86400 seconds and divide the day")
    both = sorted(set(factors) & set(unit_names))
    if both:
        raise MappingError(
            f"--scale and --unit both given for {', '.join(both)}: use one "
            "(--unit converts from a named unit, --scale multiplies by a number)"
        )
    conversions: dict[str, tuple[float, float, str]] = {}
    if unit_names:
        from metrify.sources.units import UnitError, conversion

        for name, unit in unit_names.items():
            try:
                factor, offset = conversion(name, unit)
            except UnitError as exc:
                raise MappingError(f"--unit {name}={unit}: {exc}") from None
            conversions[name] = (factor, offset, unit)
    zone = (tz or "UTC").strip()
    offset_s = fixed_offset(zone)
    if offset_s is not None:
        if abs(offset_s) > 14 * 3600:
            raise MappingError(f"--tz {zone}: a UTC offset lies between -14:00 and +14:00")
    elif not known_zones([zone]):
        raise MappingError(
            f"--tz {zone}: unknown time zone (use an IANA name like Europe/London, "
            "or a fixed UTC offset like +10:00 for a file in standard time all year)"
        )
    if ts_format is not None:
        _check_ts_format(ts_format)
    codec = codec_name(encoding) if encoding is not None else "utf-8"
    if skip_lines < 0:
        raise MappingError(f"--skip-lines {skip_lines}: must be 0 or more")
    pair = _channels(channels) if channels is not None else None
    if wide is not None:
        _check_wide(contract, wide, columns, constants, pair)
    if register_digits is not None and not 1 <= register_digits <= 15:
        raise MappingError(f"--register-digits {register_digits}: must be 1..15")
    mapping = Mapping(
        columns=columns,
        constants=constants,
        scales=factors,
        interval_s=interval_s,
        tz=zone,
        ts_end=ts_end,
        ts_format=ts_format,
        units=conversions,
        header=header,
        encoding=codec,
        skip_lines=skip_lines,
        sheet=sheet.strip() if sheet is not None and sheet.strip() else None,
        wide=wide.strip() if wide is not None else None,
        channels=pair,
        identity=tuple(f for f in (*contract.key, "interval_s") if f in contract.schema),
        register_digits=register_digits,
        detect_interval=detect_interval
        and interval_s is None
        and contract.time_series
        and "interval_s" in contract.schema,
    )
    if REGISTER_FIELD in columns and ENERGY_FIELD not in columns and ENERGY_FIELD not in constants:
        # Interval energy will be derived from the register (unless the file has a
        # column named import_kwh): reads are instants, the intervals need a length.
        if ts_end:
            raise MappingError(
                f"--ts-end does not apply to {REGISTER_FIELD} reads: each read is an "
                "instant (the derived intervals start at their own times)"
            )
        if interval_s is None and not mapping.detect_interval:
            raise MappingError(
                f"--map {REGISTER_FIELD}=... without an energy column derives interval "
                "energy from the register: pass --interval SECONDS, the length of the "
                "intervals to derive"
            )
    return mapping


def _channels(given: str) -> tuple[str, str]:
    """``--channels CHANNEL=VALUE`` as its two column names."""
    channel, sep, value = given.partition("=")
    if not sep or not channel.strip() or not value.strip():
        raise MappingError(
            f"--channels {given}: expected CHANNEL=VALUE, the column naming each row's "
            "channel and the column holding its value"
        )
    return channel.strip(), value.strip()


def _check_wide(
    contract: Contract,
    wide: str,
    columns: dict[str, str],
    constants: dict[str, str],
    channels: tuple[str, str] | None,
) -> None:
    """``--wide FIELD`` names a number field of the kind that nothing else supplies;
    with ``--channels CATEGORY=FIELD`` (day rows of several series, a row per series)
    it names the column the channels are then read from, any name."""
    import polars as pl

    name = wide.strip()
    if not contract.time_series:
        raise MappingError(f"--wide: {contract.kind} has no times")
    if channels is not None and channels[1] == name:
        return
    if contract.schema.get(name) != pl.Float64:
        numbers = [n for n, t in contract.schema.items() if t == pl.Float64]
        raise MappingError(
            f"--wide {wide}: not a number field of {contract.kind}; fields are {', '.join(numbers)}"
        )
    if name in columns or name in constants:
        raise MappingError(
            f"--wide {name} reads {name} from the time-of-day columns: drop --map/--set {name}"
        )


def codec_name(encoding: str) -> str:
    """The codec name of ``--encoding`` (or an HTTP body's ``charset``), refused when
    Python does not know it or when it does not write the CSV's line ends, delimiters
    and quotes as the ASCII bytes the reader cuts lines at (UTF-16 and UTF-32 files
    must be converted first)."""
    import codecs

    try:
        name = codecs.lookup(encoding.strip()).name
    except LookupError:
        raise MappingError(
            f"--encoding {encoding}: unknown character set (try utf-8, cp1252, latin-1)"
        ) from None
    if name in ("utf-8", "utf-8-sig"):  # the reader drops a byte-order mark itself
        return "utf-8"
    marks = '\n\r,;\t"0123456789:.-+ '
    try:
        same = marks.encode(name) == marks.encode("ascii")
    except (UnicodeError, LookupError):
        same = False
    if not same:
        raise MappingError(
            f"--encoding {encoding}: files in {name} do not keep ASCII line ends; "
            f"convert them to UTF-8 first (iconv -f {name} -t utf-8)"
        )
    return name


def _check_ts_format(fmt: str) -> None:
    """Refuse a ``--ts-format`` that names no date, or that the parser cannot use, before
    any row is read (every time would otherwise fail, row by row)."""
    if "%" not in fmt or not re.search(r"%[dejmbBYyFDcsT+]", fmt):
        raise MappingError(
            f"--ts-format {fmt}: no date in it; give a strftime format such as "
            "'%d/%m/%Y %H:%M' or '%m/%d/%Y %I:%M %p'"
        )
    import polars as pl

    try:
        pl.Series(["2024-01-01"]).str.to_datetime(fmt, strict=False)
    except pl.exceptions.PolarsError as exc:
        raise MappingError(f"--ts-format {fmt}: not a format the parser can use ({exc})") from None


def check_mapped_columns(mapping: Mapping, columns: list[str]) -> None:
    """Raise :class:`MappingError` if ``--map`` names a column the source does not have.

    An unknown column would otherwise read as a column of nulls: a mistyped optional
    field (``--map export_kwh=gg`` against ``GG``) would load every row without it,
    silently. Column names are matched exactly, as everywhere else; a name that differs
    only in case is suggested."""
    available = set(columns)
    by_case = {c.casefold(): c for c in columns}
    for name, given in mapping.resolve(columns).columns.items():
        if given in available or summed(given, columns) is not None:
            continue
        src = given
        if "+" in given:  # a sum: name the first part that is missing
            src = next(p.strip() for p in given.split("+") if p.strip() not in available)
        near = by_case.get(src.casefold())
        hint = f" (did you mean {near!r}? names are case-sensitive)" if near else ""
        if _ONE_POSITION.match(src):
            hint = f" (the file has {len(columns)} column{'s' if len(columns) != 1 else ''})"
        if not hint and mapping.header:
            hint = (
                " (if the table starts lower down in the file, pass --skip-lines N; "
                "in a workbook, --sheet names the sheet)"
            )
        raise MappingError(
            f"--map {name}={given}: no column {src!r}{hint}; "
            f"columns are {', '.join(columns) or '(none)'}"
        )
