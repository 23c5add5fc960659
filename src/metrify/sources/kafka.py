"""Kafka as a source: the wire format, decoding messages, and the producers.

Topics: one per record kind (``metrify.readings``, ``metrify.grid``, ``metrify.weather``,
``metrify.events``;
names in :class:`~metrify.settings.kafka.KafkaSettings`), plus a dead-letter
topic for messages that cannot be decoded at all.

Messages: the key is the meter / node / station id, so the default partitioner keeps
every id in one partition and its records in order. The value is one record or a JSON
array of records, in the contract's field names, times as ISO 8601 (UTC). Absent and
``null`` fields mean "no value".

Decoding turns a message's JSON into the same raw string columns a JSON Lines file gives
(the conversion is :mod:`metrify.sources.json_rows`'s own), so the pipeline's ``decode()``
judges Kafka records exactly like file rows. A message that is not JSON, not UTF-8, not
an object or array, or larger than the limit is *poison*: the worker sends its raw bytes
to the dead-letter topic and quarantines it; nothing is dropped.

Producers send frames already decoded into the contract (files go through the pipeline's
``decode()`` first, with the same ``--map`` options as ``metrify ingest``), so what lands
on a topic is contract records; rows that could not be decoded go to the dead-letter
topic with their reason.
"""

from __future__ import annotations

import functools
import io
import itertools
import logging
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import polars as pl
from confluent_kafka import KafkaError, KafkaException, Producer

from metrify.contracts.records import EVENT, GRID, READING, WEATHER, Contract, Quality
from metrify.ops import tracing
from metrify.settings.kafka import KafkaSettings
from metrify.sources.batches import FLAGS, BadRow, ReaderError
from metrify.sources.decode import SchemaMismatch, decode
from metrify.sources.files import read_batches
from metrify.sources.json_rows import json_error_reason, load_json, string_columns
from metrify.sources.mapping import ESTIMATED_INPUT, Mapping, mappable

__all__ = [
    "CONTRACT_OF",
    "ORIGIN",
    "Parsed",
    "ProduceSummary",
    "Sender",
    "encode_records",
    "fast_rows_frame",
    "frame_messages",
    "parse_message",
    "produce_files",
    "rows_frame",
]

log = logging.getLogger(__name__)

CONTRACT_OF: Final[dict[str, Contract]] = {c.kind: c for c in (READING, GRID, WEATHER, EVENT)}
#: records per message when a frame is sent: large enough to amortise per-message costs,
#: small enough (about 150 KB of readings) to stay well under Kafka's 1 MB default.
MESSAGE_RECORDS: Final = 500
#: how much of a poison message's text a quarantine row keeps beyond the size limit.
_PREVIEW_CHARS: Final = 1000


# --------------------------------------------------------------------------- decoding


