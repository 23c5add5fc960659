"""Decode raw source rows into contract records, column-wise.

A raw batch (strings from CSV/JSON, or typed Parquet/simulator columns) becomes a frame in
the contract's exact schema plus a frame of rejects. A row that cannot be a record (no
key, unparseable time or number, impossible value) is never dropped: it is returned with
its original fields as JSON and a reason, for the quarantine table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.contracts.columns import filled
from metrify.contracts.localtime import known_zones
from metrify.contracts.records import (
    ID_PATTERN,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    READING,
    Contract,
    Quality,
)
from metrify.contracts.timespan import EARLIEST_TS, LATEST_TS, WINDOW_TEXT
from metrify.sources.attributes import (
    ATTRIBUTE_COLUMN,
    METER_ATTRIBUTES,
    attribute_checks,
    attribute_texts,
)
from metrify.sources.batches import FLAGS
from metrify.sources.mapping import (
    ENERGY_FIELD,
    ESTIMATED_INPUT,
    REGISTER_FIELD,
    Mapping,
    fixed_offset,
    has_source,
    mappable,
    summed,
)
from metrify.sources.numbers import (
    NumberHints,
    clean,
    decimal_text,
    hints_for,
    in_contract_unit,
    is_string,
    summed_number,
    unit_conversion,
)

_ISO_UTC = "%Y-%m-%dT%H:%M:%S%.fZ"
_AWARE_FORMATS = [
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M%z",
    "%a, %d %b %Y %H:%M:%S%z",  # RFC 2822 / HTTP dates ("Mon, 01 Jan 2024 01:30:00 GMT")
]
_NAIVE_FORMATS = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y-%m-%d %I:%M:%S %p",  # a 12-hour clock, as US exports write it
    "%Y-%m-%d %I:%M %p",
    # the month by its English name: Oracle's and SAP's 01-JAN-2024, spreadsheets'
    # 1 Jan 2024 and Jan 1, 2024 (tried only on what nothing above read)
    "%d-%b-%Y %H:%M:%S",
    "%d-%b-%Y %H:%M",
    "%d-%b-%Y",
    "%d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M",
    "%d %b %Y",
    "%b %d, %Y %I:%M:%S %p",
    "%b %d, %Y %I:%M %p",
    "%b %d, %Y %H:%M",
    "%b %d, %Y",
    "%d %B %Y %H:%M:%S",
    "%d %B %Y %H:%M",
    "%d %B %Y",
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y %H:%M",
    "%B %d, %Y",
]
#: the plain shapes most exports write local times in, each with the one format that
#: reads every text of that shape as the general readers below do (no padding, no
#: offset, no fraction: nothing for them to strip or choose between)
_PLAIN_TIMES: Final = (
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$", "%Y-%m-%d %H:%M:%S"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$", "%Y-%m-%dT%H:%M:%S"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$", "%Y-%m-%d %H:%M"),
)
#: rows looked at to guess a column's shape (the first non-null one decides)
_SNIFF_ROWS: Final = 64

REJECT_SCHEMA = {"raw": pl.String(), "reason": pl.String(), "line": pl.Int32()}


class SchemaMismatch(ValueError):
    """The source lacks a column the contract requires (a file-level problem)."""


@dataclass
class Decoded:
    """Records in the contract schema, and the rows that could not become records."""

    records: pl.DataFrame
    rejects: pl.DataFrame  # raw, reason, line
    ignored_columns: list[str] = field(default_factory=list)
    #: contract fields the source actually supplied (reference upserts touch only these)
    present: list[str] = field(default_factory=list)
    #: the place in the raw batch (0-based) of each record, in order
    rows: pl.Series = field(default_factory=lambda: pl.Series("rows", [], dtype=pl.Int32))
    #: the place in the raw batch (0-based) of each reject, in order
    reject_rows: pl.Series = field(default_factory=lambda: pl.Series("rows", [], dtype=pl.Int32))
    #: readings: the attributes the source declares of their meters (``meter_id``, and
    #: ``commodity`` and/or ``unit``; see :mod:`metrify.sources.attributes`), or None
    declared: pl.DataFrame | None = None


#: the helper column of a time joined from a date and a time column
_TS_TEXT: Final = "_ts_text"
#: how a source writes that it estimated a value, and that it did not (compared in lower
#: case): booleans as CSV writers and PostgreSQL write them, the words, and the quality
#: letters of meter data providers (E estimated, S substituted, A actual)
_ESTIMATED_YES: Final = (
    "true", "t", "yes", "y", "1", "e", "est", "estimate", "estimated", "s", "sub",
    "substitute", "substituted",
)  # fmt: skip
_ESTIMATED_NO: Final = ("false", "f", "no", "n", "0", "a", "act", "actual", "measured")
#: a time of ``24:00`` (or ``24:00:00``) at the end of the text, before any offset
_END_OF_DAY: Final = r"([ T])24:00(?::00(?:\.0+)?)?(\s*(?:[zZ]|[+-]\d{2}:?\d{2})?\s*)$"


def _first_format(text: pl.Series, formats: list[str], **options: str) -> pl.Series:
    """Per row, the time the first of ``formats`` reads from it (what a coalesce over
    the formats gives), trying the next format only on the rows still unread: a coalesce
    parses every row with every format, and timestamps were most of a file's decoding."""
    out = text.str.to_datetime(formats[0], strict=False, **options)  # type: ignore[arg-type]
    for fmt in formats[1:]:
        unread = (out.is_null() & text.is_not_null()).arg_true()
        if not unread.len():
            break
        tried = text.gather(unread).str.to_datetime(fmt, strict=False, **options)  # type: ignore[arg-type]
        out = out.scatter(unread, tried)
    return out


