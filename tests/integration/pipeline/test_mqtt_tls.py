"""``metrify mqtt`` against a real Mosquitto that wants TLS and a login: a private broker
started by the test (the machine's on 1883 has neither), its certificate signed by a CA
made here with ``cryptography``, its password file written by ``mosquitto_passwd``.

The right CA and password deliver readings into the store; a wrong password and a
certificate signed by another CA are refused with one line and exit 2, before anything
is loaded; a password on the command line or in the URL is not accepted.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import getpass
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from metrify.cli import app
from metrify.contracts.summary import Summary
from metrify.pipeline import mqtt as worker
from metrify.settings import Settings, get_settings
from metrify.sources.mqtt import BrokerRefused, Login, Tls
from support.paths import REPO
from support.waiting import until as wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PASSWD = shutil.which("mosquitto_passwd")
USER, PASSWORD = "headend", "s3cret-" + uuid.uuid4().hex[:6]
T0 = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
runner = CliRunner()


def _need_mosquitto() -> None:
    if not Path(MOSQUITTO).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"mosquitto not installed ({MOSQUITTO}); CI must have it")
        pytest.skip(f"mosquitto not installed ({MOSQUITTO})")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert


def _server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, name: str = "127.0.0.1"
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate signed by the CA, for 127.0.0.1 (a broker's; a client's too)."""
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _password_line(folder: Path) -> str:
    """The password file's line, by ``mosquitto_passwd -b`` where it is installed, else
    in its own format (PBKDF2-SHA512, 101 rounds, ``$7$``) as Mosquitto 2 reads it."""
    path = folder / "passwd"
    if PASSWD is not None:
        path.write_text("")
        subprocess.run([PASSWD, "-b", str(path), USER, PASSWORD], check=True, timeout=30)
        return path.read_text()
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, 101, 64)
    b64 = base64.b64encode
    return f"{USER}:$7$101${b64(salt).decode()}${b64(digest).decode()}\n"


@dataclass
class TlsBroker:
    """A private Mosquitto with a TLS listener and a password file."""

    port: int
    ca: Path
    rogue_ca: Path
    #: a client certificate and key the CA signed
    client_cert: Path
    client_key: Path
    proc: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_broker(folder: Path, *, require_certificate: bool = False) -> Iterator[TlsBroker]:
    _need_mosquitto()
    ca_key, ca = _ca("metrify test CA")
    key, cert = _server_cert(ca_key, ca)
    client_key, client_cert = _server_cert(ca_key, ca, "metrify-worker")
    _, rogue = _ca("some other CA")
    tmp_path = folder
    files = {
        "ca.pem": ca.public_bytes(serialization.Encoding.PEM),
        "rogue.pem": rogue.public_bytes(serialization.Encoding.PEM),
        "server.pem": cert.public_bytes(serialization.Encoding.PEM),
        "server.key": _pem(key),
        "client.pem": client_cert.public_bytes(serialization.Encoding.PEM),
        "client.key": _pem(client_key),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "passwd").write_text(_password_line(tmp_path))
    (tmp_path / "server.key").chmod(0o600)
    (tmp_path / "passwd").chmod(0o600)
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {tmp_path / 'ca.pem'}\ncertfile {tmp_path / 'server.pem'}\n"
        f"keyfile {tmp_path / 'server.key'}\n"
        f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\n"
        f"persistence false\nuser {getpass.getuser()}\n"
        f"require_certificate {'true' if require_certificate else 'false'}\n"
    )
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=out)
    try:

        def listening() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=10)
        yield TlsBroker(
            port,
            tmp_path / "ca.pem",
            tmp_path / "rogue.pem",
            tmp_path / "client.pem",
            tmp_path / "client.key",
            proc,
        )
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    """TLS with a password (no client certificate asked)."""
    yield from _start_broker(tmp_path)


