"""Green Button XML: the ESPI feeds (NAESB REQ.21) in which North American utilities
give customers and their agents interval data ("Download My Data", "Connect My Data").

A feed is an Atom document whose entries hold, each in its ``content``: the usage point
(the meter), its meter readings, each reading's ``ReadingType`` (unit, power of ten,
flow direction, interval length) and ``IntervalBlock`` entries of ``IntervalReading``
values. Entries refer to one another by their ``link`` addresses
(``.../UsagePoint/1/MeterReading/1/IntervalBlock/1``, a meter reading's ``related``
link to its reading type), and the reading types may come after the blocks, so the
feed is read whole (entry by entry, each dropped once read) and then turned into rows
of the readings contract, with no ``--map``:

* ``meter_id`` is the usage point's id in the addresses (``--set meter_id=...``
  names it otherwise); ``ts`` and ``interval_s`` are each reading's ``timePeriod``
  (epoch seconds, UTC);
* energy in Wh (``uom`` 72) times ``10**powerOfTenMultiplier`` becomes kWh: in
  ``import_kwh`` for the forward flow (``flowDirection`` 1, delivered), in
  ``export_kwh`` for the reverse flow (19, received); therms (169) of gas are kWh
  (29.3071 each) and cubic metres (42) stay cubic metres in ``import_kwh``. A reading
  type of another unit or flow (a net flow, demand in W) becomes a column named by it,
  which the load reports as ignored;
* a meter that measures no electricity is declared so (``meter.commodity``,
  ``meter.unit``: :mod:`metrify.sources.attributes`): therms are gas in kWh, cubic
  metres gas in m3 (converted to energy by the meter's calorific value) unless the
  reading type's ``commodity`` says water, and a commodity code of gas, water or heat
  (steam, heating or cooling fluid) says what the meter is. A new meter is registered
  so; one already described keeps its reference data;
* a reading whose ``ReadingQuality`` says it was estimated (8, from a reference day;
  9, by interpolation; 12, projected) carries the ``estimated`` mark
  (:data:`metrify.sources.mapping.ESTIMATED_INPUT`);
* the readings of several reading types of one usage point and time share a row (a
  reading given twice counts once, as its later value says).

An ``IntervalReading`` without a value or time period, or with one that is no number,
is a bad row; a reading's "line" is its place among the feed's interval readings (XML
has no rows). A feed that is no well-formed XML, that declares a document type (where
entities are declared: refused before parsing, so no entity can ever expand), or that
holds no interval block is refused whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from xml.etree.ElementTree import Element, ParseError, iterparse

import numpy as np
import numpy.typing as npt
import polars as pl

from metrify.sources.attributes import ATTRIBUTE_COLUMN
from metrify.sources.batches import BadRow, RawBatch, ReaderError, one_line, sliced
from metrify.sources.mapping import ESTIMATED_INPUT
from metrify.sources.opening import ByteSource

__all__ = ["read_espi"]

_ATOM: Final = "{http://www.w3.org/2005/Atom}"
#: ReadingType uom codes -> (field, factor to the field's unit)
_UNITS: Final[dict[int, tuple[str, float]]] = {
    72: ("kwh", 0.001),  # Wh (energy: import or export by the flow)
    169: ("kwh", 29.3071),  # therm (gas energy)
    42: ("import_kwh", 1.0),  # m3: the volume, in the meter's unit (declared m3)
}
#: ReadingType commodity codes (NAESB ESPI / IEC 61968-9 CommodityKind) of meters that
#: measure no electricity -> their commodity (:mod:`metrify.sources.attributes`)
_COMMODITIES: Final[dict[int, str]] = {
    7: "gas",  # natural gas
    8: "gas",  # propane
    9: "water",  # potable water
    11: "water",  # waste water
    10: "heat",  # steam
    12: "heat",  # heating fluid
    13: "heat",  # cooling fluid
}
#: flowDirection codes -> the energy field
_FLOWS: Final[dict[int, str]] = {1: "import_kwh", 19: "export_kwh"}
#: ReadingQuality codes of estimates: from a reference day, interpolated, projected
_ESTIMATES: Final = frozenset({8, 9, 12})
_USAGE_POINT: Final = re.compile(r"/UsagePoint/([^/]+)")
_BLOCK: Final = 1 << 16
#: how far a prolog may reach before the root element (a declaration and a comment)
_MAX_PROLOG: Final = 1 << 20
_SCHEMA: Final[dict[str, pl.DataType]] = {
    "meter_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "interval_s": pl.Int32(),
}


@dataclass
class _Type:
    """What a ``ReadingType`` says of its values."""

    uom: int | None = None
    power: int = 0
    flow: int | None = None
    interval: int | None = None
    commodity: int | None = None

    def declared(self) -> tuple[str | None, str | None]:
        """The commodity and unit it says its meter has, where not electricity in kWh:
        therms are gas (converted to kWh here), cubic metres gas unless the commodity
        says water (left in m3, for the pipeline's calorific conversion)."""
        commodity = _COMMODITIES.get(self.commodity) if self.commodity is not None else None
        if self.uom == 169:
            return commodity or "gas", "kWh"
        if self.uom == 42:
            return commodity or "gas", "m3"
        return commodity, "kWh" if commodity is not None else None

    def column(self) -> tuple[str, float]:
        """The column its values go to, and their factor to that column's unit."""
        unit = _UNITS.get(self.uom) if self.uom is not None else None
        if unit is not None and unit[0] == "kwh":
            field = _FLOWS.get(self.flow if self.flow is not None else 1)
            if field is not None:
                return field, unit[1] * 10.0**self.power
        elif unit is not None:
            return unit[0], unit[1] * 10.0**self.power
        return f"uom {self.uom} flow {self.flow}", 10.0**self.power


@dataclass
class _Feed:
    """The feed's entries as read: reading types by address, the reading type each
    meter reading relates to, and every interval reading with the meter reading it
    belongs to."""

    types: dict[str, _Type] = field(default_factory=dict)
    related: dict[str, list[str]] = field(default_factory=dict)
    reading: list[str] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    duration: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    estimated: list[bool] = field(default_factory=list)
    place: list[int] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    readings: int = 0


def read_espi(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    """Stream a Green Button XML feed as raw batches of about ``batch_rows`` rows."""
    name = path.name.lower()
    src = ByteSource(path, gzipped=name.endswith(".gz"), zipped=name.endswith(".zip"))
    feed = _Feed()
    try:
        prolog = _prolog(src, path.name)
        for _, elem in iterparse(_Resumed(prolog, src), events=("end",)):
            if elem.tag == f"{_ATOM}entry":
                _entry(elem, feed)
                elem.clear()
    except ParseError as exc:
        raise ReaderError(f"{path.name}: not well-formed XML ({one_line(exc)})") from exc
    finally:
        src.close()
    if not feed.readings and not feed.bad:
        raise ReaderError(
            f"{path.name}: no Green Button (ESPI) interval data: an XML file is read as an "
            "Atom feed of IntervalBlock entries"
        )
    frame, lines = _rows(feed)
    yield from sliced(frame, lines, feed.bad, f"file:{path.name}", 1, src.bytes_read, batch_rows)


def _prolog(src: ByteSource, name: str) -> bytes:
    """The bytes up to the root element's start, refused when they hold a document type
    declaration: entities are declared only there, so a feed without one can expand no
    entity (a billion laughs, an external file), and the parser need not guard against
    them. A feed's prolog is an XML declaration and perhaps a comment."""
    head = b""
    while True:
        block = src.read(_BLOCK)
        head += block
        at, done = _root_start(head)
        if done or not block or len(head) > _MAX_PROLOG:
            break
    if not done:
        raise ReaderError(f"{name}: no Green Button (ESPI) feed: no root element found")
    if b"<!DOCTYPE" in head[:at]:
        raise ReaderError(
            f"{name}: the XML declares a document type (a DTD, where entities are "
            "declared), which is not read: a Green Button feed has none"
        )
    return head


def _root_start(head: bytes) -> tuple[int, bool]:
    """Where the root element starts in ``head`` (past the declaration, processing
    instructions, comments and any DOCTYPE), and whether it was found."""
    at = 0
    while True:
        at = head.find(b"<", at)
        if at < 0 or at + 1 >= len(head):
            return len(head), False
        if head.startswith(b"<?", at):
            end = head.find(b"?>", at)
        elif head.startswith(b"<!--", at):
            end = head.find(b"-->", at)
        elif head.startswith(b"<!", at):
            end = _declaration_end(head, at)  # a DOCTYPE: _prolog refuses it
        else:
            return at, True
        if end < 0:
            return len(head), False
        at = end + 1


def _declaration_end(head: bytes, at: int) -> int:
    """The end of a ``<!DOCTYPE ...>`` starting at ``at``, past its internal subset."""
    bracket = head.find(b"[", at)
    close = head.find(b">", at)
    if 0 <= bracket < close:
        subset = head.find(b"]", bracket)
        return -1 if subset < 0 else head.find(b">", subset)
    return close


class _Resumed:
    """``src`` read from its start again: ``first`` (already read), then the rest."""

    def __init__(self, first: bytes, src: ByteSource) -> None:
        self._first, self._src = first, src

    def read(self, size: int = -1) -> bytes:
        if self._first:
            out, self._first = self._first, b""
            return out
        return self._src.read(size if size > 0 else _BLOCK)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _entry(entry: Element, feed: _Feed) -> None:
    links = {link.get("rel", ""): link.get("href", "") for link in entry.iter(f"{_ATOM}link")}
    related = [
        link.get("href", "") for link in entry.iter(f"{_ATOM}link") if link.get("rel") == "related"
    ]
    content = entry.find(f"{_ATOM}content")
    if content is None or not len(content):
        return
    body = content[0]
    kind, self_href = _local(body.tag), links.get("self", "")
    if kind == "ReadingType":
        feed.types[self_href] = _reading_type(body)
    elif kind == "MeterReading":
        feed.related[self_href] = related
    elif kind == "IntervalBlock":
        owner = (
            self_href.split("/IntervalBlock")[0] or links.get("up", "").split("/IntervalBlock")[0]
        )
        ns = body.tag[: -len(kind)]  # the ESPI namespace, as "{...}"
        tags = _Tags.of(ns)
        for reading in body.iterfind(f"{ns}IntervalReading"):
            _interval(reading, tags, owner, feed)


def _text(elem: Element, name: str) -> str | None:
    for child in elem.iter():
        if _local(child.tag) == name and child.text is not None:
            return child.text.strip()
    return None


def _integer(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _reading_type(body: Element) -> _Type:
    return _Type(
        uom=_integer(_text(body, "uom")),
        power=_integer(_text(body, "powerOfTenMultiplier")) or 0,
        flow=_integer(_text(body, "flowDirection")),
        interval=_integer(_text(body, "intervalLength")),
        commodity=_integer(_text(body, "commodity")),
    )


@dataclass(frozen=True)
class _Tags:
    """An ESPI namespace's tags an interval reading is read by (made once per block)."""

    period: str
    start: str
    duration: str
    value: str
    quality: str

    @classmethod
    def of(cls, ns: str) -> _Tags:
        return cls(
            period=f"{ns}timePeriod",
            start=f"{ns}start",
            duration=f"{ns}duration",
            value=f"{ns}value",
            quality=f"{ns}ReadingQuality",
        )


def _interval(reading: Element, tags: _Tags, owner: str, feed: _Feed) -> None:
    """One ``IntervalReading``: its children looked at once each (a feed has hundreds
    of thousands), its value kept or its problem made a bad row."""
    feed.readings += 1
    place = feed.readings
    start = duration = text = None
    estimated = False
    for child in reading:
        tag = child.tag
        if tag == tags.period:
            start, duration = child.findtext(tags.start), child.findtext(tags.duration)
        elif tag == tags.value:
            text = child.text
        elif tag == tags.quality:
            estimated = estimated or any(
                _integer(q.text) in _ESTIMATES for q in child if q.tag.endswith("quality")
            )
    begin, length = _integer(start), _integer(duration)
    why = None
    if begin is None or length is None:
        why = "Green Button IntervalReading: no timePeriod start and duration"
    elif text is None or not text.strip():
        why = "Green Button IntervalReading: no value"
    else:
        try:
            value = float(text)
        except ValueError:
            why = f"Green Button IntervalReading: value {text.strip()[:20]!r} is no number"
    if why is not None:
        raw = f"start={start} duration={duration} value={(text or '').strip()[:40]}"
        feed.bad.append(BadRow(raw, why, place))
        return
    assert begin is not None and length is not None
    feed.reading.append(owner)
    feed.start.append(begin)
    feed.duration.append(length)
    feed.value.append(value)
    feed.estimated.append(estimated)
    feed.place.append(place)


def _rows(feed: _Feed) -> tuple[pl.DataFrame, npt.NDArray[np.int64]]:
    """The interval readings as rows (a column per reading type), and each row's
    "line" (its first interval reading's place in the feed)."""
    if not feed.reading:  # every interval reading was a bad row
        return pl.DataFrame(schema=_SCHEMA), np.empty(0, dtype=np.int64)
    owners = sorted(set(feed.reading))
    only = next(iter(feed.types.values())) if len(feed.types) == 1 else _Type(uom=72)
    columns: dict[str, str] = {}
    factors: dict[str, float] = {}
    declared: dict[str, tuple[str | None, str | None]] = {}
    for owner in owners:
        kinds = [feed.types[h] for h in feed.related.get(owner, []) if h in feed.types]
        kind = kinds[0] if kinds else only
        columns[owner], factors[owner] = kind.column()
        declared[owner] = kind.declared()
    attributes = {
        ATTRIBUTE_COLUMN.format(name): {o: d[i] for o, d in declared.items()}
        for i, name in enumerate(("commodity", "unit"))
        if any(d[i] is not None for d in declared.values())
    }
    names = list(dict.fromkeys(columns.values()))
    long = pl.DataFrame(
        {
            "owner": feed.reading,
            "start": feed.start,
            "interval_s": feed.duration,
            "value": feed.value,
            ESTIMATED_INPUT: feed.estimated,
            "line": feed.place,
        },
        schema_overrides={"interval_s": pl.Int32, "line": pl.Int64},
    ).with_columns(
        column=pl.col("owner").replace_strict(columns),
        # (rounded as every unit conversion is: 950 Wh is 0.95 kWh, not 0.9500000000000001)
        value=(
            pl.col("value") * pl.col("owner").replace_strict(factors, return_dtype=pl.Float64)
        ).round(10),
        meter_id=pl.col("owner").str.extract(_USAGE_POINT.pattern, 1).fill_null("usage-point"),
        **{
            column: pl.col("owner").replace_strict(values, return_dtype=pl.String)
            for column, values in attributes.items()
        },
    )
    wide = (
        long.group_by("meter_id", "start", "interval_s", maintain_order=True)
        .agg(
            *[pl.col("value").filter(pl.col("column") == n).last().alias(n) for n in names],
            pl.col(ESTIMATED_INPUT).any(),
            pl.col("line").min(),
            *[pl.col(c).drop_nulls().first() for c in attributes],
        )
        .sort("line")
    )
    frame = wide.select(
        pl.col("meter_id"),
        pl.from_epoch("start", time_unit="s").dt.cast_time_unit("us").dt.replace_time_zone("UTC"),
        pl.col("interval_s"),
        *[pl.col(n) for n in names],
        pl.col(ESTIMATED_INPUT),
        *[pl.col(c) for c in attributes],
    ).rename({"start": "ts"})
    return frame, wide.get_column("line").to_numpy().astype(np.int64)
