"""The ground every layer stands on: record contracts, quality bits, local time, summaries.

Nothing here imports another part of Metrify, so any layer may import it.
"""

from metrify.contracts.records import (
    CONTRACTS,
    GRID,
    METER,
    NODE,
    READING,
    STATION,
    TS,
    WEATHER,
    Contract,
    MeterStatus,
    Quality,
    Status,
    contract,
)
from metrify.contracts.summary import Summary

__all__ = [
    "CONTRACTS",
    "GRID",
    "METER",
    "NODE",
    "READING",
    "STATION",
    "TS",
    "WEATHER",
    "Contract",
    "MeterStatus",
    "Quality",
    "Status",
    "Summary",
    "contract",
]
