"""The quality stage of the pipeline: VEE for meter readings, plain marking for the rest.

Readings run through the validation rules and then estimation, together with the stored
history the caller loaded (``context``), so that windows (spike baselines, flat-line
runs, gaps at the start of a batch, register continuity) reach back across batches.
Only the batch's own rows and the gap rows found come back; history is never rewritten.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.contracts.records import Quality, Status
from metrify.ops import tracing
from metrify.settings.vee import VeeConfig


def _initial_quality(records: pl.DataFrame) -> pl.Expr:
    if "_conflict" in records.columns:
        return (
            pl.when(pl.col("_conflict"))
            .then(pl.lit(int(Quality.DUPLICATE), dtype=pl.Int32))
            .otherwise(pl.lit(0, dtype=pl.Int32))
        )
    return pl.lit(0, dtype=pl.Int32)


def assess_plain(records: pl.DataFrame) -> pl.DataFrame:
    """Grid and weather records: flags for in-batch conflicts, status valid."""
    return records.with_columns(
        quality=_initial_quality(records), status=pl.lit(Status.VALID.value)
    ).drop("_conflict", strict=False)


def run_vee(
    records: pl.DataFrame,
    context: pl.DataFrame,
    meters: pl.DataFrame,
    cfg: VeeConfig,
    now: dt.datetime,
    *,
    lean: bool = False,
) -> pl.DataFrame:
    """Validate and estimate a batch of readings against its stored context.

    ``records``: contract fields + ``source`` (+ ``_conflict``); ``context``: stored rows
    of the same meters (contract fields + ``quality``, ``status``, ``source``); those with
    a key of ``records`` are left out (the batch's version is the one judged). With
    ``cfg.lean_context`` most meters are judged on the part of it that can matter (see
    :mod:`metrify.quality.context`); ``lean`` says the caller has cut it so already
    (:class:`~metrify.quality.history.HistoryCache` does, given the batch's reach).
    Returns the batch rows and new gap rows with ``quality`` and ``status`` set;
    estimated gap rows carry the method in ``source``.
    """
    from metrify.quality.context import BASELINE_ONLY, lean_context
    from metrify.quality.estimate import estimate
    from metrify.quality.rules import validate

    batch = records.with_columns(quality=_initial_quality(records), _ctx=pl.lit(False)).drop(
        "_conflict", strict=False
    )
    if not cfg.enabled:
        return batch.with_columns(status=pl.lit(Status.VALID.value)).drop("_ctx")
    frame = batch
    baseline = None
    if context.height:
        if cfg.lean_context and not lean:
            context = lean_context(records, context, meters, cfg)
        if BASELINE_ONLY in context.columns:  # rows older than any of the batch's
            baseline = context.filter(pl.col(BASELINE_ONLY)).drop(BASELINE_ONLY)
            context = context.filter(~pl.col(BASELINE_ONLY)).drop(BASELINE_ONLY)
        context = context.join(records.select("meter_id", "ts"), on=["meter_id", "ts"], how="anti")
    if context.height:
        history = context.select([*batch.columns[:-1], "status"]).with_columns(_ctx=pl.lit(True))
        frame = pl.concat(
            [batch.with_columns(status=pl.lit(None, dtype=pl.String)), history], how="diagonal"
        )
    with tracing.span("validate", {"metrify.rows": records.height}):
        validated = validate(frame, meters, cfg, now, baseline)
    with tracing.span("estimate"):
        estimated = estimate(validated, cfg)
    return estimated.filter(~pl.col("_ctx")).drop("_ctx")
