"""Frames through the real pipeline and store, as an ingest would send them."""

from __future__ import annotations

import polars as pl

from metrify.contracts.records import Contract
from metrify.pipeline.session import LOAD_LAKE_ROWS, LOAD_STATE_SECONDS, open_session
from metrify.pipeline.stages import Pipeline
from metrify.settings import Settings


def submit_frames(settings: Settings, contract: Contract, frames: list[pl.DataFrame]) -> None:
    """Send raw frames of one contract through one pipeline, as an ingest would."""
    with open_session(settings) as session:
        pipeline = session.pipeline(contract)
        for frame in frames:
            pipeline.submit(frame, source="test")
        pipeline.close()


def load_frames(
    settings: Settings,
    contract: Contract,
    frames: list[pl.DataFrame],
    lake_rows: int = LOAD_LAKE_ROWS,
) -> tuple[Pipeline, dict[str, object]]:
    """Send frames through one pipeline set up as a file load sets it up (a writer
    apart, the state saved at the end, the lake written every ``lake_rows``); the
    closed pipeline and its summary."""
    with open_session(settings) as session:
        pipeline = session.pipeline(
            contract,
            overlap=True,
            state_every_s=LOAD_STATE_SECONDS,
            scores_apart=True,
            lake_rows=lake_rows,
        )
        for frame in frames:
            pipeline.submit(frame, source="export")
        summary = pipeline.close().as_dict()
    return pipeline, summary
