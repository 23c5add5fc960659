"""Metrify: smart-metering data platform."""

__version__ = "0.1.0"
