"""VEE: validation, estimation and editing of records (the pipeline's quality stage)."""

from metrify.quality.validate import assess, dedupe_batch

__all__ = ["assess", "dedupe_batch"]
