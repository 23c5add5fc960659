"""Tests that need neither PostgreSQL nor Kafka: one folder per package of ``metrify``.

Each folder is a package so that test modules of one name can live in several folders.
"""