def plain_times(text: pl.Series) -> pl.Series | None:
    """Naive times of a column written in one plain shape throughout (``2013-01-01
    00:30:00``, the same with a ``T``, or without seconds), read with that shape's one
    format; None when the column is not all of one such shape (then the general readers
    of :func:`_parse_ts` decide, row by row).

    The shape is guessed from the first non-null text and checked on every row with one
    anchored pattern before anything is parsed: for such a column the general path
    (padding stripped, offsets and epoch numbers looked for, up to three formats tried,
    each with optional fractions) reads the same times at several times the cost, and
    timestamps were most of a text file's decoding.
    """
    head = text.head(_SNIFF_ROWS).drop_nulls()
    if not head.len():
        return None
    first = str(head[0])
    for pattern, fmt in _PLAIN_TIMES:
        if re.match(pattern, first) is None:
            continue
        if not bool(text.str.contains(pattern).fill_null(True).all()):
            return None
        return text.str.to_datetime(fmt, strict=False, time_unit="us")
    return None


def wire_times(text: pl.Series) -> pl.Series:
    """Times in the wire format (ISO 8601 in UTC with a Z), null where another format
    (or nothing readable) is: the fast first pass of :func:`decode`'s parsing."""
    return text.str.to_datetime(_ISO_UTC, strict=False, time_unit="us", time_zone="UTC")


#: epoch numbers below this are seconds, below :data:`_EPOCH_US_FROM` milliseconds,
#: above it microseconds: 1e11 s is the year 5138, 1e11 ms is March 1973 and 1e14 ms
#: the year 5138, so every time a store can hold reads one way only
_EPOCH_MS_FROM: Final = 10**11
_EPOCH_US_FROM: Final = 10**14
_EPOCH_TEXT: Final = r"^[+-]?\d+(\.\d+)?$"


def _epoch(seconds_or_more: pl.Expr) -> pl.Expr:
    """A number of seconds, milliseconds or microseconds since 1970-01-01 UTC (told
    apart by size, see :data:`_EPOCH_MS_FROM`) as a UTC time, column-wise."""
    value = seconds_or_more.cast(pl.Float64)
    size = value.abs()
    us = (
        pl.when(size < _EPOCH_MS_FROM)
        .then(value * 1e6)
        .when(size < _EPOCH_US_FROM)
        .then(value * 1e3)
        .otherwise(value)
    )
    safe = pl.when(us.is_finite() & (us.abs() < 9e18)).then(us.round(0)).otherwise(None)
    return pl.from_epoch(safe.cast(pl.Int64), time_unit="us").dt.replace_time_zone("UTC")


#: digits-only times read as local calendar times before epoch numbers: YYYYMMDD,
#: YYYYMMDDhhmm, YYYYMMDDhhmmss (as epoch numbers they would fall in 1970-1973 or, in
#: milliseconds, before 2001; read so only where they are no valid date of 1970-2199)
_COMPACT: Final = ((14, "%Y%m%d%H%M%S"), (12, "%Y%m%d%H%M"), (8, "%Y%m%d"))


def _compact(text: pl.Series, numeric: pl.Series) -> pl.Series:
    """The digits-only rows of ``text`` that are compact calendar times, as naive
    times; null elsewhere."""
    out = filled(None, pl.Datetime("us"), text.len())
    length = text.str.len_chars()
    for size, fmt in _COMPACT:
        rows = (numeric & (length == size)).fill_null(False).arg_true()
        if rows.len():
            read = text.gather(rows).str.to_datetime(fmt, strict=False, time_unit="us")
            out = out.scatter(rows, read)
    year = out.dt.year()
    return out.zip_with(((year >= 1970) & (year < 2200)).fill_null(False), out.clear(out.len()))


#: a date written day or month first, year last (``01.03.2024``, ``1/3/2024``,
#: ``01-03-2024``; dots also with a two-digit year, ``01.03.24``), and what follows it
_DATE_LAST_YEAR: Final = r"^(\d{1,2})([./-])(\d{1,2})[./-](\d{4}|\d{2}(?:\D|$))"
AMBIGUOUS_DATE: Final = "ambiguous date: day or month first? (pass --ts-format)"


