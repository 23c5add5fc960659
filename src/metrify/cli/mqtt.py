"""``metrify mqtt``: readings from an MQTT broker (head-ends, data concentrators).

A production broker speaks TLS and wants a login: ``mqtts://HOST[:8883]`` with
``--tls-ca`` (the CA its certificate chains to; the system's when not given) and, where
the broker asks for one, ``--tls-cert``/``--tls-key``; ``--username`` with the password
from ``METRIFY_MQTT__PASSWORD`` or ``--password-file``, never the command line (every
user of the machine can read a command line). The same values may be settings
(``METRIFY_MQTT__USERNAME``, ``__TLS_CA``, ...; see :mod:`metrify.settings.mqtt`). A
certificate that is not trusted or a refused login exits 2 with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from metrify.cli.apps import app
from metrify.cli.common import UserError, console, friendly, load_settings

if TYPE_CHECKING:
    from metrify.settings import Settings
    from metrify.sources.mqtt import Login, Tls

__all__ = ["mqtt_cmd"]


@app.command("mqtt")
@friendly
def mqtt_cmd(
    broker: Annotated[
        str, typer.Option("--broker", help="mqtt://HOST[:PORT], or mqtts://HOST[:PORT] for TLS")
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
    username: Annotated[
        str | None, typer.Option("--username", help="the broker login (password: see below)")
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            dir_okay=False,
            help="a file whose first line is the password (or METRIFY_MQTT__PASSWORD)",
        ),
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option("--tls-ca", dir_okay=False, help="CA certificates (PEM), mqtts:// only"),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", dir_okay=False, help="client certificate (PEM), mqtts://"),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", dir_okay=False, help="the client certificate's key (PEM)"),
    ] = None,
) -> None:
    """Subscribe (QoS 1, persistent session) and load readings until SIGTERM / Ctrl-C.

    Messages are acknowledged only once their readings are durable. Payloads are the
    contract's JSON (one reading or an array) or OBIS-coded values (1-0:1.8.0 ...).
    """
    from metrify.ops.logging import configure
    from metrify.pipeline.mqtt import MqttOptions, run_mqtt
    from metrify.sources.mqtt import BrokerRefused, broker_address, broker_tls

    try:
        broker_address(broker)
        secure = broker_tls(broker)
    except ValueError as exc:
        raise UserError(f"--broker: {exc}") from None
    given = [
        n for n, v in (("--tls-ca", tls_ca), ("--tls-cert", tls_cert), ("--tls-key", tls_key)) if v
    ]
    if given and not secure:
        raise UserError(f"{given[0]} needs a TLS broker URL: mqtts://HOST[:PORT]")
    settings = load_settings()
    configure(settings.log_level)
    tls = _tls(settings, tls_ca, tls_cert, tls_key) if secure else None
    options = MqttOptions(
        broker=broker,
        topics=tuple(topics) or ("meters/+/readings",),
        client_id=client_id,
        batch_max_messages=batch_messages,
        batch_max_ms=batch_ms,
        tls=tls,
        login=_login(settings, username, password_file),
    )
    try:
        summary = run_mqtt(settings, options)
    except BrokerRefused as exc:
        raise UserError(f"mqtt: {exc}") from None
    console.print(
        f"mqtt: {summary.read:,} readings read, {summary.inserted:,} inserted, "
        f"{summary.rejected:,} rejected",
        highlight=False,
    )


def _tls(settings: Settings, ca: Path | None, cert: Path | None, key: Path | None) -> Tls:
    """The TLS files: the options', else the settings'."""
    from metrify.sources.mqtt import Tls

    conf = settings.mqtt
    return Tls(ca or conf.tls_ca, cert or conf.tls_cert, key or conf.tls_key)


def _login(settings: Settings, username: str | None, password_file: Path | None) -> Login | None:
    """The broker login: the user name from ``--username`` or the settings, the password
    from ``--password-file``, the settings' file or ``METRIFY_MQTT__PASSWORD``."""
    from metrify.sources.mqtt import Login

    conf = settings.mqtt
    user = username or conf.username
    source = password_file or conf.password_file
    password: str | None = None
    if source is not None:
        try:
            lines = source.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--password-file {source}: cannot read it ({exc})") from None
        password = lines[0] if lines else ""
    elif conf.password is not None:
        password = conf.password.get_secret_value()
    if password is not None and not user:
        raise UserError("a broker password needs --username (or METRIFY_MQTT__USERNAME)")
    return None if not user else Login(user, password)
