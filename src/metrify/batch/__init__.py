"""Scheduled jobs: work run once a day (or on demand) over what is already stored.

Each job reads its input from :mod:`metrify.stores`, hands it to a stage and stores what
the stage returns, as the pipeline does for arriving data; a job that records anomalies
does so through the pipeline's own step (:func:`metrify.pipeline.detect.record_incidents`),
so an incident alerts once whichever found it.

The daily jobs (:mod:`metrify.batch.registry`: aggregates, lake compaction, dbt build,
the anomaly model, the quality report) run per data interval, a UTC day, through one
runner (:mod:`metrify.batch.runner`), from ``metrify batch run`` or an Airflow task.
This package's ``__init__`` imports nothing, so the Airflow environment can read the
registry without Metrify's dependencies.
"""