def _year_first(text: pl.Series) -> tuple[pl.Series, pl.Series | None]:
    """Dates written with the year last rewritten year first (``2024-03-01``), so the
    readers below take them; other texts as they are.

    Which of the first two numbers is the day is decided for the column: a first
    number above 12 makes it day first, a second above 12 month first. Where no value
    tells, dots and dashes are read day first (``01.03.2024`` is how Europe writes the
    first of March, and nobody writes month first with dots), and slashes by the order
    that makes consecutive rows step by a day or less rather than by a month; a column
    that still cannot tell (one date throughout, ``03/04/2024``) is left unread, and its
    rows fail as :data:`AMBIGUOUS_DATE` (see :func:`_parse_ts`). A column that shows
    both orders is left unread too: no one order reads it. The second value marks the
    rows left unread so (None when there are none)."""
    if not text.str.contains(r"^\d{1,2}[./-]").any():
        return text, None  # the common case (year first) costs one scan, no groups
    parts = text.str.extract_groups(_DATE_LAST_YEAR)
    first = parts.struct.field("1").cast(pl.Int32, strict=False)
    if first.null_count() == text.len():
        return text, None
    second = parts.struct.field("3").cast(pl.Int32, strict=False)
    day_first = bool((first > 12).any())
    month_first = bool((second > 12).any())
    digits = parts.struct.field("4").str.extract(r"^(\d+)")
    year = digits.zip_with(digits.str.len_chars() != 2, "20" + digits)
    if day_first == month_first and not day_first:
        slashed = parts.struct.field("2") == "/"
        if not slashed.any():
            day_first = True
        else:
            day_first, month_first = _order_by_steps(
                first.filter(slashed), second.filter(slashed), year.filter(slashed)
            )
    if day_first == month_first:
        return text, first.is_not_null()
    day, month = (first, second) if day_first else (second, first)
    rest = text.str.replace(_DATE_LAST_YEAR, "$4").str.replace(r"^\d+", "")
    rewritten = pl.select(
        pl.concat_str(
            year,
            pl.lit("-"),
            pl.lit(month).cast(pl.String).str.zfill(2),
            pl.lit("-"),
            pl.lit(day).cast(pl.String).str.zfill(2),
            pl.lit(rest),
        )
    ).to_series()
    return rewritten.zip_with(first.is_not_null(), text).rename(text.name), None


def _order_by_steps(a: pl.Series, b: pl.Series, y: pl.Series) -> tuple[bool, bool]:
    """(day first, month first) for slashed dates ``a/b/y`` (in row order) whose numbers
    are all 12 or less: the order under which more consecutive rows are a day or less
    apart (a series of readings steps by its interval; the other order jumps by months
    where the date changes). Both False when neither order is ahead."""
    frame = pl.DataFrame({"a": a, "b": b, "y": y.cast(pl.Int32, strict=False)}).drop_nulls()
    scores = []
    for day, month in (("a", "b"), ("b", "a")):
        dates = frame.select(pl.date(pl.col("y"), pl.col(month), pl.col(day))).to_series()
        steps = dates.diff().drop_nulls().dt.total_days().abs()
        scores.append(int((steps <= 1).sum()) - int((steps > 1).sum()))
    if scores[0] == scores[1]:
        return False, False
    return scores[0] > scores[1], scores[1] > scores[0]


def _parse_ts(
    raw: pl.DataFrame, col: str, mapping: Mapping, id_expr: pl.Expr
) -> tuple[dict[str, pl.Series], pl.Expr, pl.Expr, pl.Expr]:
    """Parse timestamps: (helper columns to add to ``raw``, the UTC expression, an
    expression true where parsing failed, one true for a local time the zone skips).

    Naive times are local to ``mapping.tz``. In the autumn repeated hour the first
    occurrence per id is read as the earlier instant and the second as the later one
    (files list time in order); times that do not exist (spring gap) fail. Times with an
    offset are read with the aware formats, the others with the naive ones, each row
    until a format fits (eagerly, see :func:`_first_format`). Digits that make a compact
    date (``20240101``, ``202401010030``, ``20240101003000``) are a local time; any other
    plain number is a time since the epoch (seconds, milliseconds or microseconds by
    its size), always UTC.
    """
    column = raw.get_column(col)
    if mapping.ts_format is None:
        # A column of one plain local shape (most exports) is read with its one format
        # (unless what it did not read is a 24:00, which the general path reads).
        plain = plain_times(column)
        if plain is not None and (
            plain.null_count() == column.null_count() or _end_of_day(column) is None
        ):
            return _plain_ts(plain, col, mapping, id_expr)
        # The wire format (what our producers and most systems send: ISO 8601 in UTC
        # with a Z) is read in one pass; anything else goes through the general readers.
        iso = wire_times(column)
        if iso.null_count() == column.null_count():
            no = pl.lit(False)
            return {"_ts_iso": iso}, pl.col("_ts_iso"), no, no
    end_of_day = _end_of_day(column)
    if end_of_day is None:
        return _general_ts(raw, col, mapping, id_expr)
    # each 24:00 read as 00:00 of its own date, then moved to the next day
    rewritten = raw.with_columns(column.str.replace(_END_OF_DAY, "${1}00:00${2}"))
    found, parsed, bad, skipped = _general_ts(rewritten, col, mapping, id_expr)
    return {k: _a_day_later(v, end_of_day) for k, v in found.items()}, parsed, bad, skipped


