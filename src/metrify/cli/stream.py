"""The streaming commands: ``metrify worker``, ``metrify produce`` and ``simulate --to kafka``.

Kept apart from :mod:`metrify.cli.main` so the Kafka client is loaded only by the commands
that use it; :func:`register` adds them to the ``metrify`` app. Without
``METRIFY_KAFKA_BOOTSTRAP_SERVERS`` they stop with one line saying how to configure
Kafka: the embedded default needs no broker, since ``metrify ingest`` and ``metrify
simulate`` call the pipeline in-process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from metrify.cli import options as opts
from metrify.settings import Settings
from metrify.settings.kafka import KINDS, KafkaSettings

if TYPE_CHECKING:
    from metrify.sources.kafka import StreamStats

__all__ = ["kafka_settings", "register", "simulate_to_kafka"]


def kafka_settings() -> KafkaSettings:
    """``METRIFY_KAFKA_*`` settings of a configured cluster, or a one-line ValueError."""
    from metrify.pipeline.worker import NOT_CONFIGURED, KafkaNotConfigured

    try:
        kafka = KafkaSettings()
    except Exception as exc:  # pydantic ValidationError: a bad METRIFY_KAFKA_* value
        raise ValueError(f"invalid Kafka configuration: {exc}") from None
    if not kafka.configured:
        raise KafkaNotConfigured(NOT_CONFIGURED)
    return kafka


def simulate_to_kafka(fleet: Any, settings: Settings, rate: float, realtime: bool) -> StreamStats:
    """Stream a simulated fleet to Kafka at ``rate`` readings/s for the workers to load.

    Reference data (grid nodes, weather stations, meters) has no topic: it goes into the
    store through the pipeline, as ``metrify simulate`` does, so VEE knows each meter's
    limits. Weather goes to its topic at once; readings and grid are streamed in time
    order, on a real-time or accelerated clock (see :func:`~metrify.sources.kafka.stream_fleet`).
    """
    from metrify.contracts.records import METER, NODE, STATION
    from metrify.pipeline.session import ingest_frames, open_session
    from metrify.sources.kafka import Sender, stream_fleet

    kafka = kafka_settings()
    if rate <= 0:
        raise ValueError(f"--rate {rate}: expected readings per second > 0")
    source = f"simulator:seed={fleet.spec.seed}"
    with open_session(settings) as session:
        for contract, frame in (
            (NODE, fleet.nodes),
            (STATION, fleet.stations),
            (METER, fleet.meters),
        ):
            ingest_frames(session, contract, [frame], source=source)
    sender = Sender(kafka)
    weather = sender.send_frame("weather", fleet.weather())
    stats = stream_fleet(fleet, sender, rate, realtime)
    stats.weather = weather
    return stats


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``produce`` to the ``metrify`` app."""
    from metrify.cli.main import UserError, _settings, console, friendly

    @app.command("worker")
    @friendly
    def worker_cmd(
        kinds: Annotated[
            list[str],
            typer.Option("--kind", help="readings, grid or weather (repeat; default: all three)"),
        ] = [],  # noqa: B006
        metrics_port: Annotated[
            int | None,
            typer.Option("--metrics-port", help="serve Prometheus metrics on this port"),
        ] = None,
    ) -> None:
        """Consume the Kafka topics into the store until SIGTERM / Ctrl-C (then exit 0)."""
        from metrify.ops import metrics
        from metrify.ops.logging import configure
        from metrify.pipeline.worker import run_worker

        for kind in kinds:
            if kind not in KINDS:
                raise UserError(f"--kind {kind}: expected one of {', '.join(KINDS)}")
        kafka = kafka_settings()
        settings = _settings()
        configure(settings.log_level)
        if metrics_port is not None:
            try:
                metrics.serve(metrics_port)
            except OSError as exc:
                raise UserError(f"--metrics-port {metrics_port}: {exc.strerror}") from None
        code = run_worker(settings, kafka, tuple(kinds) or KINDS)
        if code:
            raise typer.Exit(code)

    @app.command("produce")
    @friendly
    def produce_cmd(
        kind: Annotated[str, typer.Argument(help="readings, grid or weather")],
        paths: opts.Paths,
        maps: opts.Maps = [],  # noqa: B006
        sets: opts.Sets = [],  # noqa: B006
        scales: opts.Scales = [],  # noqa: B006
        interval: opts.Interval = None,
        tz: opts.Tz = None,
        ts_end: opts.TsEnd = False,
    ) -> None:
        """Send files to the kind's Kafka topic, read and mapped exactly as by `ingest`."""
        from metrify.sources.kafka import CONTRACT_OF, ProduceError, Sender, produce_files
        from metrify.sources.mapping import build_mapping

        if kind not in KINDS:
            raise UserError(f"{kind}: expected one of {', '.join(KINDS)}")
        kafka = kafka_settings()
        mapping = build_mapping(
            CONTRACT_OF[kind],
            maps=maps,
            sets=sets,
            scales=scales,
            interval_s=interval,
            tz=tz,
            ts_end=ts_end,
        )
        try:
            summary = produce_files(Sender(kafka), kind, paths, mapping)
        except ProduceError as exc:
            raise UserError(f"Kafka did not take every message: {exc}") from None
        console.print(
            f"sent {summary.sent:,} {kind} records to {kafka.topic(kind)}; "
            f"{summary.rejected:,} rejected at decode"
            + (f" (to {kafka.topic_deadletter} with their reasons)" if summary.rejected else ""),
            highlight=False,
        )
        for error in summary.errors:
            typer.echo(f"error: {error}", err=True)
        if summary.errors:
            raise typer.Exit(1)
