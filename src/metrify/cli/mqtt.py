"""``metrify mqtt``: readings from an MQTT broker (head-ends, data concentrators)."""

from __future__ import annotations

from typing import Annotated

import typer

from metrify.cli.apps import app
from metrify.cli.common import UserError, console, friendly, load_settings

__all__ = ["mqtt_cmd"]


@app.command("mqtt")
@friendly
def mqtt_cmd(
    broker: Annotated[
        str, typer.Option("--broker", help="mqtt://HOST[:PORT]")
    ] = "mqtt://127.0.0.1:1883",
    topics: Annotated[
        list[str],
        typer.Option("--topic", help="topic filter (repeat); a + level names the meter"),
    ] = [],  # noqa: B006
    client_id: Annotated[
        str,
        typer.Option("--client-id", help="the persistent session's name at the broker"),
    ] = "metrify-mqtt",
    batch_messages: Annotated[
        int, typer.Option("--batch-messages", min=1, help="messages per batch at most")
    ] = 20,
    batch_ms: Annotated[
        int, typer.Option("--batch-ms", min=1, help="how long a batch waits to fill")
    ] = 500,
) -> None:
    """Subscribe (QoS 1, persistent session) and load readings until SIGTERM / Ctrl-C.

    Messages are acknowledged only once their readings are durable. Payloads are the
    contract's JSON (one reading or an array) or OBIS-coded values (1-0:1.8.0 ...).
    """
    from metrify.ops.logging import configure
    from metrify.pipeline.mqtt import MqttOptions, run_mqtt
    from metrify.sources.mqtt import broker_address

    try:
        broker_address(broker)
    except ValueError as exc:
        raise UserError(f"--broker: {exc}") from None
    settings = load_settings()
    configure(settings.log_level)
    options = MqttOptions(
        broker=broker,
        topics=tuple(topics) or ("meters/+/readings",),
        client_id=client_id,
        batch_max_messages=batch_messages,
        batch_max_ms=batch_ms,
    )
    summary = run_mqtt(settings, options)
    console.print(
        f"mqtt: {summary.read:,} readings read, {summary.inserted:,} inserted, "
        f"{summary.rejected:,} rejected",
        highlight=False,
    )