def _general_ts(
    raw: pl.DataFrame, col: str, mapping: Mapping, id_expr: pl.Expr
) -> tuple[dict[str, pl.Series], pl.Expr, pl.Expr, pl.Expr]:
    """:func:`_parse_ts` past its fast paths: ``--ts-format``, or each row read by the
    readers that fit it (day- or month-first dates, offsets, epochs, compact dates)."""
    if mapping.ts_format is not None:
        return _formatted_ts(raw, col, mapping, id_expr)
    text = raw.select(
        pl.col(col)
        .str.strip_chars()
        # "... 01:00:00 UTC" (BigQuery, many loggers), "... GMT" (HTTP dates): before
        # the first T is read as the date's separator
        .str.replace(r"(?i)\s*\b(?:UTC|GMT)$", "+00:00")
        .str.replace(r"^(\d{4})/(\d{1,2})/(\d{1,2})", "$1-$2-$3")
        # ISO 8601's basic form, 20240101T001500Z
        .str.replace(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", "$1-$2-${3}T$4:$5:$6")
        .str.replace(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})", "$1-$2-${3}T$4:$5")
        .str.replace("T", " ", literal=True)
        .str.replace(r"[zZ]$", "+00:00")
        # an offset of hours alone, as PostgreSQL writes timestamptz ("...00-06")
        .str.replace(r"(\d:\d{2}(?:\.\d+)?)\s*([+-]\d{2})$", "${1}${2}:00")
    ).to_series()
    text, undecided = _year_first(text)
    if undecided is None and text.dtype == pl.String:
        # Dates rewritten year first are, in most exports, then of one plain shape.
        plain = plain_times(text)
        if plain is not None:
            return _plain_ts(plain, col, mapping, id_expr)
    numeric = text.str.contains(_EPOCH_TEXT).fill_null(False)
    compact = _compact(text, numeric)
    is_epoch = numeric & compact.is_null()
    has_offset = text.str.contains(r"[+-]\d{2}:?\d{2}$").fill_null(False) & ~numeric
    rows = pl.int_range(raw.height, dtype=pl.UInt32, eager=True)
    aware_rows, naive_rows = rows.filter(has_offset), rows.filter(~has_offset & ~numeric)
    aware = filled(None, pl.Datetime("us", "UTC"), raw.height).scatter(
        aware_rows,
        _first_format(text.gather(aware_rows), _AWARE_FORMATS, time_zone="UTC", time_unit="us"),
    )
    naive = filled(None, pl.Datetime("us"), raw.height).scatter(
        naive_rows, _first_format(text.gather(naive_rows), _NAIVE_FORMATS, time_unit="us")
    )
    if compact.null_count() < compact.len():
        naive = compact.zip_with(compact.is_not_null(), naive)
    helpers = {"_ts_offset": has_offset, "_ts_aware": aware, "_ts_naive": naive}
    if undecided is not None:
        helpers["_ts_undecided"] = undecided
    local = _localize(pl.col("_ts_naive"), mapping.tz, id_expr)
    parsed = pl.when(pl.col("_ts_offset")).then(pl.col("_ts_aware")).otherwise(local)
    if is_epoch.any():
        helpers["_ts_epoch"] = (
            text.to_frame()
            .select(
                pl.when(is_epoch).then(_epoch(pl.col(text.name).cast(pl.Float64, strict=False)))
            )
            .to_series()
        )
        parsed = (
            pl.when(pl.col("_ts_epoch").is_not_null()).then(pl.col("_ts_epoch")).otherwise(parsed)
        )
    bad = pl.col(col).is_not_null() & parsed.is_null()
    # A well-formed local time that the zone skips (the spring-forward hour).
    skipped = bad & ~pl.col("_ts_offset") & pl.col("_ts_naive").is_not_null()
    return helpers, parsed, bad, skipped


def _plain_ts(
    plain: pl.Series, col: str, mapping: Mapping, id_expr: pl.Expr
) -> tuple[dict[str, pl.Series], pl.Expr, pl.Expr, pl.Expr]:
    """:func:`_parse_ts` for naive times read with one format (a column of one plain
    local shape, :func:`plain_times`, or ``--ts-format``): local to ``--tz``."""
    no_offset = filled(False, pl.Boolean, plain.len())
    local = _localize(pl.col("_ts_naive"), mapping.tz, id_expr)
    bad = pl.col(col).is_not_null() & local.is_null()
    skipped = bad & pl.col("_ts_naive").is_not_null()
    return {"_ts_offset": no_offset, "_ts_naive": plain}, local, bad, skipped


def _formatted_ts(
    raw: pl.DataFrame, col: str, mapping: Mapping, id_expr: pl.Expr
) -> tuple[dict[str, pl.Series], pl.Expr, pl.Expr, pl.Expr]:
    """:func:`_parse_ts` for a ``--ts-format``: every text read with that one format, a
    time with an offset (``%z``) as that instant, a naive one as local to ``--tz``."""
    fmt = mapping.ts_format
    assert fmt is not None
    text = raw.get_column(col).str.strip_chars()
    if "%z" in fmt or "%:z" in fmt or "%#z" in fmt:
        aware = text.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
        no = pl.lit(False)
        return (
            {"_ts_aware": aware},
            pl.col("_ts_aware"),
            pl.col(col).is_not_null() & pl.col("_ts_aware").is_null(),
            no,
        )
    return _plain_ts(text.str.to_datetime(fmt, strict=False, time_unit="us"), col, mapping, id_expr)


