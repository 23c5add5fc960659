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
  value, so the load quarantines it (``missing import_kwh``) and VEE sees the gap.

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
import polars as pl

from metrify.sources.batches import BadRow, RawBatch, ReaderError, raw_text
from metrify.sources.chunks import LineChunker
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
    """One NMI's days so far: per day, the stream's column, the start (µs, UTC), the
    interval, the values and the line of the ``300`` record."""

    nmi: str
    streams: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    minutes: list[int] = field(default_factory=list)
    values: list[list[float | None]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def rows(self) -> int:
        return sum(len(v) for v in self.values)


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
        try:
            day = dt.datetime.strptime(fields[1].strip(), "%Y%m%d").date()
        except ValueError:
            return BadRow(text, f"NEM12 300 record: no date in {fields[1][:20]!r}", number)
        try:
            values: list[float | None] = [float(v) * stream.factor for v in fields[2 : count + 2]]
        except ValueError:
            return BadRow(text, "NEM12 300 record: an interval value is not a number", number)
        quality = fields[count + 2].strip().upper()
        if quality.startswith("N"):
            values = [None] * count
        meter.streams.append(stream.suffix)
        meter.columns.append(stream.column)
        meter.starts.append((day - _EPOCH).days * _DAY_US - _NEM_OFFSET_US)
        meter.minutes.append(stream.minutes)
        meter.values.append(values)
        meter.lines.append(number)
        self.day_read = True
        return None

    def _intervals(self, fields: list[str], text: str, number: int) -> BadRow | None:
        """A ``400`` record: the quality of intervals ``start..end`` of the day before it
        (only ``N``, null data, changes what is loaded)."""
        meter = self.meter
        if meter is None or not self.day_read:
            return BadRow(text, "NEM12 400 record without its 300 record", number)
        try:
            start, end = int(fields[1]), int(fields[2])
            quality = fields[3].strip().upper()
        except (IndexError, ValueError):
            return BadRow(text, "NEM12 400 record: no interval range and quality", number)
        values = meter.values[-1]
        if not 1 <= start <= end <= len(values):
            why = f"NEM12 400 record: intervals {start}..{end} outside 1..{len(values)}"
            return BadRow(text, why, number)
        if quality.startswith("N"):
            values[start - 1 : end] = [None] * (end - start + 1)
        return None


def _frame(meter: _Meter) -> tuple[pl.DataFrame, np.ndarray]:
    """A meter's days as readings rows (one per interval, its streams side by side) and
    each row's line (the first ``300`` record that gave it a value)."""
    counts = np.array([len(v) for v in meter.values], dtype=np.int64)
    step_us = np.repeat(np.array(meter.minutes, dtype=np.int64) * 60_000_000, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    index = np.arange(int(counts.sum()), dtype=np.int64) - first
    long = pl.DataFrame(
        {
            "ts": np.repeat(np.array(meter.starts, dtype=np.int64), counts) + index * step_us,
            "interval_s": (step_us // 1_000_000).astype(np.int32),
            "stream": np.repeat(np.array(meter.streams, dtype=object), counts).astype(str),
            "column": np.repeat(np.array(meter.columns, dtype=object), counts).astype(str),
            "value": pl.Series([x for day in meter.values for x in day], dtype=pl.Float64),
            "line": np.repeat(np.array(meter.lines, dtype=np.int64), counts),
        }
    )
    columns = list(dict.fromkeys(meter.columns))
    per = []
    for name in columns:
        mine = pl.col("column") == name
        value = pl.col("value").filter(mine)
        # a stream's total is unknown where one of its values is (a null-data interval)
        per.append(pl.when(mine.any() & (value.null_count() == 0)).then(value.sum()).alias(name))
    # a day a stream sends twice (a correction in the same file): the later record
    long = long.unique(["stream", "ts"], keep="last", maintain_order=True)
    wide = (
        long.group_by("ts", "interval_s", maintain_order=True)
        .agg(*per, line=pl.col("line").min())
        .sort("ts", "interval_s")
    )
    frame = wide.select(
        pl.lit(meter.nmi).alias("meter_id"),
        pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        pl.col("interval_s"),
        *[pl.col(name) for name in columns],
    )
    return frame, wide.get_column("line").to_numpy().astype(np.int64)


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
        data = pl.concat([f for f, _ in frames], how="diagonal_relaxed") if frames else None
        lines = np.concatenate([n for _, n in frames]) if frames else np.empty(0, np.int64)
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
            if finished is not None:
                done.append(finished)
                if sum(m.rows() for m in done) >= batch_rows:
                    yield batch()
                    first_line = number
    last = parser.finish()
    if last is not None:
        done.append(last)
    if done or bad:
        yield batch()
