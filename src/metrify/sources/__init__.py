"""Sources: what utilities send (files, Kafka messages), turned into rows the pipeline decodes.

The public API below is what the other layers use to read files and build raw rows:
:func:`read_batches` streams a file as :class:`RawBatch` es, lines that cannot be split
come out as :class:`BadRow` s, and a file that cannot be read at all raises
:class:`ReaderError`. The modules behind it each own one step:

* :mod:`~metrify.sources.files`: which reader a file's name asks for;
* :mod:`~metrify.sources.opening`: bytes off the disk, gunzipped or unzipped where named so;
* :mod:`~metrify.sources.chunks`: whole, numbered lines in bounded chunks;
* :mod:`~metrify.sources.csv`, :mod:`~metrify.sources.jsonl`,
  :mod:`~metrify.sources.parquet`, :mod:`~metrify.sources.excel`: one format each
  (:mod:`~metrify.sources.nem12`: the Australian market's interval data, met among
  CSV files by its header);
* :mod:`~metrify.sources.dayrows`: rows of days (a column per interval) as rows of
  intervals (``--wide``);
* :mod:`~metrify.sources.json_rows`: JSON records as string columns (files, Kafka, HTTP);
* :mod:`~metrify.sources.batches`: the batches, bad rows and errors they hand out;
* :mod:`~metrify.sources.mapping`: the ``--map``/``--set``/``--scale``/``--unit``/``--tz``
  options (:mod:`~metrify.sources.units` converts the units);
* :mod:`~metrify.sources.numbers`: a number's text (commas, groups, units) for decoding;
* :mod:`~metrify.sources.registers`: interval energy derived from cumulative register reads.

Two modules are imported by their own name rather than from here:
:mod:`metrify.sources.decode`, whose main function shares the module's name (exporting it
here would hide the module behind the function), and :mod:`metrify.sources.kafka`, which
loads the Kafka client that only the streaming commands need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metrify.sources.batches import BadRow, RawBatch, ReaderError
    from metrify.sources.files import FileFormat, detect_format, read_batches
    from metrify.sources.json_rows import json_error_reason, load_json, string_columns
    from metrify.sources.mapping import Mapping, MappingError, build_mapping
    from metrify.sources.opening import count_bytes

#: where each public name lives; loaded on first use, so that importing one module of
#: the package (``decode``, ``mapping``: every command's start) does not load the file
#: readers and pyarrow's CSV with it
_HOMES = {
    "BadRow": "batches",
    "RawBatch": "batches",
    "ReaderError": "batches",
    "FileFormat": "files",
    "detect_format": "files",
    "read_batches": "files",
    "json_error_reason": "json_rows",
    "load_json": "json_rows",
    "string_columns": "json_rows",
    "Mapping": "mapping",
    "MappingError": "mapping",
    "build_mapping": "mapping",
    "count_bytes": "opening",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'metrify.sources' has no attribute {name!r}")
    return getattr(importlib.import_module(f"metrify.sources.{home}"), name)


__all__ = [
    "BadRow",
    "FileFormat",
    "Mapping",
    "MappingError",
    "RawBatch",
    "ReaderError",
    "build_mapping",
    "count_bytes",
    "detect_format",
    "json_error_reason",
    "load_json",
    "read_batches",
    "string_columns",
]