def _ts(
    raw: pl.DataFrame,
    src: str,
    mapping: Mapping,
    id_expr: pl.Expr,
    helpers: dict[str, pl.Series],
    early: list[tuple[pl.Expr, str]],
) -> pl.Expr:
    """The UTC time of column ``src`` of ``raw``; the columns it needs computed eagerly
    go to ``helpers``, and its failures (unparseable, skipped by DST, ambiguous day and
    month) to ``early``."""
    source_type = raw.schema[src]
    if is_string(source_type):
        found, parsed, bad, skipped = _parse_ts(raw, src, mapping, id_expr)
        helpers.update(found)
        early.append((skipped, f"nonexistent local time in {mapping.tz} (DST gap)"))
        if "_ts_undecided" in found:
            early.append((bad & pl.col("_ts_undecided"), AMBIGUOUS_DATE))
    else:
        parsed = _typed_ts(src, source_type, mapping, id_expr)
        bad = pl.col(src).is_not_null() & parsed.is_null()
    early.append((bad, "unparseable ts"))
    return parsed


def _end_of_day(text: pl.Series) -> pl.Series | None:
    """Where a time reads ``24:00`` (the end of the day, as load-profile exports write
    the last interval's end), or None when none does: the cheap literal look clears
    nearly every column without one. Asked only of columns the fast paths did not read
    whole."""
    if not text.str.contains("24:00", literal=True).any():
        return None
    marked = text.str.contains(_END_OF_DAY).fill_null(False)
    return marked if marked.any() else None


def _a_day_later(helper: pl.Series, rows: pl.Series) -> pl.Series:
    """A parsed-time helper with ``rows`` moved to the next day: ``24:00`` was read as
    ``00:00`` of its own date. Local times move before they are placed in the zone, so
    a DST day's midnight is still midnight."""
    if not isinstance(helper.dtype, pl.Datetime):
        return helper
    return helper.zip_with(~rows, helper.dt.offset_by("1d"))


def _joined_text(raw: pl.DataFrame, parts: list[str]) -> pl.Series:
    """``--map ts=DATE+TIME``: the parts' texts joined by a space (``01.03.2024`` and
    ``00:15`` read as ``01.03.2024 00:15``), null where a part is missing. Typed parts (a
    Parquet date and time) are joined as their ISO text."""
    texts = [
        (pl.col(p) if is_string(raw.schema[p]) else pl.col(p).cast(pl.String)).str.strip_chars()
        for p in parts
    ]
    missing = pl.any_horizontal([t.is_null() | (t == "") for t in texts])
    joined = pl.when(missing).then(None).otherwise(pl.concat_str(texts, separator=" "))
    return raw.select(joined.alias(_TS_TEXT)).to_series()


def _localize(naive: pl.Expr, tz: str, id_expr: pl.Expr) -> pl.Expr:
    if tz == "UTC":
        return naive.dt.replace_time_zone("UTC")
    offset_s = fixed_offset(tz)
    if offset_s is not None:
        # Standard time all year: every local time exists once, at one offset.
        return (naive - pl.duration(seconds=offset_s)).dt.replace_time_zone("UTC")
    occurrence = pl.int_range(pl.len()).over([id_expr, naive])
    ambiguous = pl.when(occurrence == 0).then(pl.lit("earliest")).otherwise(pl.lit("latest"))
    return naive.dt.replace_time_zone(
        tz, ambiguous=ambiguous, non_existent="null"
    ).dt.convert_time_zone("UTC")


def _typed_ts(col: str, dtype: pl.DataType, mapping: Mapping, id_expr: pl.Expr) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return _localize(pl.col(col).dt.cast_time_unit("us"), mapping.tz, id_expr)
        return pl.col(col).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if isinstance(dtype, pl.Date):
        return _localize(pl.col(col).cast(pl.Datetime("us")), mapping.tz, id_expr)
    if dtype.is_numeric():
        return _epoch(pl.col(col))
    return pl.lit(None, dtype=pl.Datetime("us", "UTC"))


def check_columns(contract: Contract, columns: list[str], mapping: Mapping) -> None:
    """Raise :class:`SchemaMismatch` if a required field has no column, constant or
    default. Separate from :func:`decode` so a caller that gathers several inputs into
    one run (the API's grouped requests) can refuse one input before the run starts.
    Interval energy is not required of a source that supplies a cumulative register
    (it is derived from the register, see :mod:`metrify.sources.registers`)."""
    mapping = _code_as_event(contract, mapping.resolve(columns), columns)
    required = _required(contract, mapping, columns)
    for name in contract.schema:
        if name not in required or name in mapping.constants:
            continue
        src = mapping.source_column(name)
        if has_source(mapping, name, columns) or (
            name == "interval_s" and mapping.interval_s is not None
        ):
            continue
        hint = (
            "pass --interval SECONDS or " if name == "interval_s" else ""
        ) + f"map one with --map {name}=COLUMN"
        if name == ENERGY_FIELD and REGISTER_FIELD in contract.schema:
            hint += (
                f" (or, for a cumulative register, --map {REGISTER_FIELD}=COLUMN "
                "with --interval SECONDS to derive it)"
            )
        mapped = f" (mapped to {src!r})" if src != name else ""
        raise SchemaMismatch(
            f"no column for required field {name!r}{mapped}; "
            f"columns are {', '.join(columns)}; {hint}"
        )


def _code_as_event(contract: Contract, mapping: Mapping, columns: list[str]) -> Mapping:
    """For meter events with a code column and no event column (a DLMS/COSEM event log
    of numbers), the code read as the event too: the pipeline names the event by its
    code (:mod:`metrify.sources.dlms`) and keeps the code as given."""
    if (
        "event" not in contract.schema
        or "code" not in contract.schema
        or "event" in mapping.constants
        or mapping.source_column("event") in columns
        or mapping.source_column("code") not in columns
    ):
        return mapping
    return replace(mapping, columns={**mapping.columns, "event": mapping.source_column("code")})


