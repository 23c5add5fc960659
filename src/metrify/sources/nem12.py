"""NEM12 files: the interval meter data that Australia's meter data providers send
retailers and networks (AEMO's Meter Data File Format, NEM12).

A NEM12 file is no table: a ``100`` header, then per meter (NMI) and data stream a
``200`` record naming the stream (its NMI suffix, unit and interval length), followed
by one ``300`` record per day with the day's 48 (30-minute), 96 (15-minute) or 288
(5-minute) interval values and the day's quality method, and ``400`` records that give
the quality of single intervals of a day whose method is ``V`` (variable). A ``900``
ends the file. Such a file is read as rows of the readings contract, so the pipeline
judges it like any other file, with no ``--map``:

* ``meter_id`` is the NMI; ``ts`` the interval's start, in NEM time (AEST, UTC+10 all
  year, as the format defines; ``--tz`` does not apply); ``interval_s`` the stream's
  interval length;
* streams with suffix ``E`` (energy taken from the grid: ``E1`` general supply, ``E2``
  a controlled load) add up to ``import_kwh``; ``B`` streams (energy sent to the grid)
  to ``export_kwh``; units ``Wh``, ``kWh`` and ``MWh`` are converted to kWh. Any other
  stream (reactive energy ``Q1``/``K1`` in kVArh, ...) becomes a column named by its
  suffix and unit, which the load reports as ignored;
* an interval whose quality is ``N`` (null data: the provider has no value) has no
  value, so the load quarantines it (``missing import_kwh``) and VEE sees the gap;
* a day or interval whose quality is ``E`` (estimated), ``S`` (substituted) or ``F``
  (final substitute) is the provider's estimate, not a read: its rows carry a column
  ``estimated``, and the pipeline stores them with the ``estimated`` quality bit
  (status ``estimated`` where VEE finds them valid). A row of several streams is
  estimated when one of its streams' values is.

A record that cannot be read (a ``300`` with the wrong number of values, a date that
is no date, a value that is no number, a ``200`` with an interval length or unit the
format does not allow, a ``300`` without its ``200``) becomes a bad row with its line,
like a ragged CSV line. A meter's streams are gathered until the next meter's first
``200`` record, so its import and export land in the same rows; a day a stream sends
twice in one file counts once, as its later record says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.sources.batches import BadRow, RawBatch, ReaderError, raw_text
from metrify.sources.chunks import LineChunker
from metrify.sources.mapping import ESTIMATED_INPUT
from metrify.sources.opening import ByteSource

__all__ = ["is_nem12", "read_nem12"]

#: the header record of a NEM12 file (``100,NEM12,<created>,<from>,<to>``)
_NEM12: Final = b"100,NEM12"
_NEM13: Final = b"100,NEM13"
#: NMI suffix letter -> contract field (AEMO's NMI procedure: ``E`` import kWh, ``B``
#: export kWh)
_FIELDS: Final = {"E": "import_kwh", "B": "export_kwh"}
#: units of an energy stream, as factors to kWh (the format writes them in any case)
_TO_KWH: Final = {"wh": 0.001, "kwh": 1.0, "mwh": 1000.0}
#: interval lengths (minutes) the format allows
_MINUTES: Final = (5, 15, 30)
#: a ``300`` record's quality method: A actual, E estimated, F final substitute, N null
#: data, S substituted, V variable (per interval, in ``400`` records), with its method
_QUALITY: Final = re.compile(r"^[AEFNSV]\d{0,2}$", re.IGNORECASE)
#: the quality methods of a provider's estimates: E estimated, S substituted, F final
#: substitute
_ESTIMATES: Final = ("E", "S", "F")
#: NEM time: AEST, UTC+10 all year
_NEM_OFFSET_US: Final = 10 * 3600 * 1_000_000
_EPOCH: Final = dt.date(1970, 1, 1)
_DAY_US: Final = 86_400 * 1_000_000
#: the columns of a batch that holds only bad rows
_EMPTY: Final = pl.DataFrame(
    schema={
        "meter_id": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        "interval_s": pl.Int32,
        "import_kwh": pl.Float64,
    }
)


def is_nem12(name: str, first_line: bytes) -> bool:
    """Whether file ``name``, whose first line is ``first_line``, is a NEM12 file. A
    NEM13 file (accumulation meter reads) is refused: its reads are no intervals."""
    if first_line.startswith(_NEM13):
        raise ReaderError(
            f"{name}: NEM13 files (accumulation meter reads) are not read; load the reads as a "
            "register (--map register_kwh=...), or ask the provider for NEM12"
        )
    return first_line.startswith(_NEM12)


@dataclass
class _Stream:
    """What a ``200`` record says of the ``300`` records after it."""

    nmi: str
    suffix: str  # the NMI suffix that names the stream (E1, B1, Q1...)
    column: str  # contract field, or "<suffix> (<unit>)" for a stream without one
    factor: float  # to kWh (1.0 for a stream without a field: kept as written)
    minutes: int


@dataclass
class _Meter:
    """One NMI's days so far, as parallel lists (one entry per ``300`` record): its
    stream and column (codes into the names), the factor to kWh, the start (µs, UTC),
    the interval length, the record's text and line; and the intervals ``400`` records
    or an ``N`` quality left without data. The values stay text until the meter is
    complete, then are read all at once."""

    nmi: str
    stream_names: list[str] = field(default_factory=list)
    column_names: list[str] = field(default_factory=list)
    streams: list[int] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)
    factors: list[float] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    minutes: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    #: (day's place, first interval, last interval), 1-based, inclusive
    nulls: list[tuple[int, int, int]] = field(default_factory=list)
    #: the same for the intervals the provider estimated or substituted
    estimates: list[tuple[int, int, int]] = field(default_factory=list)
    #: (stream, start) of every day so far: a day sent twice is the exception
    seen: set[tuple[int, int]] = field(default_factory=set)
    twice: bool = False
    rows: int = 0

    def add(self, stream: _Stream, start: int, text: str, line: int) -> None:
        code = _code(self.stream_names, stream.suffix)
        key = (code, start)
        self.twice = self.twice or key in self.seen
        self.seen.add(key)
        self.streams.append(code)
        self.columns.append(_code(self.column_names, stream.column))
        self.factors.append(stream.factor)
        self.starts.append(start)
        self.minutes.append(stream.minutes)
        self.texts.append(text)
        self.lines.append(line)
        self.rows += 1440 // stream.minutes


def _code(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)


class _Parser:
    """Reads NEM12 lines in order, keeping the stream a ``200`` record opened."""

    def __init__(self) -> None:
        self.stream: _Stream | None = None
        self.broken_stream = False  # the last 200 record could not be read
        self.meter: _Meter | None = None
        #: the record before was a 300 record that was read (a 400 record applies to it)
        self.day_read = False

    def line(self, text: str, number: int) -> tuple[_Meter | None, BadRow | None]:
        """Take one line; returns a meter whose days are complete (the next meter began)
        and the line's bad row, if any."""
        fields = text.split(",")
        kind = fields[0].strip()
        if kind != "400":
            self.day_read = False
        if kind == "200":
            return self._stream(fields, text, number)
        if kind == "300":
            return None, self._day(fields, text, number)
        if kind == "400":
            return None, self._intervals(fields, text, number)
        if kind in ("100", "500", "900"):
            return None, None  # header, B2B reads and the end: nothing to load
        return None, BadRow(text, f"NEM12: unknown record type {kind[:10]!r}", number)

    def finish(self) -> _Meter | None:
        done, self.meter = self.meter, None
        return done

    def _stream(
        self, fields: list[str], text: str, number: int
    ) -> tuple[_Meter | None, BadRow | None]:
        self.stream, self.broken_stream = None, True
        if len(fields) < 9:
            return None, BadRow(text, "NEM12 200 record: fewer than 9 fields", number)
        nmi, suffix, unit = fields[1].strip(), fields[4].strip().upper(), fields[7].strip()
        try:
            minutes = int(fields[8])
        except ValueError:
            minutes = 0
        if minutes not in _MINUTES:
            why = f"NEM12 200 record: interval length {fields[8].strip()!r} is not 5, 15 or 30"
            return None, BadRow(text, why, number)
        if not nmi or not suffix:
            return None, BadRow(text, "NEM12 200 record: no NMI or no NMI suffix", number)
        column = _FIELDS.get(suffix[0])
        factor = _TO_KWH.get(unit.lower())
        if column is not None and factor is None:
            why = f"NEM12 200 record: unit {unit!r} of stream {suffix} is no energy unit"
            return None, BadRow(text, why, number)
        if column is None:
            column, factor = f"{suffix} ({unit})", 1.0
        assert factor is not None
        self.stream, self.broken_stream = _Stream(nmi, suffix, column, factor, minutes), False
        done = None
        if self.meter is not None and self.meter.nmi != nmi:
            done, self.meter = self.meter, None
        if self.meter is None:
            self.meter = _Meter(nmi)
        return done, None

    def _day(self, fields: list[str], text: str, number: int) -> BadRow | None:
        stream, meter = self.stream, self.meter
        if stream is None or meter is None:
            why = (
                "NEM12 300 record of a stream whose 200 record could not be read"
                if self.broken_stream
                else "NEM12 300 record before any 200 record"
            )
            return BadRow(text, why, number)
        count = 1440 // stream.minutes
        if len(fields) < count + 3 or not _QUALITY.match(fields[count + 2].strip()):
            # the quality method follows the values: anywhere else, the count is wrong
            why = (
                f"NEM12 300 record: expected {count} interval values and the quality "
                f"method after them, found {len(fields) - 2} fields after the date"
            )
            return BadRow(text, why, number)
        day = _date(fields[1].strip())
        if day is None:
            return BadRow(text, f"NEM12 300 record: no date in {fields[1][:20]!r}", number)
        start = (day - _EPOCH).days * _DAY_US - _NEM_OFFSET_US
        meter.add(stream, start, text, number)
        _mark(meter, fields[count + 2].strip().upper(), 1, count)
        self.day_read = True
        return None

    def _intervals(self, fields: list[str], text: str, number: int) -> BadRow | None:
        """A ``400`` record: the quality of intervals ``start..end`` of the day before it
        (``N``, null data, and the estimates change what is loaded)."""
        meter = self.meter
        if meter is None or not self.day_read:
            return BadRow(text, "NEM12 400 record without its 300 record", number)
        try:
            start, end = int(fields[1]), int(fields[2])
            quality = fields[3].strip().upper()
        except (IndexError, ValueError):
            return BadRow(text, "NEM12 400 record: no interval range and quality", number)
        count = 1440 // meter.minutes[-1]
        if not 1 <= start <= end <= count:
            why = f"NEM12 400 record: intervals {start}..{end} outside 1..{count}"
            return BadRow(text, why, number)
        _mark(meter, quality, start, end)
        return None


