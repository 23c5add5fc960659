"""The data lake: every accepted version of a record, one Delta Lake table per kind.

:class:`Lake` writes (upsert by key + version), replaces days, reads (a day, a table, as
of a version), and keeps the tables small (compaction, vacuum); :mod:`.location` turns a
lake URL into what delta-rs opens; :mod:`.legacy` reads the plain-Parquet layout of
earlier releases for ``metrify lake convert``.
"""

from metrify.stores.lake.location import Location, _filesystem, locate
from metrify.stores.lake.table import (
    Commit,
    Lake,
    LakeConflict,
    LegacyLayoutError,
    lake_schema,
)

__all__ = [
    "Commit",
    "Lake",
    "LakeConflict",
    "LegacyLayoutError",
    "Location",
    "_filesystem",
    "lake_schema",
    "locate",
]