@dataclass
class Parsed:
    """One message, parsed: its records (JSON objects), or why it is poison."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    #: array elements that are not objects: quarantined, the rest of the message is kept.
    bad: list[BadRow] = field(default_factory=list)
    #: set when the whole message is undecodable (dead-letter topic + quarantine).
    poison: str | None = None


def _text(raw: bytes, limit: int) -> str:
    text = raw[: limit + 4].decode("utf-8", errors="replace")
    if len(raw) > limit:
        return text[:_PREVIEW_CHARS] + f"... ({len(raw)} bytes; the whole message is in the DLT)"
    return text or repr(raw)


def parse_message(value: bytes | None, *, max_bytes: int, line: int | None = None) -> Parsed:
    """Parse one message value; never raises. ``line`` numbers its quarantine rows."""
    if value is None or not value.strip():
        return Parsed(poison="empty message", bad=[BadRow("<empty>", "empty message", line)])
    if len(value) > max_bytes:
        reason = f"message larger than {max_bytes} bytes"
        return Parsed(poison=reason, bad=[BadRow(_text(value, max_bytes), reason, line)])
    try:
        obj = load_json(value)
    except orjson.JSONDecodeError as exc:
        reason = json_error_reason(value, exc)
        return Parsed(poison=reason, bad=[BadRow(_text(value, max_bytes), reason, line)])
    if isinstance(obj, dict):
        if not obj:
            reason = "empty JSON object"
            return Parsed(poison=reason, bad=[BadRow(_text(value, max_bytes), reason, line)])
        return Parsed(rows=[obj])
    if not isinstance(obj, list):
        reason = "not a JSON object or array of objects"
        return Parsed(poison=reason, bad=[BadRow(_text(value, max_bytes), reason, line)])
    parsed = Parsed()
    for item in obj:
        if isinstance(item, dict) and item:
            parsed.rows.append(item)
        else:
            why = "empty JSON object" if isinstance(item, dict) else "not a JSON object"
            parsed.bad.append(BadRow(orjson.dumps(item).decode(), why, line))
    return parsed


#: the column :func:`fast_rows_frame` names each record's message in (``origin=True``)
ORIGIN = "_message"
#: whitespace after a closing quote: one scan, where three ``in`` tests took three
_QUOTE_SPACE = re.compile(rb'"[ \t\r]')


def fast_rows_frame(
    contract: Contract, values: Sequence[bytes | None], *, origin: bool = False
) -> pl.DataFrame | None:
    """The records of well-formed messages as raw string columns, parsed by Polars in one go.

    The exact path (:func:`parse_message` then :func:`rows_frame`) builds a Python object
    per value and costs most of a worker's CPU; this one hands the whole batch to Polars'
    NDJSON reader: single-record messages as one line each, JSON arrays as lines
    ``{"r": [records]}``, put back in message order. It returns ``None`` whenever the
    batch holds anything only the exact path judges correctly, and the caller then parses
    message by message: an empty, non-UTF-8 or malformed message, one that is not an
    object or array of objects, a newline inside a message, an empty object or ``null``
    element, or a record with a field outside the contract, a repeated field or a nested
    value (found by counting keys in the text against the values read). So the fast path
    changes speed, never results.
    """
    objects: list[bytes] = []
    object_at: list[int] = []
    arrays: list[bytes] = []
    array_at: list[int] = []
    compact = b"\n".join(v or b"" for v in values)
    fast = compact.count(b"\n") == len(values) - 1 and all(
        v and v[:1] == b"{" and v[-1:] == b"}" for v in values
    )
    if fast:
        # The usual batch (a live fleet: one compact record per message) needs no look
        # at each message on its own.
        objects, object_at = list(values), list(range(len(values)))  # type: ignore[arg-type]
    else:
        for at, value in enumerate(values):
            text = value.strip() if value else b""
            if b"\n" in text:
                return None  # a message spans lines (pretty-printed JSON)
            if text[:1] == b"{":
                objects.append(text)
                object_at.append(at)
            elif text[:1] == b"[":
                arrays.append(b'{"r":' + text + b"}")
                array_at.append(at)
            else:
                return None
    # Numbers are read as numbers where every message has them so (what producers
    # send): no text to clean and cast again. A batch where some message quotes a
    # number or sends 900.0 for an integer is read as text, which decoding judges.
    fields: dict[str, pl.DataType] = dict.fromkeys(mappable(contract), pl.String())
    for schema in (_typed_fields(contract), fields):
        parts = _read_lines(objects, arrays, array_at, object_at, compact if fast else None, schema)
        if parts is not None:
            fields = schema
            break
    else:
        return None
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=fields)
    if len(parts) > 1:
        frame = frame.sort("_m", maintain_order=True)
    order = frame.get_column("_m") if "_m" in frame.columns else pl.Series([], dtype=pl.Int64)
    frame = frame.drop("_m", strict=False)
    if frame.select(pl.all_horizontal(pl.all().is_null()).any()).item():
        return None  # an empty object
    data = compact if fast else b"\n".join([*objects, *arrays])
    if _QUOTE_SPACE.search(data):
        return None  # whitespace before a colon would hide a key from the count below
    keys = data.count(b'":') - len(arrays)  # each array line's own "r":
    nulls = data.count(b":null") + data.count(b": null")
    cells = frame.height * frame.width - sum(frame.null_count().row(0))
    if keys != cells + nulls:
        return None  # a field outside the contract, a repeated field or a nested value
    if ESTIMATED_INPUT in frame.columns and frame.get_column(ESTIMATED_INPUT).is_null().all():
        frame = frame.drop(ESTIMATED_INPUT)  # (no record says it: no flags to carry)
    return frame.with_columns(order.alias(ORIGIN)) if origin else frame


def _typed_fields(contract: Contract) -> dict[str, pl.DataType]:
    """The contract's numeric fields as their own types, every other field as text (and
    a reading's ``estimated`` as the boolean producers send)."""
    typed: dict[str, pl.DataType] = {
        name: dtype if dtype.is_numeric() else pl.String()
        for name, dtype in contract.schema.items()
    }
    if ESTIMATED_INPUT in mappable(contract):
        typed[ESTIMATED_INPUT] = pl.Boolean()
    return typed


