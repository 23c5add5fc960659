"""The auth primitives on their own: key format, password rule, token claims and errors.

The API tests reach these through HTTP; here each rule is pinned where it lives, so a
changed constant, claim name or message fails a test (the mutation run found them loose).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import stat
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from metrify.api.auth import keys, passwords
from metrify.api.auth.principal import Principal
from metrify.api.auth.tokens import (
    SECRET_FILE,
    TokenError,
    TokenService,
    new_refresh_token,
    refresh_digest,
    resolve_secret,
)
from metrify.api.rbac import Permission, Role
from metrify.settings.api import ApiConfig

SECRET = "s" * 32


#: a refresh-token family for the tokens built here
FAMILY = uuid.UUID(int=7)


def hs_config(**over: object) -> ApiConfig:
    return ApiConfig(jwt_secret=SecretStr(SECRET), **over)  # type: ignore[arg-type]


# --- API keys -------------------------------------------------------------------------


def test_a_new_key_has_the_documented_shape_and_its_digest() -> None:
    key, prefix, digest = keys.new_key()
    head, found_prefix, secret = key.split("_", 2)
    assert head == "mk"
    assert found_prefix == prefix
    assert len(prefix) == 12 and all(c in "0123456789abcdef" for c in prefix)
    assert len(secret) >= 43  # 32 random bytes, url-safe base64 without padding
    assert digest == hashlib.sha256(key.encode()).digest()
    assert keys.parse(key) == prefix
    assert keys.matches(key, digest)
    assert not keys.matches(key + "x", digest)


@pytest.mark.parametrize(
    "key",
    [
        "mk_0123456789ab",  # two parts only
        "mx_0123456789ab_" + "a" * 20,  # wrong head
        "mk_0123456789a_" + "a" * 20,  # prefix one short
        "mk_0123456789abc_" + "a" * 20,  # prefix one long
        "mk_0123456789aG_" + "a" * 20,  # prefix not lower-case hex
        "mk_0123456789aX_" + "a" * 20,
        "mk_0123456789AB_" + "a" * 20,
        "mk_0123456789ab_" + "a" * 19,  # secret one short
    ],
)
def test_malformed_keys_have_no_prefix(key: str) -> None:
    assert keys.parse(key) is None


def test_the_shortest_well_formed_key_parses() -> None:
    assert keys.parse("mk_0123456789ab_" + "a" * 20) == "0123456789ab"
    # the secret may itself hold underscores: only the first two split
    assert keys.parse("mk_abcdefabcdef_" + "a_" * 10) == "abcdefabcdef"


# --- passwords ------------------------------------------------------------------------


def test_a_password_needs_twelve_characters() -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        passwords.hash_password("x" * 11)
    stored = passwords.hash_password("x" * 12)
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "x" * 12)
    assert not passwords.verify_password(stored, "x" * 13)


def test_no_stored_hash_or_a_broken_one_says_no() -> None:
    assert not passwords.verify_password(None, "metrify-no-such-user")
    assert not passwords.verify_password("not-a-hash", "x" * 12)


# --- principal ------------------------------------------------------------------------


def test_a_principal_is_named_by_kind_and_allowed_by_role() -> None:
    user = Principal("user", 1, "ana", Role.VIEWER, None)
    key = Principal("key", 2, "meter-gw", Role.INGEST, ("north",))
    assert user.actor == "ana"
    assert key.actor == "key:meter-gw"
    assert key.can(Permission.INGEST) and not key.can(Permission.READ_RAW)
    assert user.can(Permission.READ_AGGREGATES) and not user.can(Permission.ADMIN_USERS)


# --- access tokens --------------------------------------------------------------------


def test_an_access_token_carries_every_required_claim(tmp_path: Path) -> None:
    cfg = hs_config(jwt_issuer="iss-x", jwt_audience="aud-y", access_token_minutes=7)
    now = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    token = TokenService(cfg, tmp_path).issue_access(42, "ana", version=3, family=FAMILY, now=now)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    stamp = int(now.timestamp())
    assert claims == {
        "sub": "42",
        "name": "ana",
        "iss": "iss-x",
        "aud": "aud-y",
        "iat": stamp,
        "nbf": stamp,
        "exp": stamp + 7 * 60,
        "jti": claims["jti"],
        "typ": "access",
        "ver": 3,
        "fam": FAMILY.hex,
    }
    assert len(claims["jti"]) == 32 and int(claims["jti"], 16) >= 0


def test_a_fresh_token_verifies_to_its_user(tmp_path: Path) -> None:
    service = TokenService(hs_config(), tmp_path)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    verified = service.verify_access(
        service.issue_access(9, "bo", version=1, family=FAMILY, now=now)
    )
    assert verified.user_id == 9
    assert verified.username == "bo"
    assert verified.issued_at == now
    assert (verified.version, verified.family) == (1, FAMILY)
    assert verified.expires == (now + dt.timedelta(minutes=15)).timestamp()


def _signed(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _claims(**over: object) -> dict[str, object]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims: dict[str, object] = {
        "sub": "5",
        "iss": "metrify",
        "aud": "metrify-api",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "typ": "access",
        "ver": 0,
        "fam": FAMILY.hex,
    }
    claims.update(over)
    return claims


def test_expired_and_early_tokens_say_why(tmp_path: Path) -> None:
    service = TokenService(hs_config(), tmp_path)
    now = int(dt.datetime.now(dt.UTC).timestamp())
    # an hour either side is far beyond the few seconds of clock leeway
    with pytest.raises(TokenError, match=r"^token expired$"):
        service.verify_access(_signed(_claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600)))
    with pytest.raises(TokenError, match=r"^token not yet valid$"):
        service.verify_access(_signed(_claims(nbf=now + 3600)))


@pytest.mark.parametrize(
    ("over", "gone"),
    [
        ({"typ": "refresh"}, None),
        ({}, "typ"),
        ({"iss": "someone-else"}, None),
        ({"aud": "another-api"}, None),
        ({"sub": "not-a-number"}, None),
        *(({}, name) for name in ("exp", "sub", "iat", "ver", "fam")),
    ],
)
def test_tokens_with_wrong_or_missing_claims_are_invalid(
    tmp_path: Path, over: dict[str, object], gone: str | None
) -> None:
    # the claims are made when the test runs, not when it is collected: a long suite
    # reaches this test after a collection-time token would have expired
    claims = {k: v for k, v in _claims(**over).items() if k != gone}
    service = TokenService(hs_config(), tmp_path)
    with pytest.raises(TokenError, match=r"^invalid token$"):
        service.verify_access(_signed(claims))


def test_a_token_signed_with_another_secret_is_invalid(tmp_path: Path) -> None:
    service = TokenService(hs_config(), tmp_path)
    with pytest.raises(TokenError, match=r"^invalid token$"):
        service.verify_access(_signed(_claims(), secret="t" * 32))


def test_a_token_without_a_name_verifies_with_an_empty_one(tmp_path: Path) -> None:
    service = TokenService(hs_config(), tmp_path)
    assert service.verify_access(_signed(_claims())).username == ""


# --- secrets and keys -----------------------------------------------------------------


def test_a_configured_secret_must_have_32_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        resolve_secret(ApiConfig(jwt_secret=SecretStr("s" * 31)), tmp_path)
    assert resolve_secret(ApiConfig(jwt_secret=SecretStr(SECRET)), tmp_path) == (SECRET, SECRET)
    assert not (tmp_path / SECRET_FILE).exists()


def test_a_generated_secret_file_is_private_and_ends_in_a_newline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "a" / "home"  # neither folder exists yet
    with caplog.at_level(logging.WARNING, logger="metrify.api.auth.tokens"):
        secret, again = resolve_secret(ApiConfig(), home)
    assert secret == again
    path = home / SECRET_FILE
    assert path.read_text() == secret + "\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(secret) == 64  # 48 random bytes in url-safe base64
    # the operator is told where the generated secret lives
    assert str(path) in caplog.text and "METRIFY_API__JWT_SECRET" in caplog.text


def test_a_secret_is_generated_in_an_existing_home(tmp_path: Path) -> None:
    secret, _ = resolve_secret(ApiConfig(), tmp_path)
    assert (tmp_path / SECRET_FILE).read_text() == secret + "\n"


def test_a_short_secret_file_names_the_variable_and_the_way_out(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("short\n")
    with pytest.raises(ValueError) as info:
        resolve_secret(ApiConfig(), tmp_path)
    assert str(info.value) == (
        f"{tmp_path / SECRET_FILE} holds a 5-byte secret: it must be at least 32 bytes, "
        "like METRIFY_API__JWT_SECRET (delete the file to generate a new one)"
    )


def _rsa_pems() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def test_rs256_needs_both_keys_and_signs_with_the_private_one(tmp_path: Path) -> None:
    private_pem, public_pem = _rsa_pems()
    for missing in (
        {"jwt_private_key": SecretStr(private_pem)},
        {"jwt_public_key": public_pem},
        {"jwt_private_key": SecretStr(private_pem), "jwt_public_key": ""},
    ):
        with pytest.raises(ValueError, match="RS256 needs"):
            resolve_secret(ApiConfig(jwt_algorithm="RS256", **missing), tmp_path)  # type: ignore[arg-type]
    cfg = ApiConfig(
        jwt_algorithm="RS256", jwt_private_key=SecretStr(private_pem), jwt_public_key=public_pem
    )
    service = TokenService(cfg, tmp_path)
    token = service.issue_access(3, "cy", version=0, family=FAMILY)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    # anyone with the public key can check it: it was signed by the private one
    assert jwt.decode(token, public_pem, algorithms=["RS256"], audience="metrify-api")["sub"] == "3"
    assert service.verify_access(token).user_id == 3
    assert not (tmp_path / SECRET_FILE).exists()


# --- refresh tokens -------------------------------------------------------------------


def test_a_refresh_token_is_stored_as_its_sha256() -> None:
    token, digest = new_refresh_token()
    assert token.startswith("mr_") and len(token) == 3 + 43
    assert digest == hashlib.sha256(token.encode()).digest()
    assert refresh_digest(token) == digest
    assert new_refresh_token()[0] != token
