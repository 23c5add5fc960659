"""What the tests share, so that no test module imports another.

``paths`` (where the repository is), ``realdata`` (the public data in ../shared/data and
the London households' column map), ``database`` (the tables a test starts without),
``series`` (constructed meter series), ``pipeline`` (frames through one pipeline),
``api`` (a running app and its users), ``tokens`` (hand-made JWTs), ``kafka``
(librdkafka's mock cluster and fresh topics) and ``waiting`` (polling for a condition).
"""
