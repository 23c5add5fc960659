"""Checking the audit log's hash chain: every row in its place, unaltered, none missing.

Each row's ``hash`` is sha256 over a canonical encoding of its fields and ``prev_hash``
(the hash of the row before it), set by the database when the row is inserted (migration
0010). The table refuses UPDATE, DELETE and TRUNCATE, but the schema's owner can switch
its triggers off; rewriting a row, removing one or moving one then breaks the chain from
that row on, and :func:`verify` names the first such row.

The hash is recomputed here, in Python, from the encoding the migration documents rather
than by calling the database's function, so a tampered function cannot vouch for a
tampered row. The whole walk reads one snapshot, so rows inserted meanwhile neither
break nor lengthen it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from metrify.stores.pools import Connection

#: the ``prev_hash`` of the first row
GENESIS = "0" * 64
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ROWS = (
    "SELECT seq, id, at, actor, actor_kind, action, target, outcome, request_id, client,"
    " details::text, prev_hash, hash FROM audit_log ORDER BY seq"
)


def encode(fields: Sequence[str | None]) -> bytes:
    """The canonical encoding: ``N`` for NULL, else ``S<UTF-8 length>:<text>``, joined."""
    out = bytearray()
    for field in fields:
        if field is None:
            out += b"N"
        else:
            data = field.encode()
            out += b"S%d:%s" % (len(data), data)
    return bytes(out)


def row_hash(row: Sequence[Any]) -> str:
    """The hash a row should carry: ``row`` holds the columns of the walk's query up to
    and including ``prev_hash`` (seq, id, at, ..., ``details::text``, prev_hash)."""
    seq, ident, at, *texts = row
    micros = (at - _EPOCH) // dt.timedelta(microseconds=1)
    fields = [str(seq), str(ident), str(micros), *texts]
    return hashlib.sha256(encode(fields)).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first row where the chain does not hold."""

    kind: str  # missing | reordered | altered
    seq: int  # the chain position where it breaks
    id: int | None  # the row found there (None: rows missing at the end)
    message: str


@dataclass(frozen=True)
class Verdict:
    rows: int  # rows checked
    head_seq: int  # the last position the database recorded
    head_hash: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "broken": None if self.broken is None else vars(self.broken),
        }


def _check(row: Sequence[Any], seq: int, prev: str) -> Break | None:
    """What is wrong with ``row`` found where position ``seq`` after hash ``prev`` is due."""
    at_seq, ident = int(row[0]), int(row[1])
    if at_seq != seq:
        gap = f"seq {seq}" if at_seq == seq + 1 else f"seq {seq} to {at_seq - 1}"
        return Break("missing", seq, ident, f"{gap} missing: the next row found is id {ident}")
    if row[11] != prev:
        return Break(
            "reordered",
            seq,
            ident,
            f"row id {ident} (seq {seq}) does not follow the row before it: its prev_hash"
            " is not that row's hash (moved, or a row before it inserted or removed)",
        )
    if row[12] != row_hash(row[:12]):
        return Break(
            "altered",
            seq,
            ident,
            f"row id {ident} (seq {seq}) was altered: its fields do not match its hash",
        )
    return None


def _off_anchor(row: Sequence[Any], anchor: tuple[int, str] | None) -> Break | None:
    """A break when ``row`` is at the anchor's position but carries another hash."""
    if anchor is None or int(row[0]) != anchor[0] or row[12] == anchor[1]:
        return None
    ident = int(row[1])
    return Break(
        "altered",
        anchor[0],
        ident,
        f"row id {ident} (seq {anchor[0]}) no longer has the anchored hash {anchor[1]}:"
        " the chain was rewritten from it or before it",
    )


def count(conn: Connection) -> int:
    """Rows in the log (for a progress bar's total)."""
    row = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    return 0 if row is None else int(row[0])


def verify(
    conn: Connection,
    progress: Callable[[int], None] | None = None,
    *,
    anchor: tuple[int, str] | None = None,
    batch: int = 5000,
) -> Verdict:
    """Walk the chain in ``seq`` order and stop at the first row that breaks it;
    ``progress`` is called with the number of rows checked after each batch.

    ``anchor`` is a (seq, hash) pair kept out of the owner's reach (a head printed by an
    earlier verify): an owner who rewrote every hash after a change, and the head, makes
    a chain that holds, but not one where that row keeps that hash.
    """
    seq, prev, rows = 1, GENESIS, 0
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head = conn.execute("SELECT seq, hash FROM audit_chain WHERE head").fetchone()
        head_seq, head_hash = (0, GENESIS) if head is None else (int(head[0]), str(head[1]))
        with conn.cursor(name="audit_verify") as cur:
            cur.itersize = batch
            cur.execute(_ROWS)
            while chunk := cur.fetchmany(batch):
                for row in chunk:
                    broken = _check(row, seq, prev) or _off_anchor(row, anchor)
                    if broken is not None:
                        return Verdict(rows, head_seq, head_hash, broken)
                    seq, prev, rows = seq + 1, str(row[12]), rows + 1
                if progress is not None:
                    progress(rows)
    if anchor is not None and anchor[0] > rows:
        broken = Break(
            "missing", seq, None, f"the anchor's seq {anchor[0]} is past the end of the log"
        )
        return Verdict(rows, head_seq, head_hash, broken)
    if head_seq > rows:
        gap = f"seq {seq}" if head_seq == seq else f"seq {seq} to {head_seq}"
        broken = Break("missing", seq, None, f"{gap} missing at the end of the log")
        return Verdict(rows, head_seq, head_hash, broken)
    if head_seq < rows or (rows and head_hash != prev):
        return Verdict(
            rows,
            head_seq,
            head_hash,
            Break(
                "altered",
                rows,
                None,
                f"the chain's head (seq {head_seq}) does not match its last row (seq {rows})",
            ),
        )
    return Verdict(rows, head_seq, head_hash, None)
