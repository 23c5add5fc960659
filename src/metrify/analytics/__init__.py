"""Insight from the stored data: consumption patterns, weather-normalised baselines,
demand forecasts and grid loading.

Each subpackage is pure computation on Polars frames (frames in, frames out): the jobs
and doors above read the series from the stores, hand them here and store or show what
comes back. Keeping storage out lets the same code run in ``metrify`` commands, the API,
the batch jobs and the benchmarks on files, and keeps every model testable on a frame.
"""
