"""A simulated fleet of meters, grid nodes and weather stations, with labelled faults.

A demo and test generator, not a production source: it sits beside the stages and hands
its frames to the same pipeline every real source uses.

The public API: :class:`FleetSpec` says what to simulate, :class:`Fleet` draws it and
streams its time series in chunks, :func:`write_fleet` writes it as files and
:func:`stream_fleet` sends it in time order to a :class:`FrameSink` (the Kafka sender).
Behind them, one module each: ``spec`` (the spec and its time axis), ``noise``
(counter-based random numbers), ``shapes`` (daily load shapes), ``climate`` (weather),
``reference`` (the drawn network and meters), ``load`` (what meters draw), ``grid``,
``readings`` and ``faults`` (fault plan, injection and labels).
"""

from metrify.simulation.faults import CLOCK_OFFSETS_S, FAULT_KINDS, LABEL_SCHEMA
from metrify.simulation.files import write_fleet
from metrify.simulation.fleet import Fleet
from metrify.simulation.reference import LOSS_MAX, LOSS_MIN
from metrify.simulation.spec import TIMEZONE, FleetSpec
from metrify.simulation.stream import FleetChunks, FrameSink, StreamStats, stream_fleet

__all__ = [
    "CLOCK_OFFSETS_S",
    "FAULT_KINDS",
    "LABEL_SCHEMA",
    "LOSS_MAX",
    "LOSS_MIN",
    "TIMEZONE",
    "Fleet",
    "FleetChunks",
    "FleetSpec",
    "FrameSink",
    "StreamStats",
    "stream_fleet",
    "write_fleet",
]