def _mark(meter: _Meter, quality: str, start: int, end: int) -> None:
    """Note intervals ``start..end`` of the meter's last day as null data or as the
    provider's estimates, as their quality method (``N``; ``E``, ``S``, ``F``) says."""
    if quality.startswith("N"):
        meter.nulls.append((len(meter.starts) - 1, start, end))
    elif quality.startswith(_ESTIMATES):
        meter.estimates.append((len(meter.starts) - 1, start, end))


def _date(text: str) -> dt.date | None:
    """A ``YYYYMMDD`` date, or None (strptime costs ten times as much per record)."""
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _frame(meter: _Meter) -> tuple[pl.DataFrame, npt.NDArray[np.int64], list[BadRow]]:
    """A meter's days as readings rows (one per interval, its streams side by side),
    each row's line (the first ``300`` record that gave it a value), and the days whose
    values are not all numbers, as bad rows."""
    minutes = np.array(meter.minutes, dtype=np.int64)
    counts = 1440 // minutes
    text = (
        pl.DataFrame({"t": pl.Series(meter.texts, dtype=pl.String), "n": counts})
        .select(pl.col("t").str.split(",").list.slice(2, pl.col("n")))
        .explode("t")
        .get_column("t")
    )
    values = text.str.strip_chars().cast(pl.Float64, strict=False).to_numpy().copy()
    day = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    nulled = _intervals(meter.nulls, first, len(values))  # null data: blank or 0, unjudged
    estimated = _intervals(meter.estimates, first, len(values)) if meter.estimates else None
    bad_days = np.unique(day[np.isnan(values) & ~nulled])
    values *= np.repeat(np.array(meter.factors), counts)
    values[nulled] = np.nan
    step_us = np.repeat(minutes * 60_000_000, counts)
    long = pl.DataFrame(
        {
            "ts": np.repeat(np.array(meter.starts, dtype=np.int64), counts)
            + (np.arange(len(day)) - first[day]) * step_us,
            "interval_s": (step_us // 1_000_000).astype(np.int32),
            "stream": np.repeat(np.array(meter.streams, dtype=np.int32), counts),
            "column": np.repeat(np.array(meter.columns, dtype=np.int32), counts),
            "value": pl.Series(values).fill_nan(None),
            "line": np.repeat(np.array(meter.lines, dtype=np.int64), counts),
            **({} if estimated is None else {ESTIMATED_INPUT: estimated}),
        }
    )
    bad = []
    if len(bad_days):
        long = long.filter(~pl.Series(np.isin(day, bad_days)))
        why = "NEM12 300 record: an interval value is not a number"
        bad = [BadRow(meter.texts[d], why, meter.lines[d]) for d in bad_days.tolist()]
    if meter.twice:  # a day a stream sends twice (a correction in one file): the later
        long = long.unique(["stream", "ts"], keep="last", maintain_order=True)
    names = meter.column_names
    flagged = [ESTIMATED_INPUT] if estimated is not None else []
    if len(meter.stream_names) == 1:  # one stream: its rows are the meter's rows
        wide = long.sort("ts").rename({"value": names[0]})
    else:
        per = []
        for code, name in enumerate(names):
            mine = pl.col("column") == code
            value = pl.col("value").filter(mine)
            # a total is unknown where one of its streams' values is (null data)
            per.append(
                pl.when(mine.any() & (value.null_count() == 0)).then(value.sum()).alias(name)
            )
        wide = (
            long.group_by("ts", "interval_s", maintain_order=True)
            .agg(*per, *[pl.col(c).any() for c in flagged], line=pl.col("line").min())
            .sort("ts", "interval_s")
        )
    frame = wide.select(
        pl.lit(meter.nmi).alias("meter_id"),
        pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        pl.col("interval_s"),
        *[pl.col(name) for name in names],
        *flagged,
    )
    return frame, wide.get_column("line").to_numpy().astype(np.int64), bad


def _intervals(
    spans: list[tuple[int, int, int]], first: npt.NDArray[np.int64], size: int
) -> npt.NDArray[np.bool_]:
    """Which of a meter's ``size`` interval values the (day's place, first, last
    interval) ``spans`` cover."""
    marked = np.zeros(size, dtype=bool)
    for place, start, end in spans:
        marked[first[place] + start - 1 : first[place] + end] = True
    return marked


def read_nem12(
    chunker: LineChunker, src: ByteSource, name: str, batch_rows: int
) -> Iterator[RawBatch]:
    """Stream a NEM12 file whose ``100`` record ``chunker`` has just given out: its
    meters as raw batches of about ``batch_rows`` intervals (a meter is never split)."""
    parser = _Parser()
    done: list[_Meter] = []
    bad: list[BadRow] = []
    source = f"file:{name}"
    first_line = 1

    def batch() -> RawBatch:
        frames = [_frame(m) for m in done]
        data = pl.concat([f for f, _, _ in frames], how="diagonal_relaxed") if frames else None
        lines = np.concatenate([n for _, n, _ in frames]) if frames else np.empty(0, np.int64)
        bad.extend(b for _, _, found in frames for b in found)
        out = RawBatch(
            data if data is not None else _EMPTY,
            list(bad),
            source,
            int(lines[0]) if len(lines) else first_line,
            src.bytes_read,
            lines,
        )
        done.clear()
        bad.clear()
        return out

    for chunk in chunker.chunks(max(1, batch_rows // 48)):
        bad.extend(chunk.bad)
        for offset, raw in enumerate(chunk.data.split(b"\n")):
            raw = raw.removesuffix(b"\r")
            if not raw.strip():
                continue
            number = chunk.first_line + offset
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                bad.append(BadRow(raw_text(raw), "NEM12: not ASCII text", number))
                continue
            finished, problem = parser.line(text, number)
            if problem is not None:
                bad.append(problem)
            if finished is not None and finished.rows:  # a meter without days: no rows
                done.append(finished)
                if sum(m.rows for m in done) >= batch_rows:
                    yield batch()
                    first_line = number
    last = parser.finish()
    if last is not None and last.rows:
        done.append(last)
    if done or bad:
        yield batch()
