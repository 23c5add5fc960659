"""Frames through the real pipeline and store, as an ingest would send them."""

from __future__ import annotations

import polars as pl

from metrify.contracts.records import Contract
from metrify.pipeline.session import open_session
from metrify.settings import Settings


def submit_frames(settings: Settings, contract: Contract, frames: list[pl.DataFrame]) -> None:
    """Send raw frames of one contract through one pipeline, as an ingest would."""
    with open_session(settings) as session:
        pipeline = session.pipeline(contract)
        for frame in frames:
            pipeline.submit(frame, source="test")
        pipeline.close()