def _required(contract: Contract, mapping: Mapping, columns: list[str]) -> tuple[str, ...]:
    """The contract's required fields; for register reads the register instead of the
    energy (a read without its value is no read)."""
    if mapping.derives_energy(contract, columns):
        return (*(n for n in contract.required if n != ENERGY_FIELD), REGISTER_FIELD)
    return contract.required


def _stored(name: str, dtype: pl.DataType) -> pl.Expr:
    """A decoded column as the contract stores it. A negative zero ("-0.0", "-0.000", as
    some head-ends write an idle export) is stored as zero, where it was stored and shown
    as "-0". (Not ``x + 0.0``, which the query optimiser drops.)"""
    column = pl.col(name).cast(dtype)
    if dtype != pl.Float64:
        return column
    return pl.when(column == 0.0).then(pl.lit(0.0)).otherwise(column).alias(name)


def decode(
    contract: Contract,
    raw: pl.DataFrame,
    mapping: Mapping,
    *,
    first_line: int = 0,
    lines: npt.NDArray[np.int64] | None = None,
    check_ranges: bool = True,
    number_hints: NumberHints | None = None,
) -> Decoded:
    """Turn one raw batch into contract records and rejects (both column-wise).

    A reject's ``line`` is ``lines[i]`` for row ``i`` of ``raw`` when the reader gave
    each row's line (rows of a text file need not be consecutive lines), else
    ``first_line + i``.

    A source that supplies a cumulative register and no interval energy (see
    :meth:`Mapping.derives_energy`) decodes into records whose ``import_kwh`` is null
    and whose ``ts`` is the instant of the read; :mod:`metrify.sources.registers`
    turns those into intervals.

    ``number_hints``: how the batch's number texts use the comma and which units follow
    its numbers (:func:`metrify.sources.numbers.hints_for`). Left out, decode finds
    them itself for a batch in which some number did not read, and decodes that batch
    again with them.
    """
    check_columns(contract, raw.columns, mapping)
    mapping = _code_as_event(contract, mapping.resolve(raw.columns), raw.columns)
    required = _required(contract, mapping, raw.columns)
    derives = required != contract.required
    if lines is not None and len(lines) != raw.height:
        raise ValueError(f"{len(lines)} line numbers for {raw.height} rows")
    available = set(raw.columns)
    used: set[str] = set()
    exprs: dict[str, pl.Expr] = {}
    early: list[tuple[pl.Expr, str]] = []  # failures judged on the source text
    helpers: dict[str, pl.Series] = {}  # columns computed eagerly, added for the select
    id_col = contract.id_field or contract.key[0]
    #: the early checks of text read as decimal numbers (a failure there may be a comma)
    number_checks: list[int] = []

    for name, dtype in contract.schema.items():
        src = mapping.source_column(name)
        if name in mapping.constants:
            literal = pl.lit(mapping.constants[name].strip())
            exprs[name] = literal if is_string(dtype) else literal.cast(dtype, strict=False)
            continue
        parts = summed(src, raw.columns) if dtype == pl.Float64 or name == "ts" else None
        if parts is not None and name == "ts":  # --map ts=DATE+TIME: the texts joined
            joined = _joined_text(raw, parts)
            helpers[_TS_TEXT] = joined
            id_expr = exprs.get(id_col, pl.lit(""))
            exprs[name] = _ts(raw.with_columns(joined), _TS_TEXT, mapping, id_expr, helpers, early)
            used.update(parts)
        elif parts is not None:  # --map FIELD=A+B: the columns added up
            exprs[name] = summed_number(raw, name, parts, number_hints, early, number_checks)
            used.update(parts)
        else:
            if src not in available:
                if name == "interval_s" and mapping.interval_s is not None:
                    exprs[name] = pl.lit(mapping.interval_s, dtype=pl.Int32)
                    continue
                exprs[name] = pl.lit(None, dtype=dtype)  # optional: check_columns passed
                continue
            used.add(src)
            source_type = raw.schema[src]
            if name == "ts":
                exprs[name] = _ts(raw, src, mapping, exprs.get(id_col, pl.lit("")), helpers, early)
            elif is_string(dtype):
                exprs[name] = clean(src) if is_string(source_type) else pl.col(src).cast(pl.String)
            else:
                if dtype == pl.Float64:
                    text = decimal_text(raw, src, name, number_hints, early)
                    number_checks.append(len(early))  # the non-numeric check, next
                else:
                    text = clean(src) if is_string(source_type) else pl.col(src)
                as_float = text.cast(pl.Float64, strict=False)
                if dtype in (pl.Int32, pl.Int16):
                    # "1800.0" is a fine interval; "1800.5" is not.
                    value = pl.when(as_float.round(0) == as_float).then(as_float).otherwise(None)
                    value = value.cast(dtype, strict=False)
                elif dtype == pl.Boolean:
                    value = (
                        _boolean(text)
                        if is_string(source_type)
                        else text.cast(pl.Boolean, strict=False)
                    )
                elif dtype == pl.Date:
                    value = text.cast(pl.String).str.to_date(strict=False)
                else:
                    value = as_float
                early.append((text.is_not_null() & value.is_null(), f"non-numeric {name}"))
                conversion = unit_conversion(src, number_hints) if dtype == pl.Float64 else None
                if conversion is not None:  # the unit written after each number
                    value = in_contract_unit(value, *conversion)
                exprs[name] = value
        if name in mapping.units:
            factor, offset, _ = mapping.units[name]
            exprs[name] = in_contract_unit(exprs[name], pl.lit(factor), pl.lit(offset))
        elif name in mapping.scales:
            exprs[name] = exprs[name] * mapping.scales[name]
        if name == "interval_s" and mapping.interval_s is not None:
            exprs[name] = exprs[name].fill_null(mapping.interval_s)

    estimated = _estimated(contract, mapping, raw, used, early)
    if estimated is not None:
        exprs[FLAGS] = estimated
    declared = {
        f"_meter_{name}": text
        for name, text in attribute_texts(_attributes(contract, mapping, raw, used)).items()
    }
    raw_names = [f"_raw_{i}" for i in range(raw.width)]
    position = pl.int_range(pl.len(), dtype=pl.Int32)
    line = (
        position + first_line if lines is None else pl.lit(pl.Series(values=lines, dtype=pl.Int32))
    )
    # Lazy, so that common subexpressions (the parsed time, the cast numbers) are
    # computed once even though the failure checks refer to them again.
    frame = (
        raw.with_columns(**helpers)
        .lazy()
        .select(
            position.alias("_pos"),
            line.alias("_line"),
            *[e.alias(n) for n, e in exprs.items()],
            *[e.alias(n) for n, e in declared.items()],
            *[bad.fill_null(False).alias(f"_early_{i}") for i, (bad, _) in enumerate(early)],
            *[pl.col(c).alias(r) for c, r in zip(raw.columns, raw_names, strict=True)],
        )
        .collect()
    )
    if number_hints is None and any(frame.get_column(f"_early_{i}").any() for i in number_checks):
        # Some text did not read as a number: if it has units after its numbers or
        # commas in them, the batch is decoded again knowing which and how. A batch
        # that reads (nearly all) costs nothing.
        hints = hints_for(contract, mapping, raw)
        if hints is not None:
            return decode(
                contract,
                raw,
                mapping,
                first_line=first_line,
                lines=lines,
                check_ranges=check_ranges,
                number_hints=hints,
            )
    if mapping.ts_end and "interval_s" in contract.schema and not derives:
        frame = frame.with_columns(pl.col("ts") - pl.duration(seconds=pl.col("interval_s")))

    checks: list[tuple[pl.Expr, str]] = [
        (pl.col(f"_early_{i}"), why) for i, (_, why) in enumerate(early)
    ]
    if "ts" in contract.schema:
        # A time no store can hold (year 1, 9999, or past either with an offset) would
        # fail the whole batch at the database or in Python; it is this row's problem.
        ts = pl.col("ts")
        outside = (ts < pl.lit(EARLIEST_TS)) | (ts >= pl.lit(LATEST_TS))
        checks.append((ts.is_not_null() & outside, f"ts outside {WINDOW_TEXT}"))
    checks += [(pl.col(name).is_null(), f"missing {name}") for name in required]
    if derives and not check_ranges:
        # The derivation counts from every read, so a negative register cannot wait for
        # VEE to reject it: it would be taken for a reset or a wrap first.
        checks.append((pl.col(REGISTER_FIELD) < 0, f"negative {REGISTER_FIELD}"))
    checks.append((~pl.col(id_col).str.contains(ID_PATTERN), f"invalid {id_col}"))
    checks += attribute_checks({c.removeprefix("_meter_"): c for c in declared})
    if "timezone" in contract.schema:
        # A zone nobody knows would fail every local-day computation of the meter's
        # readings (PostgreSQL's AT TIME ZONE raises); it is refused here instead.
        named = frame.get_column("timezone").drop_nulls().unique().to_list()
        zone = pl.col("timezone")
        checks.append((zone.is_not_null() & ~zone.is_in(known_zones(named)), "unknown timezone"))
    if "interval_s" in contract.schema:
        interval = pl.col("interval_s")
        valid = (interval >= MIN_INTERVAL_S) & (interval <= MAX_INTERVAL_S)
        valid = valid & ((pl.lit(MAX_INTERVAL_S) % interval.clip(1)) == 0)
        checks.append((~valid, "invalid interval_s"))
    for name, dtype in contract.schema.items():
        if dtype == pl.Float64:
            checks.append((~pl.col(name).is_finite(), f"non-finite {name}"))
    if check_ranges:
        # Without VEE, impossible values cannot be stored; with VEE they are stored,
        # flagged out-of-range and rejected, so that the meter's record stays complete.
        checks += [(pl.col(name) < 0, f"negative {name}") for name in contract.nonnegative]
        checks += [
            ((pl.col(name) < low) | (pl.col(name) > high), f"{name} out of range")
            for name, (low, high) in contract.bounded.items()
        ]
    # The first failing check names the reason. Most batches have no failing row: one
    # pass over the checks tells, and only then is each row's reason worked out (a
    # chain of a few dozen conditions, each a column of text).
    reason = pl.lit(None, dtype=pl.String)
    flags = [bad.fill_null(False) for bad, _ in checks]
    if flags and frame.select(pl.any_horizontal(flags).any()).item():
        for flag, (_, why) in zip(reversed(flags), reversed(checks), strict=True):
            reason = pl.when(flag).then(pl.lit(why)).otherwise(reason)
    frame = frame.with_columns(_reason=reason)

    bad_rows = frame.filter(pl.col("_reason").is_not_null())
    rejects = bad_rows.select(
        raw=pl.struct(
            [pl.col(r).alias(c) for c, r in zip(raw.columns, raw_names, strict=True)]
        ).struct.json_encode(),
        reason=pl.col("_reason"),
        line=pl.col("_line"),
    )
    good = frame.filter(pl.col("_reason").is_null())
    records = good.select(
        [_stored(n, t) for n, t in contract.schema.items()]
        + ([pl.col(FLAGS)] if FLAGS in exprs else [])
    )
    ignored = [c for c in raw.columns if c not in used and not _trailing_blank(raw, c)]
    present = [
        n
        for n in contract.schema
        if n in mapping.constants
        or has_source(mapping, n, raw.columns)
        or (n == "interval_s" and mapping.interval_s is not None)
    ]
    return Decoded(
        records=records,
        rejects=rejects,
        ignored_columns=ignored,
        present=present,
        rows=good.get_column("_pos").rename("rows"),
        reject_rows=bad_rows.get_column("_pos").rename("rows"),
        declared=_declared(good, id_col, list(declared)) if declared else None,
    )