def _read_lines(
    objects: list[bytes],
    arrays: list[bytes],
    array_at: list[int],
    object_at: list[int],
    compact: bytes | None,
    fields: dict[str, pl.DataType],
) -> list[pl.DataFrame] | None:
    """Single-record lines and ``{"r": [records]}`` lines read with ``fields``, tagged
    with their message's place (``_m``); ``None`` when a line does not fit."""
    parts: list[pl.DataFrame] = []
    try:
        if objects:
            lines = compact if compact is not None else b"\n".join(objects)
            flat = pl.read_ndjson(io.BytesIO(lines), schema=fields)
            if flat.height != len(objects):
                return None
            parts.append(flat.with_columns(_m=pl.Series(object_at, dtype=pl.Int64)))
        if arrays:
            schema = {"r": pl.List(pl.Struct(fields))}
            nested = pl.read_ndjson(io.BytesIO(b"\n".join(arrays)), schema=schema)
            if nested.height != len(arrays):
                return None
            records = (
                nested.with_columns(_m=pl.Series(array_at, dtype=pl.Int64))
                .filter(pl.col("r").list.len() > 0)
                .explode("r")
            )
            if records["r"].null_count():
                return None  # a null element
            parts.append(records.unnest("r"))
    except (pl.exceptions.PolarsError, ValueError):
        return None
    return parts


