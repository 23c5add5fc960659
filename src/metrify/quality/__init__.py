"""VEE: validation, estimation and editing of records (the pipeline's quality stage)."""

from metrify.quality.config import VeeConfig
from metrify.quality.dedupe import Deduplicated, dedupe_batch

__all__ = ["Deduplicated", "VeeConfig", "dedupe_batch"]