def _attributes(
    contract: Contract, mapping: Mapping, raw: pl.DataFrame, used: set[str]
) -> dict[str, pl.Expr]:
    """The meter attributes a source of readings declares
    (:mod:`metrify.sources.attributes`): ``--set``, ``--map``, or a column
    ``meter.<attribute>``. (A meters file's ``commodity`` is its own field.)"""
    if contract is not READING:
        return {}
    out: dict[str, pl.Expr] = {}
    for name in METER_ATTRIBUTES:
        if name in mapping.constants:
            out[name] = pl.lit(mapping.constants[name])
            continue
        src = mapping.columns.get(name, ATTRIBUTE_COLUMN.format(name))
        if src in raw.columns:
            used.add(src)
            out[name] = pl.col(src)
    return out


def _declared(good: pl.DataFrame, id_col: str, columns: list[str]) -> pl.DataFrame | None:
    """Each meter's declared attributes (the first row that declares each; None when no
    row declares any)."""
    named = {c: c.removeprefix("_meter_") for c in columns}
    rows = good.select(id_col, *columns).filter(pl.any_horizontal(pl.col(columns).is_not_null()))
    if not rows.height:
        return None
    first = rows.group_by(id_col, maintain_order=True).agg(pl.col(columns).drop_nulls().first())
    return first.rename({id_col: "meter_id", **named})


