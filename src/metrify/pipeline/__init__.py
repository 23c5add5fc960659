"""The jobs that move a batch through the stages: stage order, file session, stream worker.

``stages`` owns the order (decode -> validate -> estimate -> detect -> store + lake),
``detect`` wires the anomaly detectors to their state and records what they find,
``session`` opens the stores a run writes to, ``worker`` drives the same stages from
Kafka and ``edit`` applies an operator's edit through them.
"""

from metrify.pipeline.session import Session, ingest_files, ingest_frames, open_session
from metrify.pipeline.stages import Pipeline

__all__ = ["Pipeline", "Session", "ingest_files", "ingest_frames", "open_session"]
