"""The ground every layer stands on: record contracts, quality bits, local time, summaries.

Nothing here imports another part of Metrify, so any layer may import it.
"""
