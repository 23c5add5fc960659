"""Tests against the real PostgreSQL of the test session, librdkafka's mock cluster, the
running API, or whole runs end to end: one folder per area.
"""
