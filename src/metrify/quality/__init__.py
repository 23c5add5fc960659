"""VEE: validation, estimation and editing of records (the pipeline's quality stage)."""

from metrify.quality.dedupe import Deduplicated, dedupe_batch
from metrify.settings.vee import VeeConfig

__all__ = ["Deduplicated", "VeeConfig", "dedupe_batch"]
