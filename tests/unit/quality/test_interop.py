"""Quality flags mapped onto IEEE 2030.5 qualityFlags and MSCONS reading status."""

from __future__ import annotations

import polars as pl
import pytest

from metrify.contracts.records import Quality
from metrify.quality.interop import ieee2030_5_expr, ieee2030_5_flags, mscons_expr, mscons_status

M, E, ED, SP = int(Quality.MISSING), int(Quality.ESTIMATED), int(Quality.EDITED), int(Quality.SPIKE)

CASES = [
    # quality, status, source, IEEE 2030.5 bits, MSCONS
    (0, "valid", "file:a.csv", 0x01, "220"),
    (SP, "suspect", "file:a.csv", 0x10, "201"),
    (int(Quality.OUT_OF_RANGE), "rejected", "file:a.csv", 0x10, "20"),
    (M, "suspect", "vee:gap", 0x10, "20"),
    (M | E, "estimated", "vee:estimate:linear", 0x08, "67"),
    (M | E, "estimated", "vee:estimate:profile", 0x04, "67"),
    (ED, "valid", "edit:alice", 0x02, "67"),
]


@pytest.mark.parametrize(("quality", "status", "source", "ieee", "mscons"), CASES)
def test_scalar_mappings(quality: int, status: str, source: str, ieee: int, mscons: str) -> None:
    assert ieee2030_5_flags(quality, status, source) == ieee
    assert mscons_status(quality, status) == mscons


def test_vectorised_mappings_agree_with_scalar() -> None:
    frame = pl.DataFrame(
        {
            "quality": [c[0] for c in CASES],
            "status": [c[1] for c in CASES],
            "source": [c[2] for c in CASES],
        },
        schema_overrides={"quality": pl.Int32},
    )
    out = frame.select(ieee=ieee2030_5_expr(), mscons=mscons_expr())
    assert out["ieee"].to_list() == [c[3] for c in CASES]
    assert out["mscons"].to_list() == [c[4] for c in CASES]
