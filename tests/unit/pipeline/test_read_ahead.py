"""Files read and decoded ahead of the pipeline: order, bad files, files given up on."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from metrify.contracts.records import READING
from metrify.pipeline import session
from metrify.pipeline.session import SMALL_FILE_BYTES, _Ahead
from metrify.sources.filechecks import FileChecks
from metrify.sources.mapping import Mapping


class _Decoder:
    """Stands in for the pipeline: "decodes" a batch into its first column's values."""

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, raw: pl.DataFrame, mapping: object, **_: object) -> list[str]:
        self.calls += 1
        time.sleep(0.001)  # let the loader fall behind now and then
        return raw.get_column("v").cast(pl.String).to_list()


def _csv(path: Path, values: list[int]) -> Path:
    path.write_text("v\n" + "".join(f"{v}\n" for v in values))
    return path


def _ahead(decoder: _Decoder, paths: list[Path], batch_rows: int, ahead_rows: int) -> _Ahead:
    """A read-ahead of plain readings files, decoding with ``decoder``."""
    return _Ahead(
        decoder,  # type: ignore[arg-type]
        FileChecks(READING, Mapping()),
        paths,
        Mapping(),
        batch_rows=batch_rows,
        ahead_rows=ahead_rows,
    )


@pytest.mark.parametrize("small", [SMALL_FILE_BYTES, 0], ids=["read-whole-ahead", "streamed"])
def test_batches_come_in_file_order_with_bad_and_abandoned_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: int
) -> None:
    monkeypatch.setattr(session, "SMALL_FILE_BYTES", small)
    a = _csv(tmp_path / "a.csv", [1, 2, 3, 4, 5])
    b = _csv(tmp_path / "b.csv", [6, 7, 8])
    missing = tmp_path / "missing.csv"
    # a file given up on after its first batch, then listed again: read whole the 2nd time
    paths = [a, missing, b, a, b]
    decoder = _Decoder()
    ahead = _ahead(decoder, paths, 2, 3)  # room for one batch at a time past the first
    seen: list[tuple[str, object]] = []
    with ahead:
        for number, path in enumerate(paths):
            for item in ahead.file(path):
                if isinstance(item, Exception):
                    seen.append((path.name, type(item).__name__))
                    break
                batch, _, decoded = item
                assert batch.source.endswith(path.name)
                seen.append((path.name, decoded))
                if number == 0:
                    break  # the loader gives the file up after one batch
    assert seen == [
        ("a.csv", ["1", "2"]),
        ("missing.csv", "ReaderError"),
        ("b.csv", ["6", "7"]),
        ("b.csv", ["8"]),
        ("a.csv", ["1", "2"]),
        ("a.csv", ["3", "4"]),
        ("a.csv", ["5"]),
        ("b.csv", ["6", "7"]),
        ("b.csv", ["8"]),
    ]


def test_a_loader_that_stops_stops_the_thread(tmp_path: Path) -> None:
    paths = [_csv(tmp_path / f"{i}.csv", list(range(50))) for i in range(20)]
    decoder = _Decoder()
    ahead = _ahead(decoder, paths, 10, 20)
    with ahead:
        first = next(iter(ahead.file(paths[0])))
        assert not isinstance(first, Exception)
    assert not ahead._thread.is_alive()
    # it stopped at its row budget, far from reading all 100 batches
    assert decoder.calls < 10


class _UnevenDecoder(_Decoder):
    """Decodes taking uneven times, so groups decoded side by side finish out of order."""

    def decode(self, raw: pl.DataFrame, mapping: object, **kw: object) -> list[str]:
        first = int(raw.get_column("v")[0])
        time.sleep(0.006 if first % 3 == 0 else 0.0005)
        return super().decode(raw, mapping, **kw)


def test_groups_decoded_side_by_side_come_in_file_order(tmp_path: Path) -> None:
    paths = [_csv(tmp_path / f"{i:02d}.csv", [10 * i + k for k in range(4)]) for i in range(12)]
    paths.insert(5, tmp_path / "missing.csv")
    ahead = _ahead(_UnevenDecoder(), paths, 4, 8)  # a group is one file
    seen: list[object] = []
    with ahead:
        for path in paths:
            for item in ahead.file(path):
                if isinstance(item, Exception):
                    seen.append(path.name)
                    break
                seen.extend(item[2])
    expected: list[object] = [str(10 * i + k) for i in range(12) for k in range(4)]
    expected.insert(5 * 4, "missing.csv")
    assert seen == expected
