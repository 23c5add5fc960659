"""Manual editing of stored readings by a named operator (the E of VEE).

An edit is a new version of each reading in the range: the old version goes to history
with who (``edit:<operator>``), when and why, and the new one carries the ``edited``
flag. It goes through the pipeline's one write path, so scores and the lake follow.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Final

import polars as pl

from metrify.contracts.records import READING, Quality, Status
from metrify.contracts.timespan import WINDOW_TEXT, in_window
from metrify.pipeline.stages import Pipeline
from metrify.quality.estimate import estimate


class EditError(ValueError):
    """The edit cannot be made (no readings in range, bad value)."""


@dataclass
class EditResult:
    rows: int
    updated: int


#: the largest import_kwh an edit may set for one interval: 10 GWh, more than a 400 MW
#: site draws in a whole day (the longest interval). Ingest leaves an implausible value
#: to VEE, which flags it; an edit is stored as valid with no VEE pass, so an absurd
#: value (1e300, a slip of the keyboard) is refused here instead of reaching every sum
#: and the audit log (where JSON numbers that large no longer read back as floats).
MAX_EDIT_KWH: Final = 10_000_000.0


def check_value(value: float) -> None:
    """The value checks ingest applies to ``import_kwh`` (finite, not negative), plus
    the ceiling an edit needs because it bypasses VEE (:data:`MAX_EDIT_KWH`)."""
    if not math.isfinite(value):
        raise EditError(f"--set: import_kwh must be a finite number, got {value}")
    if value < 0:
        raise EditError("--set: import_kwh cannot be negative")
    if value > MAX_EDIT_KWH:
        raise EditError(
            f"--set: import_kwh {value:g} is beyond any meter's interval "
            f"(at most {MAX_EDIT_KWH:g} kWh)"
        )


def edit_readings(
    pipeline: Pipeline,
    meter_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    value: float | None,
    reestimate: bool,
    reason: str,
    operator: str,
) -> EditResult:
    """Set ``import_kwh`` to ``value`` (or re-estimate) for stored rows in [start, end)."""
    if (value is None) == (not reestimate):
        raise EditError("give exactly one of --set VALUE or --estimate")
    if value is not None:
        check_value(value)
    if not reason.strip():
        raise EditError("--reason is required: history keeps why every value changed")
    for option, when in (("--from", start), ("--to", end)):
        if not in_window(when, end=True):
            raise EditError(f"{option} {when.isoformat()}: must lie in {WINDOW_TEXT}")
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if end <= start:
        raise EditError("--to must be after --from")
    store, cfg = pipeline.store, pipeline.settings.vee
    ids = pl.Series([meter_id])
    rows = store.load_context(READING, ids, start, end).filter(pl.col("ts") < end)
    if not rows.height:
        raise EditError(f"no stored readings for {meter_id} in [{start}, {end})")
    source = f"edit:{operator}"
    edited = int(Quality.EDITED)
    if value is not None:
        new = rows.with_columns(
            import_kwh=pl.lit(value, dtype=pl.Float64),
            quality=pl.col("quality") | edited,
            status=pl.lit(Status.VALID.value),
            source=pl.lit(source),
        )
    else:
        # Treat the range as a gap and estimate it from the meter's own history around it.
        window = dt.timedelta(days=max(cfg.context_days, 7 * cfg.profile_weeks))
        history = store.load_context(READING, ids, start - window, end + dt.timedelta(days=1))
        history = history.join(rows.select("ts"), on="ts", how="anti")
        target = rows.with_columns(
            import_kwh=pl.lit(None, dtype=pl.Float64),
            quality=pl.col("quality") | int(Quality.MISSING),
            status=pl.lit(Status.SUSPECT.value),
            _ctx=pl.lit(False),
        )
        frame = pl.concat([target, history.with_columns(_ctx=pl.lit(True))], how="diagonal")
        out = estimate(frame, cfg).filter(~pl.col("_ctx"))
        if out.filter(pl.col("import_kwh").is_null()).height:
            raise EditError("not enough trustworthy history around the range to estimate it")
        was_missing = rows.select(
            "ts", _was_missing=(pl.col("quality") & int(Quality.MISSING)) != 0
        )
        new = (
            out.join(was_missing, on="ts")
            .with_columns(
                quality=pl.when(pl.col("_was_missing"))
                .then(pl.col("quality") | edited | int(Quality.ESTIMATED))
                .otherwise(
                    (pl.col("quality") & ~int(Quality.MISSING)) | edited | int(Quality.ESTIMATED)
                ),
                status=pl.lit(Status.ESTIMATED.value),
                source=pl.col("source").str.replace("vee:", f"{source}:", literal=True),
            )
            .drop("_ctx", "_was_missing")
        )
    result = pipeline.write_versions(new, reason=f"edit by {operator}: {reason.strip()}")
    return EditResult(rows=new.height, updated=result.updated)