def _publish(broker: TlsBroker, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.tls_set_context(ssl.create_default_context(cafile=str(broker.ca)))
    client.username_pw_set(USER, PASSWORD)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_tls_and_login_deliver_readings(
    settings: Settings, conn: psycopg.Connection, tls_broker: TlsBroker
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    options = worker.MqttOptions(
        broker=f"mqtts://127.0.0.1:{tls_broker.port}",
        topics=(f"{prefix}/+/readings",),
        client_id=f"{prefix}-w",
        batch_max_ms=200,
        tls=Tls(ca=tls_broker.ca),
        login=Login(USER, PASSWORD),
    )
    stop, ready, seen, out = threading.Event(), threading.Event(), [], {}

    def run() -> None:
        out["summary"] = worker.run_mqtt(settings, options, stop, ready=ready, on_batch=seen.append)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(20), "the worker did not subscribe over TLS"
        rows = [
            {
                "meter_id": f"{prefix}A",
                "ts": (T0 + dt.timedelta(minutes=15 * i)).isoformat(),
                "interval_s": 900,
                "import_kwh": 0.25 * (i + 1),
            }
            for i in range(3)
        ]
        _publish(tls_broker, f"{prefix}/{prefix}A/readings", orjson.dumps(rows))
        wait_until(lambda: bool(seen) and seen[-1].read == 3)
    finally:
        stop.set()
        thread.join(30)
    summary: Summary = out["summary"]
    assert summary.inserted == 3
    stored = conn.execute(
        "SELECT import_kwh, source FROM readings WHERE meter_id = %s ORDER BY ts", (f"{prefix}A",)
    ).fetchall()
    assert stored == [(0.25 * (i + 1), f"mqtt:{prefix}/{prefix}A/readings") for i in range(3)]


def _cli(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``metrify mqtt`` as a process (its signal handlers stay out of pytest's)."""
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "400",  # one line, not wrapped at 80 columns
        **(env or {}),
    }
    code = "import sys; from metrify.cli import app; sys.argv[0] = 'metrify'; app()"
    done = subprocess.run(
        [sys.executable, "-c", code, "mqtt", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )
    return done.returncode, done.stdout + done.stderr


def _in_process(args: list[str], env: dict[str, str] | None = None) -> Any:
    """``metrify mqtt`` through Typer's runner; the SIGTERM/SIGINT handlers run_mqtt
    sets in the main thread are put back, and settings read afresh."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    get_settings.cache_clear()
    try:
        return runner.invoke(app, ["mqtt", *args], env=env)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        get_settings.cache_clear()


def test_wrong_password_and_untrusted_certificate_are_refused(
    settings: Settings, conn: psycopg.Connection, tls_broker: TlsBroker, tmp_path: Path
) -> None:
    broker = f"mqtts://127.0.0.1:{tls_broker.port}"
    common = ["--broker", broker, "--topic", "x/+/readings", "--username", USER]
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    code, text = _cli(
        settings, *common, "--tls-ca", str(tls_broker.ca), "--password-file", str(wrong)
    )
    assert code == 2, text
    assert "refused the connection" in text and "password" in text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    # a certificate signed by a CA not given: not trusted, whatever the password
    right = tmp_path / "right"
    right.write_text(PASSWORD + "\n")
    # in this process (a second process start costs ~20 s on a busy machine)
    result = _in_process(
        [*common, "--tls-ca", str(tls_broker.rogue_ca), "--password-file", str(right)]
    )
    said = " ".join(result.output.split())  # Rich wraps at the runner's 80 columns
    assert result.exit_code == 2, said
    assert "certificate that is not trusted" in said and "--tls-ca" in said
    assert "Traceback" not in said
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)


def test_refusals_in_process_and_no_password_on_the_command_line(
    settings: Settings, tls_broker: TlsBroker
) -> None:
    """The source itself raises BrokerRefused (no silent retry loop); the password from
    the setting (how a service is configured) is refused alike; a password has no
    command-line option and no place in the URL."""
    options = worker.MqttOptions(
        broker=f"mqtts://127.0.0.1:{tls_broker.port}",
        topics=("x/+/readings",),
        client_id=f"r-{uuid.uuid4().hex[:6]}",
        tls=Tls(ca=tls_broker.ca),
        login=None,  # anonymous, which this broker does not allow
    )
    with pytest.raises(BrokerRefused, match="refused the connection"):
        worker.run_mqtt(settings, options, threading.Event())
    broker = f"mqtts://127.0.0.1:{tls_broker.port}"
    result = _in_process(
        ["--broker", broker, "--topic", "x/+/readings"],
        env={
            "METRIFY_MQTT__PASSWORD": "nope",
            "METRIFY_MQTT__USERNAME": USER,
            "METRIFY_MQTT__TLS_CA": str(tls_broker.ca),
        },
    )
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "refused the connection" in said and "Traceback" not in said
    result = runner.invoke(app, ["mqtt", "--broker", broker, "--password", "x"])
    assert result.exit_code == 2 and "--password" in result.output
    result = runner.invoke(app, ["mqtt", "--broker", f"mqtts://u:p@127.0.0.1:{tls_broker.port}"])
    assert result.exit_code == 2 and "no login in the URL" in " ".join(result.output.split())
    assert "u:p@" not in result.output


def test_client_certificate(settings: Settings, tmp_path: Path) -> None:
    """A broker that requires a client certificate: without one the worker stops with a
    line that names --tls-cert; with the CA-signed certificate and key it subscribes."""
    brokers = _start_broker(tmp_path, require_certificate=True)
    broker = next(brokers)
    try:
        base = worker.MqttOptions(
            broker=f"mqtts://127.0.0.1:{broker.port}",
            topics=("x/+/readings",),
            client_id=f"c-{uuid.uuid4().hex[:6]}",
            login=Login(USER, PASSWORD),
        )
        bare = dataclasses.replace(base, tls=Tls(ca=broker.ca))
        with pytest.raises(BrokerRefused, match="--tls-cert"):
            worker.run_mqtt(settings, bare, threading.Event())
        signed = dataclasses.replace(
            base, tls=Tls(ca=broker.ca, cert=broker.client_cert, key=broker.client_key)
        )
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=worker.run_mqtt, args=(settings, signed, stop), kwargs={"ready": ready}
        )
        thread.start()
        try:
            assert ready.wait(20), "not subscribed with the client certificate"
        finally:
            stop.set()
            thread.join(30)
    finally:
        brokers.close()
