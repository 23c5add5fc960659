"""How a number's text becomes a number: padding and null spellings, decimal commas,
thousands grouped by commas, dots, spaces or apostrophes, units written after the
number, columns added up (``--map FIELD=A+B``), and conversions kept free of binary
crumbs.

:func:`metrify.sources.decode.decode` reads every number column through
:func:`decimal_text`. The costly looks (which comma a batch writes, which units follow
its numbers) run only for a batch in which some number did not read: decode then asks
:func:`hints_for` and decodes the batch again with them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from metrify.contracts.records import Contract
from metrify.sources.mapping import Mapping, summed

#: strings that mean "no value" in the files utilities send.
NULL_TOKENS = ["", "null", "none", "na", "n/a", "nan", "-"]


def is_string(dtype: pl.DataType) -> bool:
    return dtype == pl.String


#: every spelling of the null tokens in upper and lower case: looked up as they are,
#: the text need not be lower-cased first (half the cost of cleaning a column)
_NULL_SPELLINGS: Final = sorted(
    {
        "".join(p)
        for t in NULL_TOKENS
        for p in itertools.product(*({c.lower(), c.upper()} for c in t))
    }
)


def clean(col: str) -> pl.Expr:
    """Strip padding and turn null tokens (in any case) into real nulls."""
    stripped = pl.col(col).str.strip_chars()
    return pl.when(stripped.is_in(_NULL_SPELLINGS)).then(None).otherwise(stripped)


#: a number with a decimal comma, perhaps grouped by dots (``0,25``, ``1.234,5``), and
#: one grouped by commas, perhaps with a decimal point (``1,234``, ``12,345.5``; a
#: group never starts with 0, so ``0,219`` is a decimal comma)
_DECIMAL_COMMA: Final = r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+$"
_GROUPED_BY_COMMAS: Final = r"^[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$"
AMBIGUOUS_NUMBER: Final = (
    "a comma that may be a decimal comma or a thousands separator (1,234), and no other"
    " number of the batch tells which"
)


#: a number followed by its unit (``0.123 kWh``, ``72.5 °F``, ``12kWh``): the number and
#: the unit's text
_UNIT_SUFFIX: Final = (
    r"^\s*([+-]?\.?\d(?:[\d.,' \u00a0\u202f]*\d)?(?:[eE][+-]?\d+)?)\s*([^\d\s.,+'-][^\s]*)\s*$"
)
#: thousands grouped by a space (also the no-break spaces French and Nordic locales
#: write) or an apostrophe (Swiss): never a decimal mark, so never ambiguous
_SPACED_GROUPS: Final = r"^[+-]?\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?$"
_GROUP_MARKS: Final = r"[ \u00a0\u202f']"
#: distinct units looked up per column (each is a pint lookup)
_MAX_UNITS: Final = 16


@dataclass(frozen=True)
class NumberHints:
    """What a batch's failed numbers showed, for decoding it again: how its texts use
    the comma (:func:`_number_marks`) and, per text column, the units written after its
    numbers with each one's ``(factor, offset)`` to the field's contract unit."""

    marks: str | None = None
    units: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    #: some number groups its thousands by spaces or apostrophes (``1 234,5``)
    spaced: bool = False
    #: per text column with units and few distinct texts: each distinct text, its
    #: number text and its unit (see :func:`_split_units`)
    splits: dict[str, pl.DataFrame] = field(default_factory=dict)


def _number_sources(
    contract: Contract, mapping: Mapping, raw: pl.DataFrame
) -> list[tuple[str, str]]:
    """(field, text column) of every column the batch reads a decimal number from."""
    return [
        (name, src)
        for name, dtype in contract.schema.items()
        if dtype == pl.Float64 and name not in mapping.constants
        for src in (
            summed(mapping.source_column(name), raw.columns) or [mapping.source_column(name)]
        )
        if src in raw.columns and is_string(raw.schema[src])
    ]


def _value_units(
    contract: Contract, mapping: Mapping, raw: pl.DataFrame
) -> dict[str, dict[str, tuple[float, float]]]:
    """The units written after the numbers of the batch's number columns (``0.123 kWh``,
    ``72.5 °F``), each with its conversion to the field's contract unit, for the fields
    no ``--unit`` or ``--scale`` speaks for (those say the unit already). A unit that is
    unknown, or of another kind than the field's, is left out: its values stay
    non-numeric."""
    from metrify.sources.units import UnitError, conversion

    found: dict[str, dict[str, tuple[float, float]]] = {}
    for name, src in _number_sources(contract, mapping, raw):
        if name in mapping.units or name in mapping.scales:
            continue
        # (over the distinct texts: a column's values repeat)
        units = raw.get_column(src).unique().str.extract(_UNIT_SUFFIX, 2).drop_nulls().unique()
        known: dict[str, tuple[float, float]] = {}
        for unit in units.head(_MAX_UNITS).to_list():
            try:
                known[unit] = conversion(name, unit)
            except UnitError:
                continue
        if known:
            found[src] = known
    return found


#: decimals a converted value keeps: a conversion's binary crumbs (950 Wh is
#: 0.9500000000000001 kWh, 72.5 degF 22.49999999999912 degC) go, and 1e-10 of a kWh or a
#: degree is far below any meter's resolution
_CONVERTED_DECIMALS: Final = 10


def in_contract_unit(value: pl.Expr, factor: pl.Expr, offset: pl.Expr) -> pl.Expr:
    """``value`` in its unit as the contract's: ``value * factor + offset``, rounded to
    :data:`_CONVERTED_DECIMALS`."""
    return (value * factor + offset).round(_CONVERTED_DECIMALS)


def _ungrouped(text: pl.Expr) -> pl.Expr:
    """Numbers whose thousands are grouped by spaces or apostrophes, without them."""
    return (
        pl.when(text.str.strip_chars().str.contains(_SPACED_GROUPS))
        .then(text.str.replace_all(_GROUP_MARKS, ""))
        .otherwise(text)
    )


def hints_for(contract: Contract, mapping: Mapping, raw: pl.DataFrame) -> NumberHints | None:
    """What a batch whose numbers did not all read needs to be read again: the units
    after its numbers, thousands grouped by spaces or apostrophes, and its use of the
    comma judged on the numbers without either (``1,5 kWh``, ``1 234,5``). None when
    none of them would change anything."""
    units = _value_units(contract, mapping, raw)
    columns = list(dict.fromkeys(src for _, src in _number_sources(contract, mapping, raw)))
    splits = {
        src: t for src, known in units.items() if (t := _split_units(raw, src, known)) is not None
    }
    # The numbers without any unit after them, for the checks below (which ask whether
    # any text is so): a column of few distinct texts is checked on those alone.
    bare: dict[str, pl.Series] = {}
    for src in columns:
        if src in splits:
            bare[src] = splits[src].get_column("b")
        elif src in units:
            bare[src] = raw.get_column(src).str.replace(_UNIT_SUFFIX, "$1")
        else:
            bare[src] = raw.get_column(src)
    spaced = any(
        text.str.strip_chars().str.contains(_SPACED_GROUPS).any() for text in bare.values()
    )
    if spaced:
        bare = {src: pl.select(_ungrouped(pl.lit(text))).to_series() for src, text in bare.items()}
    marks = _number_marks(bare, columns)
    if marks is None and not units and not spaced:
        return None
    return NumberHints(marks, units, spaced, splits)


def _split_units(
    raw: pl.DataFrame, src: str, known: dict[str, tuple[float, float]]
) -> pl.DataFrame | None:
    """Column ``src``'s distinct texts (``t``), each with its number text (``n``: the
    unit taken off where it is one of ``known``) and its unit (``u``), when the column
    has few distinct texts (a meter's values repeat: 0.219 kWh comes back all year).
    Reading units takes two passes of a pattern with captures over each text; over the
    distinct texts and looked up per row, a column of values with units reads about as
    fast as one without. None for a column of mostly distinct texts."""
    column = raw.get_column(src)
    distinct = column.drop_nulls().unique()
    if distinct.len() * 4 > column.len():
        return None
    table = pl.DataFrame({src: distinct}).select(t=pl.col(src), c=clean(src))
    table = table.with_columns(u=pl.col("c").str.extract(_UNIT_SUFFIX, 2))
    number = pl.col("c").str.replace(_UNIT_SUFFIX, "$1")
    return table.select(
        "t",
        n=pl.when(pl.col("u").is_in(list(known))).then(number).otherwise(pl.col("c")),
        u="u",
        b=pl.col("t").str.replace(_UNIT_SUFFIX, "$1"),  # any unit off, as hints_for checks
    )


def _looked_up(src: str, table: pl.DataFrame, column: str) -> pl.Expr:
    """Per row of ``src``: ``column`` of its text's row in a :func:`_split_units` table."""
    return pl.col(src).replace_strict(
        table.get_column("t"), table.get_column(column), default=None, return_dtype=pl.String
    )


def unit_conversion(src: str, hints: NumberHints | None) -> tuple[pl.Expr, pl.Expr] | None:
    """Per row of column ``src``: the factor and offset its written unit asks for (1 and
    0 without one), or None when the column's numbers carry no unit."""
    units = hints.units.get(src) if hints is not None else None
    if not units:
        return None
    assert hints is not None
    table = hints.splits.get(src)
    unit = (
        _looked_up(src, table, "u")
        if table is not None
        else clean(src).str.extract(_UNIT_SUFFIX, 2)
    )
    factor, offset = pl.lit(1.0), pl.lit(0.0)
    for text, (f, o) in units.items():
        factor = pl.when(unit == text).then(pl.lit(f)).otherwise(factor)
        offset = pl.when(unit == text).then(pl.lit(o)).otherwise(offset)
    return factor, offset


def _number_marks(raw: dict[str, pl.Series], columns: list[str]) -> str | None:
    """How the batch's number columns (``columns``, text) use the comma: ``"decimal"``,
    ``"grouped"`` (thousands) or ``"ambiguous"``; None where none has one.

    Exports written in a European locale (often the files with ``;`` between fields)
    put a decimal comma in numbers, and some group thousands by dots: ``0,25``,
    ``1.234,5``. Others group thousands by commas: ``1,234.5``. A value like ``1,234``
    reads either way, so the batch decides, as one file is written in one locale: if
    any value can only be a decimal comma (``0,25``, ``12345,678``), commas are decimal
    commas; if any can only group thousands (``12,345,678``, ``1,234.5``), they group
    thousands. A batch showing both is given None too: no one reading fits it, and its
    comma values fail as non-numeric. Columns without a comma cost one scan each."""
    decimal_only = grouped_only = seen = False
    for name in columns:
        column = raw[name]
        if not column.str.contains(",", literal=True).any():
            continue
        seen = True
        values = column.str.strip_chars()
        decimal = values.str.contains(_DECIMAL_COMMA).fill_null(False)
        grouped = values.str.contains(_GROUPED_BY_COMMAS).fill_null(False)
        decimal_only = decimal_only or bool((decimal & ~grouped).any())
        grouped_only = grouped_only or bool((grouped & ~decimal).any())
    if decimal_only and grouped_only:
        return None
    if decimal_only or grouped_only:
        return "decimal" if decimal_only else "grouped"
    return "ambiguous" if seen else None


def _number_text(text: pl.Expr, marks: str | None) -> tuple[pl.Expr, pl.Expr | None]:
    """A number column's text made readable by a float cast under the batch's ``marks``
    (:func:`_number_marks`), and an expression true where a value cannot be told (None
    if none can be). A batch whose comma values all read both ways has them refused as
    ambiguous, rather than read 1,000 times too large or too small."""
    if marks == "decimal":
        european = text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        return pl.when(text.str.contains(_DECIMAL_COMMA)).then(european).otherwise(text), None
    if marks == "grouped":
        plain = text.str.replace_all(",", "", literal=True)
        return pl.when(text.str.contains(_GROUPED_BY_COMMAS)).then(plain).otherwise(text), None
    if marks == "ambiguous":
        return text, text.str.contains(_DECIMAL_COMMA).fill_null(False)
    return text, None


def decimal_text(
    raw: pl.DataFrame,
    src: str,
    name: str,
    hints: NumberHints | None,
    early: list[tuple[pl.Expr, str]],
) -> pl.Expr:
    """Column ``src``'s text as field ``name``'s float cast reads it: padding and null
    tokens cleaned, a unit written after the number taken off (:func:`unit_conversion`
    converts), commas read as the batch uses them (a value that cannot be told is
    added to ``early``)."""
    if not is_string(raw.schema[src]):
        return pl.col(src)
    cleaned = clean(src)
    if hints is not None and src in hints.splits:  # few distinct texts: looked up
        cleaned = _looked_up(src, hints.splits[src], "n")
    elif hints is not None and src in hints.units:  # only the units it could convert
        unit = cleaned.str.extract(_UNIT_SUFFIX, 2)
        known = unit.is_in(list(hints.units[src]))
        cleaned = pl.when(known).then(cleaned.str.replace(_UNIT_SUFFIX, "$1")).otherwise(cleaned)
    if hints is not None and hints.spaced:
        cleaned = _ungrouped(cleaned)
    text, ambiguous = _number_text(cleaned, hints.marks if hints is not None else None)
    if ambiguous is not None:
        early.append((ambiguous, f"ambiguous {name}: {AMBIGUOUS_NUMBER}"))
    return text


def summed_number(
    raw: pl.DataFrame,
    name: str,
    parts: list[str],
    hints: NumberHints | None,
    early: list[tuple[pl.Expr, str]],
    number_checks: list[int],
) -> pl.Expr:
    """Field ``name`` as the sum of the columns ``parts`` (``--map FIELD=A+B``), each
    read as a number column is; adds the field's checks to ``early``. A row missing
    one part has no value: the sum of what was counted would understate it."""
    values: list[pl.Expr] = []
    unread: list[pl.Expr] = []
    for part in parts:
        text = decimal_text(raw, part, name, hints, early)
        value = text.cast(pl.Float64, strict=False)
        unread.append(text.is_not_null() & value.is_null())
        conversion = unit_conversion(part, hints)
        if conversion is not None:
            value = in_contract_unit(value, *conversion)
        values.append(value)
    number_checks.append(len(early))
    early.append((pl.any_horizontal(unread), f"non-numeric {name}"))
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total
