"""How ``metrify mqtt`` reaches a broker that wants TLS and a login.

Head-ends' brokers outside a lab speak TLS (``mqtts://``, port 8883) and ask for a user
name and password, often a client certificate too. The password is a secret: it comes
from ``METRIFY_MQTT__PASSWORD`` or a file (``METRIFY_MQTT__PASSWORD_FILE`` or
``--password-file``), never from the command line, where every user of the machine
could read it in the process list. ``metrify config`` shows it masked.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class MqttConfig(BaseModel):
    """Broker login and TLS files; the command's options win over these."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(default=None, description="the broker login's user name")
    password: SecretStr | None = Field(default=None, description="its password (a secret)")
    password_file: Path | None = Field(
        default=None, description="a file whose first line is the password"
    )
    tls_ca: Path | None = Field(
        default=None, description="CA certificates (PEM) the broker's certificate must chain to"
    )
    tls_cert: Path | None = Field(default=None, description="the client certificate (PEM)")
    tls_key: Path | None = Field(default=None, description="the client certificate's key (PEM)")
