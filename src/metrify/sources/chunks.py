"""Cutting a file's bytes into chunks of whole lines, with every line numbered.

The line-based formats (CSV, JSON Lines) parse chunk by chunk, so memory stays flat
whether a file holds a thousand rows or a billion, and every line that cannot be read
(too long, cut off by a broken stream) still comes out as a
:class:`~metrify.sources.batches.BadRow` naming its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from metrify.sources.batches import BadRow, ReaderError, raw_text
from metrify.sources.opening import ByteSource

__all__ = ["Chunk", "LineChunker", "find_newlines", "first_content_line"]

#: a chunk never grows past this many bytes (and no line may be longer): bounds memory.
_CHUNK_BYTES = 32 << 20
#: bytes asked of the (decompressed) stream per read; small enough that a gzip error
#: loses at most this much of what was decoded before it.
_READ_BLOCK = 1 << 20
#: the first read's size: a file's header or first rows (what a command's checks read of
#: each file before a load) are in it, without decompressing a whole block per file
_FIRST_BLOCK = 64 << 10
#: how much of an over-long line a BadRow keeps.
_RAW_PREVIEW = 1000

_BOM: Final = b"\xef\xbb\xbf"


@dataclass
class Chunk:
    """Whole lines of the file (always ending in a newline) and where they start."""

    data: bytes
    first_line: int
    bad: list[BadRow] = field(default_factory=list)
    newlines: npt.NDArray[np.int64] | None = None  # positions of b"\n" in data, if known


def find_newlines(block: bytes | bytearray, offset: int = 0) -> npt.NDArray[np.int64]:
    """Positions of the line feeds in ``block``, shifted by ``offset``."""
    positions = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    return positions.astype(np.int64) + offset


class LineChunker:
    """Cuts a byte stream into chunks of whole lines: at most ``max_lines`` lines and
    about ``_CHUNK_BYTES`` bytes each, counting lines so every BadRow can name its line.

    A line longer than that bound is not buffered (that would break the memory bound):
    it becomes a BadRow with its beginning. If the stream fails mid-way (corrupt gzip),
    the complete lines before the failure are still handed out, the cut-off line becomes a
    BadRow, and then the error is raised.
    """

    def __init__(self, src: ByteSource) -> None:
        self._src = src
        self._max_bytes = _CHUNK_BYTES
        self._buf = bytearray()
        self._nl: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._eof = False
        self._started = False
        self._error: ReaderError | None = None
        self._next_line = 1  # number of the first line in the buffer

    def _fill(self) -> None:
        try:
            block = self._src.read(_READ_BLOCK if self._started else min(_FIRST_BLOCK, _READ_BLOCK))
        except ReaderError as exc:
            self._error = exc
            self._eof = True
            return
        if not self._started:
            self._started = True
            if block.startswith(_BOM):
                block = block[len(_BOM) :]
        if not block:
            self._eof = True
            if self._buf and not self._buf.endswith(b"\n"):
                # The last line needs no newline to be a line.
                self._nl = np.append(self._nl, np.int64(len(self._buf)))
                self._buf += b"\n"
            return
        self._nl = np.concatenate((self._nl, find_newlines(block, len(self._buf))))
        self._buf += block

    def _take(self, n_lines: int) -> Chunk:
        cut = int(self._nl[n_lines - 1]) + 1
        chunk = Chunk(bytes(self._buf[:cut]), self._next_line, newlines=self._nl[:n_lines])
        del self._buf[:cut]
        self._nl = self._nl[n_lines:] - cut
        self._next_line += n_lines
        return chunk

    def skip(self, n_lines: int) -> None:
        """Pass over the first ``n_lines`` lines, blank or not (an export's preamble)."""
        for _ in range(n_lines):
            while len(self._nl) == 0 and not self._eof:
                if len(self._buf) >= self._max_bytes:
                    raise ReaderError(
                        f"{self._src.name}: a line before the header is longer than "
                        f"{self._max_bytes} bytes"
                    )
                self._fill()
            if len(self._nl) == 0:
                if self._error is not None:
                    raise self._error
                return
            self._take(1)

    def header(self) -> tuple[bytes, int] | None:
        """The first non-blank line (without its line end) and its number; None if none."""
        while True:
            while len(self._nl) == 0 and not self._eof:
                if len(self._buf) >= self._max_bytes:
                    raise ReaderError(
                        f"{self._src.name}: header line is longer than {self._max_bytes} bytes"
                    )
                self._fill()
            if len(self._nl) == 0:
                if self._error is not None:
                    raise self._error
                return None
            number = self._next_line
            line = self._take(1).data.rstrip(b"\n").removesuffix(b"\r")
            if line.strip():
                return line, number

    def peek(self) -> tuple[bytes, int] | None:
        """The first non-blank line and its number, left in place: the first row of a
        file without a header, read for its fields and then parsed with the rest.
        Blank lines before it are consumed (they are no rows)."""
        while True:
            while len(self._nl) == 0 and not self._eof:
                if len(self._buf) >= self._max_bytes:
                    raise ReaderError(
                        f"{self._src.name}: first line is longer than {self._max_bytes} bytes"
                    )
                self._fill()
            if len(self._nl) == 0:
                if self._error is not None:
                    raise self._error
                return None
            end = int(self._nl[0])
            line = bytes(self._buf[:end]).removesuffix(b"\r")
            if line.strip():
                return line, self._next_line
            self._take(1)

    def chunks(self, max_lines: int) -> Iterator[Chunk]:
        """Chunks of whole lines; raises the stream's error after the last good chunk."""
        cut_off: BadRow | None = None
        while True:
            while not self._eof and len(self._nl) < max_lines and len(self._buf) < self._max_bytes:
                self._fill()
            broken = self._eof and self._error is not None
            if broken and self._buf and not self._buf.endswith(b"\n"):
                # The line the failure cut in two: its start may look like a valid row
                # ("0.2" of "0.219"), so it must not be parsed as one.
                start = int(self._nl[-1]) + 1 if len(self._nl) else 0
                cut_off = BadRow(
                    raw_text(bytes(self._buf[start : start + _RAW_PREVIEW])),
                    "incomplete line: the file breaks off here",
                    self._next_line + len(self._nl),
                )
                del self._buf[start:]
            if len(self._nl) >= max_lines:
                yield self._take(max_lines)
            elif len(self._nl) > 0:
                yield self._take(len(self._nl))
            elif self._buf:  # no newline within max_bytes
                yield self._skip_long_line()
            else:
                if cut_off is not None:
                    yield Chunk(b"", cut_off.line or self._next_line, [cut_off])
                if self._error is not None:
                    raise self._error
                return

    def _skip_long_line(self) -> Chunk:
        number = self._next_line
        bad = BadRow(
            raw_text(bytes(self._buf[:_RAW_PREVIEW])) + "...",
            f"line longer than {self._max_bytes} bytes",
            number,
        )
        while len(self._nl) == 0:
            self._buf.clear()
            if self._eof:
                break
            self._fill()
        if len(self._nl):
            cut = int(self._nl[0]) + 1
            del self._buf[:cut]
            self._nl = self._nl[1:] - cut
        self._next_line = number + 1
        return Chunk(b"", number, [bad])


def first_content_line(data: bytes, first_line: int, blank: re.Pattern[bytes]) -> int:
    """The number of the first line of ``data`` that ``blank`` does not skip."""
    match = blank.match(data)
    return first_line + (data.count(b"\n", 0, match.end()) if match else 0)
