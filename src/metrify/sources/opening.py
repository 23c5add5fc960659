"""Opening a file: its size on disk, and its bytes, gunzipped when it is named ``.gz``
and taken out of the archive when it is named ``.zip`` (an archive of one file, as
utilities and market operators send a day's export).

A file that is gzip or zip but not named so is refused at its first bytes. Every failure to open
or read becomes a one-line :class:`~metrify.sources.batches.ReaderError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from pathlib import Path
from typing import Final, cast

from metrify.sources.batches import ReaderError, one_line

__all__ = ["ByteSource", "count_bytes", "open_error", "open_file"]

_GZIP_MAGIC: Final = b"\x1f\x8b\x08"  # magic number and the deflate method
_ZIP_MAGIC: Final = b"PK\x03\x04"  # a zip archive's first local file header


def count_bytes(path: Path) -> int:
    """Size on disk: the total that :attr:`RawBatch.bytes_read` counts towards."""
    try:
        return path.stat().st_size
    except OSError as exc:
        raise open_error(path, exc) from exc


def open_error(path: Path, exc: OSError) -> ReaderError:
    """The one-line error for a file the system would not open."""
    if isinstance(exc, FileNotFoundError):
        return ReaderError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return ReaderError(f"{path}: is a directory, not a file")
    if isinstance(exc, PermissionError):
        return ReaderError(f"{path}: permission denied")
    return ReaderError(f"{path}: cannot read ({exc.strerror or one_line(exc)})")


def open_file(path: Path) -> io.BufferedReader:
    """The file opened for binary reading, or a :class:`ReaderError`."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise open_error(path, exc) from exc


class ByteSource:
    """The file's (decompressed) bytes, plus how far into the file on disk we are."""

    def __init__(self, path: Path, *, gzipped: bool, zipped: bool = False) -> None:
        self.name = path.name
        self.gzipped = gzipped or zipped
        self._raw = open_file(path)
        self._archive: zipfile.ZipFile | None = None
        self._stream: io.BufferedReader | gzip.GzipFile | zipfile.ZipExtFile
        if zipped:
            self._stream = self._member(path)
        elif gzipped:
            self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb")
        else:
            self._stream = self._raw
        self._first = True
        self._error: ReaderError | None = None

    def _member(self, path: Path) -> zipfile.ZipExtFile:
        """The one file a ``.zip`` archive holds; an archive of several is refused with
        their names (each needs its own options, such as its meter)."""
        try:
            self._archive = zipfile.ZipFile(self._raw)
            files = [i for i in self._archive.infolist() if not i.is_dir()]
            if len(files) != 1:
                names = ", ".join(i.filename for i in files[:10]) or "none"
                self.close()
                raise ReaderError(
                    f"{path.name}: a zip archive must hold one file, it holds {len(files)}"
                    f" ({names}); unzip it and name the files"
                )
            return cast(zipfile.ZipExtFile, self._archive.open(files[0]))
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as exc:
            self.close()
            raise ReaderError(f"{path.name}: not a readable zip archive ({one_line(exc)})") from exc

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end. On a failure the bytes decoded before it
        are returned first and the error is raised by the next call."""
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        got = 0
        while got < size:
            try:
                # read1 hands out what one step of decompression produced, so a corrupt
                # stretch costs only the data after the last good step.
                part = self._stream.read1(size - got)
            except (gzip.BadGzipFile, EOFError, zlib.error, zipfile.BadZipFile) as exc:
                what = "zip archive" if self._archive is not None else "gzip file"
                self._error = ReaderError(f"{self.name}: not a valid {what} ({one_line(exc)})")
            except OSError as exc:
                self._error = ReaderError(
                    f"{self.name}: read failed ({exc.strerror or one_line(exc)})"
                )
            if self._error is not None:
                if parts:
                    break
                raise self._error
            if not part:
                break
            parts.append(part)
            got += len(part)
        block = b"".join(parts)
        if self._first:
            self._first = False
            if not self.gzipped and _looks_gzipped(block):
                raise ReaderError(
                    f"{self.name}: the file is gzip-compressed but its name does not end in .gz"
                )
            if not self.gzipped and block.startswith(_ZIP_MAGIC):
                raise ReaderError(
                    f"{self.name}: the file is a zip archive but its name does not end in .zip"
                )
        return block

    @property
    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        stream = getattr(self, "_stream", self._raw)
        if stream is not self._raw:
            stream.close()
        if self._archive is not None:
            self._archive.close()
        self._raw.close()


def _looks_gzipped(block: bytes) -> bool:
    """True when a file's first bytes are gzip: a misnamed .csv.gz would otherwise turn
    into thousands of 'invalid UTF-8' rows instead of one clear error."""
    if not block.startswith(_GZIP_MAGIC):
        return False
    try:
        zlib.decompressobj(wbits=31).decompress(block[: 64 << 10])
    except zlib.error:
        return False
    return True
