"""Files with a row per value (``--channels CHANNEL=VALUE``).

Head-end and meter data management exports often write one value per row: the meter,
the time, the channel the value belongs to (an OBIS code such as ``1-0:1.8.0``, or the
system's own name: ``kWh Del``, ``kVArh``, an Australian distributor's ``GC``/``CL``/
``GG`` consumption category), then the value, often with a unit column beside it.
``--channels CHANNEL=VALUE`` turns those rows into one row per meter and time, with a
column per channel named by it, before anything else reads the batch
(``CHANNEL=VALUE+UNIT`` reads each value with its row's unit: ``950`` and ``Wh`` as
``950 Wh``, converted as any number written with its unit is). From there the load is
the ordinary one: columns named by OBIS code map by themselves, other channel names
with ``--map FIELD=NAME`` (and ``--map import_kwh=GC+CL`` adds channels up).

Which rows belong together is said by the columns the mapping reads the record's key
from (the meter id, the time, an interval column): ``Mapping.file_options`` hands them
over. Any other column that is the same on all of a reading's rows is kept; one that
differs between them (a unit or status per channel) becomes a column per channel,
``<channel> <column>``, which the load reports as ignored unless it is mapped.

A reading's rows may lie anywhere in a file (an export sorted by channel lists each
channel's year before the next one's), so the file is read whole before it is turned;
its rows are then handed out in the order of their first line, each keeping that line.
A row without a channel, and a channel repeated for one reading (the later row is
kept, as a repeated key is everywhere else), are bad rows with their lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.sources.batches import BadRow, RawBatch, ReaderError, sliced

__all__ = ["MAX_CHANNELS", "channel_rows"]

#: more distinct channels than this in one file is a wrong column, not a channel list
MAX_CHANNELS: Final = 64
_LINE: Final = "_line"
_POSITION: Final = re.compile(r"^#([1-9]\d*)$")


def channel_rows(
    batches: Iterator[RawBatch],
    channel: str,
    value: str,
    keys_of: Callable[[list[str]], list[str]],
    batch_rows: int,
    file_key: Hashable = None,
) -> Iterator[RawBatch]:
    """The file's rows of values as rows of readings (see the module): ``channel`` and
    ``value`` name the columns (``#N`` by position), ``keys_of`` gives the columns that
    identify a reading among the file's columns.

    ``file_key`` (the file's path, size, time and reading options): the last file
    turned is kept under it, so a load reads again none of what the command's check of
    the same file turned a moment before (a row-per-value file is read whole, twice
    otherwise)."""
    global _LAST
    held = _LAST
    if file_key is not None and held is not None and held[0] == file_key:
        whole = held[1]
    else:
        whole = _turn(batches, channel, value, keys_of)
        if file_key is not None:
            _LAST = (file_key, whole)
    if whole is None:
        return
    yield from sliced(*whole, batch_rows)


#: the rows of a turned file, its lines, its bad rows, source, first line, bytes read
_Turned = tuple[pl.DataFrame, npt.NDArray[np.int64], list[BadRow], str, int, int]
#: the last file turned, under its key (see :func:`channel_rows`)
_LAST: tuple[Hashable, _Turned | None] | None = None


def _turn(
    batches: Iterator[RawBatch],
    channel: str,
    value: str,
    keys_of: Callable[[list[str]], list[str]],
) -> _Turned | None:
    """The whole file turned (see :func:`channel_rows`); None for a file of no batch."""
    parts = list(batches)
    if not parts:
        return None
    source, read = parts[0].source, parts[-1].bytes_read
    bad = [row for part in parts for row in part.bad]
    frames = [_with_lines(part) for part in parts if part.data.height]
    if not frames:
        return pl.DataFrame(), np.empty(0, dtype=np.int64), bad, source, parts[0].first_line, read
    data = pl.concat(frames, how="diagonal_relaxed")
    columns = [c for c in data.columns if c != _LINE]
    name = source.removeprefix("file:")
    channel = _column(channel, columns, name)
    value, unit = _value_and_unit(value, columns, name)
    if unit is not None:  # "950" and "Wh": "950 Wh", which decoding converts per value
        data = data.with_columns(
            pl.when(pl.col(unit).cast(pl.String).str.strip_chars().fill_null("") == "")
            .then(pl.col(value).cast(pl.String))
            .otherwise(
                pl.concat_str(
                    pl.col(value).cast(pl.String).str.strip_chars(),
                    pl.col(unit).cast(pl.String).str.strip_chars(),
                    separator=" ",
                )
            )
            .alias(value)
        ).drop(unit)
        columns.remove(unit)
    keys = [
        c for c in dict.fromkeys(keys_of(columns)) if c in columns and c not in (channel, value)
    ]
    if not keys:
        raise ReaderError(
            f"{name}: --channels gathers a reading's rows by its meter and time columns "
            f"(--map meter_id=..., --map ts=...), and the file has neither; columns are "
            f"{', '.join(columns)}"
        )
    data = data.with_columns(
        pl.col(channel).cast(pl.String).str.strip_chars(), pl.col(value).cast(pl.String)
    )
    unnamed = data.filter(pl.col(channel).is_null() | (pl.col(channel) == ""))
    bad += _bad_rows(unnamed, columns, f"no channel in column {channel!r}")
    data = data.filter(pl.col(channel).is_not_null() & (pl.col(channel) != ""))
    # (a row whose reading and channel come again further down; one hash of the three)
    data = data.with_columns(_later=~pl.struct(*keys, channel).is_last_distinct())
    repeated = data.filter("_later")
    bad += _bad_rows(repeated, columns, "repeated channel for one reading (the later row kept)")
    data = data.filter(~pl.col("_later")).drop("_later")
    names = data.get_column(channel).unique(maintain_order=True).to_list()
    _check_names(names, channel, columns, name)
    wide = _turned(
        data, keys, channel, value, [c for c in columns if c not in (*keys, channel, value)]
    )
    wide = wide.sort(_LINE)
    lines = wide.get_column(_LINE).to_numpy().astype(np.int64)
    wide = wide.drop(_LINE)
    return wide, lines, bad, source, int(lines[0]) if len(lines) else parts[0].first_line, read


def _with_lines(part: RawBatch) -> pl.DataFrame:
    lines = (
        part.lines
        if part.lines is not None
        else np.arange(part.first_line, part.first_line + part.data.height, dtype=np.int64)
    )
    return part.data.with_columns(pl.Series(_LINE, lines, dtype=pl.Int64))


def _column(given: str, columns: list[str], name: str) -> str:
    """``given`` as a column of the file (``#N``: the N-th), or the error naming it."""
    position = _POSITION.match(given)
    if given not in columns and position and int(position[1]) <= len(columns):
        return columns[int(position[1]) - 1]
    if given not in columns:
        raise ReaderError(
            f"{name}: --channels names column {given!r}, which the file does not have; "
            f"columns are {', '.join(columns)}"
        )
    return given


def _value_and_unit(given: str, columns: list[str], name: str) -> tuple[str, str | None]:
    """``VALUE`` or ``VALUE+UNIT`` as the file's columns (a column named with a ``+`` in
    it is taken whole first)."""
    if given in columns or "+" not in given:
        return _column(given, columns, name), None
    value, _, unit = given.partition("+")
    return _column(value.strip(), columns, name), _column(unit.strip(), columns, name)


def _check_names(names: list[str], channel: str, columns: list[str], name: str) -> None:
    if len(names) > MAX_CHANNELS:
        raise ReaderError(
            f"{name}: column {channel!r} holds {len(names):,} different values; --channels "
            "names the column that says which quantity a row's value is (at most "
            f"{MAX_CHANNELS} of them)"
        )
    taken = [n for n in names if n in columns or n == _LINE]
    if taken:
        raise ReaderError(
            f"{name}: channel {taken[0]!r} is also the name of a column; rename one of them"
        )


def _turned(
    data: pl.DataFrame, keys: list[str], channel: str, value: str, others: list[str]
) -> pl.DataFrame:
    """One row per reading: its first line, the values per channel, the other columns
    kept where they agree across its rows and per channel where they do not."""
    names = data.get_column(channel).unique(maintain_order=True).to_list()

    def per_channel(column: str, suffix: str = "") -> list[pl.Expr]:
        # (a reading has at most one row per channel by now: its value, or null)
        return [
            pl.col(column).filter(pl.col(channel) == n).first().alias(f"{n}{suffix}") for n in names
        ]

    # One grouping gives each reading its first line, its value per channel and the
    # other columns (with how many values each takes on the reading's rows).
    out = data.group_by(keys).agg(
        pl.col(_LINE).min(),
        *per_channel(value),
        *[pl.col(c).first() for c in others],
        *[pl.col(c).n_unique().alias(f"_n_{i}") for i, c in enumerate(others)],
    )
    most = out.select(pl.col(f"_n_{i}").max().fill_null(0) for i in range(len(others)))
    varying = [c for i, c in enumerate(others) if int(most.item(0, i)) > 1]
    out = out.drop([f"_n_{i}" for i in range(len(others))], *varying)
    if varying:  # a unit or status per channel: a column per channel each
        split = data.group_by(keys).agg(*[e for c in varying for e in per_channel(c, f" {c}")])
        out = out.join(split, on=keys, how="left", nulls_equal=True)
    return out


def _bad_rows(rows: pl.DataFrame, columns: list[str], reason: str) -> list[BadRow]:
    if not rows.height:
        return []
    texts = rows.select(pl.struct(columns).struct.json_encode()).to_series().to_list()
    lines = rows.get_column(_LINE).to_list()
    return [BadRow(t, reason, int(n)) for t, n in zip(texts, lines, strict=True)]
