"""What a run did: the one result shape every entry point (CLI, API, worker) reports.

It lives at the ground so that the doors, the workers and the metrics can all speak of a
run without importing the pipeline that produced it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    """What a run did; the same shape for every entry point (CLI, API, worker)."""

    kind: str
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    quarantined: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    #: bad rows counted in ``rejected`` but not kept in quarantine (over ``max_rejects``
    #: for their file or request; a warning says so). Not a key of :meth:`as_dict`, whose
    #: shape is the API's: the warning carries it there.
    not_kept: int = 0
    gaps: int = 0
    estimated: int = 0
    files: int = 0
    lake_files: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: a file load without ``--interval``: meters per detected interval (seconds). In
    #: :meth:`as_dict` only when some interval was detected (the API never detects).
    intervals: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = self._counts()
        if self.intervals:
            out["intervals_detected"] = {str(s): n for s, n in sorted(self.intervals.items())}
        return out

    def _counts(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "read": self.read,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "quarantined": self.quarantined,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "estimated": self.estimated,
            "statuses": dict(self.statuses.most_common()),
            "files": self.files,
            "lake_files": self.lake_files,
            "seconds": round(self.seconds, 3),
            "rate_per_s": round(self.read / self.seconds) if self.seconds > 0 else None,
            "reasons": dict(self.reasons.most_common()),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }
