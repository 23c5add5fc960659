"""``metrify serve --ssl-certfile/--ssl-keyfile``: a wrong pair is one line and exit 2,
checked before the server (or the database) is touched; ``--shutdown-timeout`` reaches
uvicorn. The real HTTPS server runs in tests/integration/reliability."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from metrify.cli import app

runner = CliRunner()


def _pem_pair(folder: Path, stem: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / f"{stem}.crt", folder / f"{stem}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr("uvicorn.run", refuse)


def _flat(text: str) -> str:
    """Without whitespace: the error console wraps long lines (paths) at its width."""
    return "".join(text.split())


def _serve(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["serve", "--port", "1", *args])
    return result.exit_code, _flat(result.output)


def test_a_certificate_needs_its_key_and_the_other_way_round(tmp_path: Path) -> None:
    certfile, keyfile = _pem_pair(tmp_path, "a")
    for args in (["--ssl-certfile", str(certfile)], ["--ssl-keyfile", str(keyfile)]):
        code, output = _serve(*args)
        assert code == 2
        assert _flat("--ssl-certfile and --ssl-keyfile go together") in output
        assert "Traceback" not in output


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    certfile, _ = _pem_pair(tmp_path, "a")
    missing = tmp_path / "nowhere.key"
    code, output = _serve("--ssl-certfile", str(certfile), "--ssl-keyfile", str(missing))
    assert code == 2
    assert _flat(f"--ssl-keyfile {missing}: no such file") in output


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    certfile, _ = _pem_pair(tmp_path, "a")
    _, other_key = _pem_pair(tmp_path, "b")
    code, output = _serve("--ssl-certfile", str(certfile), "--ssl-keyfile", str(other_key))
    assert code == 2
    assert _flat("cannot load the pair") in output and "KEY_VALUES_MISMATCH" in output
    assert "Traceback" not in output


def test_a_negative_shutdown_timeout_is_refused() -> None:
    code, output = _serve("--shutdown-timeout", "-1")
    assert code == 2
    assert _flat("--shutdown-timeout must be >= 0") in output