def rows_frame(contract: Contract, rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Records as raw string columns (like a JSON Lines file): every contract field is a
    column even when no record has it, so a missing field is a per-record reject
    ("missing interval_s"), never a whole-batch schema error."""
    return string_columns(list(rows), contract.fields)


# --------------------------------------------------------------------------- encoding


def encode_records(records: Sequence[dict[str, Any]]) -> bytes:
    """One record as a JSON object, several as a JSON array (contract field names)."""
    if len(records) == 1:
        return orjson.dumps(records[0], option=orjson.OPT_NAIVE_UTC)
    return orjson.dumps(list(records), option=orjson.OPT_NAIVE_UTC)


def frame_messages(
    contract: Contract, frame: pl.DataFrame, *, max_records: int = MESSAGE_RECORDS
) -> Iterator[tuple[bytes, bytes, int]]:
    """(key, value, record count) per message: a frame's records grouped by id, in order.

    Rows are JSON-encoded column-wise by Polars (ISO times, nulls omitted), not one
    Python object per record; a message holds up to ``max_records`` records of one id.
    """
    if not frame.height:
        return
    id_col = contract.id_field or contract.key[0]
    columns = [pl.col(c) for c in contract.fields if c in frame.columns]
    if FLAGS in frame.columns:  # what the source estimated travels as the field it came in
        estimated = (pl.col(FLAGS) & int(Quality.ESTIMATED)) != 0
        columns.append(pl.when(estimated).then(True).alias(ESTIMATED_INPUT))
    data = frame.select(columns).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"))
    encoded = pl.DataFrame(
        {
            "id": data[id_col],
            "json": data.select(pl.struct(pl.all()).struct.json_encode()).to_series(),
        }
    ).with_columns(pl.col("json").str.replace_all(r',"[a-z_]+":null', ""))
    # A stable sort groups each id's records, in order, without a frame per id (a live
    # fleet sends thousands of ids with one record each).
    encoded = encoded.sort("id", maintain_order=True)
    rows = zip(encoded["id"].cast(pl.String).to_list(), encoded["json"].to_list(), strict=True)
    for key, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        values = [value for _, value in group]
        for i in range(0, len(values), max_records):
            part = values[i : i + max_records]
            body = part[0] if len(part) == 1 else "[" + ",".join(part) + "]"
            yield str(key).encode(), body.encode(), len(part)


# --------------------------------------------------------------------------- producing


class ProduceError(RuntimeError):
    """The cluster did not acknowledge every message (one line, for the user)."""


class Sender:
    """A producer that counts what the cluster acknowledged, in records and messages."""

    def __init__(self, kafka: KafkaSettings, producer: Producer | None = None) -> None:
        self.kafka = kafka
        try:
            self.producer = producer or Producer(kafka.producer_config())
        except KafkaException as exc:
            raise ValueError(f"invalid Kafka configuration: {exc.args[0].str()}") from None
        self.delivered_records = 0
        self.delivered_messages = 0
        self.failed_records = 0
        self.errors: Counter[str] = Counter()
        #: called (from ``poll``) with each acknowledged message, its record count and the
        #: ``context`` it was sent with
        self.on_delivered: Callable[[Any, int, object], None] | None = None

    def _done(self, records: int, context: object, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self.failed_records += records
            self.errors[err.str()] += 1
            return
        self.delivered_records += records
        self.delivered_messages += 1
        if self.on_delivered is not None:
            self.on_delivered(msg, records, context)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        records: int = 1,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        context: object = None,
    ) -> None:
        """Queue one message; waits (serving delivery reports) while the queue is full.
        ``context`` comes back with the message's delivery report (``on_delivered``)."""
        callback = functools.partial(self._done, records, context)
        while True:
            try:
                self.producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=callback
                )
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def send_frame(
        self, kind: str, frame: pl.DataFrame, *, max_records: int = MESSAGE_RECORDS
    ) -> int:
        """Send contract records keyed by id; returns how many records were queued."""
        topic, queued = self.kafka.topic(kind), 0
        if not tracing.enabled():
            for key, value, count in frame_messages(
                CONTRACT_OF[kind], frame, max_records=max_records
            ):
                self.send(topic, key, value, records=count)
                queued += count
            return queued
        # Traced: every message carries this span's context in its headers, so the
        # worker that takes it continues the trace (see metrify.pipeline.worker).
        with tracing.span(
            f"{topic} publish",
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "metrify.rows": frame.height,
            },
            kind="producer",
        ):
            headers: list[tuple[str, str | bytes | None]] = []
            tracing.inject(headers)
            for key, value, count in frame_messages(
                CONTRACT_OF[kind], frame, max_records=max_records
            ):
                self.send(topic, key, value, records=count, headers=headers or None)
                queued += count
        return queued

    def dead_letter(
        self, value: bytes, reason: str, *, key: bytes | None = None, **context: str
    ) -> None:
        """Park a message (or a row) that cannot be decoded, with the reason in a header."""
        headers: list[tuple[str, str | bytes | None]] = [("error", reason.encode())]
        headers.extend((k, v.encode()) for k, v in context.items())
        try:
            self.send(self.kafka.topic_deadletter, key, value, records=0, headers=headers)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            # The broker cannot take it whole; the quarantine table keeps the full text.
            headers.append(("truncated", str(len(value)).encode()))
            self.send(
                self.kafka.topic_deadletter,
                key,
                value[: self.kafka.max_message_bytes // 2],
                records=0,
                headers=headers,
            )

    def flush(self, timeout: float = 60.0) -> None:
        """Wait for every acknowledgement; raise :class:`ProduceError` if any failed."""
        left = self.producer.flush(timeout)
        if left:
            raise ProduceError(f"{left} messages not acknowledged within {timeout:.0f} s")
        if self.errors:
            what = "; ".join(f"{e} ({n}x)" for e, n in self.errors.most_common(3))
            raise ProduceError(f"{self.failed_records} records not delivered: {what}")


@dataclass
class ProduceSummary:
    """What ``metrify produce`` did: records sent, and rows rejected before sending."""

    kind: str
    sent: int = 0
    rejected: int = 0
    files: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def produce_files(
    sender: Sender,
    kind: str,
    paths: Iterable[Path],
    mapping: Mapping,
    *,
    batch_rows: int = 200_000,
) -> ProduceSummary:
    """Send files to the kind's topic, read and decoded exactly as ``metrify ingest`` does.

    Rows the decoder rejects (and lines the reader could not split) go to the dead-letter
    topic with their reason, source and line, so nothing read is dropped. Range checks are
    left to the worker's pipeline, which quarantines out-of-range values itself.
    """
    contract = CONTRACT_OF[kind]
    summary = ProduceSummary(kind=kind)
    for path in paths:
        summary.files += 1
        try:
            for batch in read_batches(path, batch_rows, **mapping.file_options):
                if mapping.derives_energy(contract, batch.data.columns):
                    raise SchemaMismatch(
                        "interval energy from a cumulative register is derived by "
                        "metrify ingest (it needs the meter's stored reads); "
                        "produce sends interval records only"
                    )
                decoded = decode(
                    contract,
                    batch.data,
                    mapping,
                    first_line=batch.first_line,
                    lines=batch.lines,
                    check_ranges=False,
                )
                summary.sent += sender.send_frame(kind, decoded.records)
                rejects = [(r, why, line) for r, why, line in decoded.rejects.iter_rows()]
                rejects += [(b.raw, b.reason, b.line) for b in batch.bad]
                for raw, why, line in rejects:
                    sender.dead_letter(
                        str(raw).encode(),
                        str(why),
                        kind=kind,
                        source=batch.source,
                        line="" if line is None else str(line),
                    )
                    summary.reasons[str(why)] += 1
                summary.rejected += len(rejects)
        except (ReaderError, SchemaMismatch) as exc:
            summary.errors.append(f"{path.name}: {exc}" if path.name not in str(exc) else str(exc))
    sender.flush()
    return summary