def _estimated(
    contract: Contract,
    mapping: Mapping,
    raw: pl.DataFrame,
    used: set[str],
    early: list[tuple[pl.Expr, str]],
) -> pl.Expr | None:
    """The quality bits of the values the source says it estimated (``--map
    estimated=COLUMN``, ``--set estimated=yes``, or a column named ``estimated``), as
    the :data:`FLAGS` column; None when the source says nothing of it. A blank cell is
    a value not estimated; a word that is none of the known ones is the row's reject."""
    if ESTIMATED_INPUT not in mappable(contract):
        return None
    bit = pl.lit(int(Quality.ESTIMATED), dtype=pl.Int32)
    none = pl.lit(0, dtype=pl.Int32)
    if ESTIMATED_INPUT in mapping.constants:
        text = pl.lit(mapping.constants[ESTIMATED_INPUT].strip())
    else:
        src = mapping.source_column(ESTIMATED_INPUT)
        if src not in raw.columns:
            return None
        used.add(src)
        dtype = raw.schema[src]
        if dtype == pl.Boolean:
            return pl.when(pl.col(src)).then(bit).otherwise(none)
        text = clean(src) if is_string(dtype) else pl.col(src).cast(pl.String)
    lowered = text.str.strip_chars().str.to_lowercase()
    said = pl.when(lowered.is_in(_ESTIMATED_YES)).then(True).when(lowered.is_in(_ESTIMATED_NO))
    flag = said.then(False).otherwise(None)
    early.append(
        (
            text.is_not_null() & (lowered != "") & flag.is_null(),
            f"unreadable {ESTIMATED_INPUT} (yes/no, true/false, E/S/A)",
        )
    )
    return pl.when(flag.fill_null(False)).then(bit).otherwise(none)


def _boolean(text: pl.Expr) -> pl.Expr:
    lowered = text.str.to_lowercase()
    return (
        pl.when(lowered.is_in(["true", "t", "yes", "y", "1"]))
        .then(True)
        .when(lowered.is_in(["false", "f", "no", "n", "0"]))
        .then(False)
        .otherwise(None)
    )


def _trailing_blank(raw: pl.DataFrame, column: str) -> bool:
    """Whether ``column`` is a column without a header and without a value in any row:
    what a delimiter at the end of every line (``a;b;c;``, common in spreadsheet
    exports) leaves. Nothing is lost by ignoring it, so it is not reported."""
    if not (column.startswith("#") and column[1:].isdigit()):
        return False
    values = raw.get_column(column)
    if values.dtype != pl.String:
        return values.null_count() == values.len()
    return bool(values.str.strip_chars().fill_null("").eq("").all())
