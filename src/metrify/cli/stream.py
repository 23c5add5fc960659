"""The streaming commands: ``metrify worker`` and ``metrify produce``.

The Kafka client loads only when one of them runs. Without
``METRIFY_KAFKA_BOOTSTRAP_SERVERS`` they stop with one line saying how to configure
Kafka: the embedded default needs no broker, since ``metrify ingest`` and ``metrify
simulate`` call the pipeline in-process.
"""

from __future__ import annotations

from typing import Annotated

import typer

from metrify.cli import options as opts
from metrify.cli.apps import app
from metrify.cli.common import UserError, console, friendly, kafka_settings, load_settings
from metrify.settings.kafka import KINDS

__all__ = ["produce_cmd", "worker_cmd"]


@app.command("worker")
@friendly
def worker_cmd(
    kinds: Annotated[
        list[str],
        typer.Option(
            "--kind", help="readings, grid, weather or events (repeat; default: all four)"
        ),
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
    settings = load_settings()
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
    kind: Annotated[str, typer.Argument(help="readings, grid, weather or events")],
    paths: opts.Paths,
    maps: opts.Maps = [],  # noqa: B006
    sets: opts.Sets = [],  # noqa: B006
    scales: opts.Scales = [],  # noqa: B006
    interval: opts.Interval = None,
    tz: opts.Tz = None,
    ts_end: opts.TsEnd = False,
    ts_format: opts.TsFormat = None,
    units: opts.Units = [],  # noqa: B006
    no_header: opts.NoHeader = False,
    encoding: opts.Encoding = None,
    skip_lines: opts.SkipLines = 0,
    sheet: opts.Sheet = None,
    wide: opts.Wide = None,
    channels: opts.Channels = None,
    register_digits: opts.RegisterDigits = None,
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
        ts_format=ts_format,
        units=units,
        header=not no_header,
        encoding=encoding,
        skip_lines=skip_lines,
        sheet=sheet,
        wide=wide,
        channels=channels,
        register_digits=register_digits,
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
