"""The HS256 secret: one rule (>= 32 bytes) for the variable and the generated file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from metrify.api.auth.tokens import SECRET_FILE, TokenService, resolve_secret
from metrify.settings.api import ApiConfig


@pytest.mark.parametrize("content", ["a", "", "\n", "b" * 31 + "\n"])
def test_a_short_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / SECRET_FILE).write_text(content)
    with pytest.raises(ValueError, match="at least 32 bytes") as info:
        resolve_secret(ApiConfig(), tmp_path)
    assert str(tmp_path / SECRET_FILE) in str(info.value)


def test_a_32_byte_secret_file_is_used(tmp_path: Path) -> None:
    secret = "c" * 32
    (tmp_path / SECRET_FILE).write_text(secret + "\n")
    assert resolve_secret(ApiConfig(), tmp_path) == (secret, secret)


def test_a_generated_secret_is_accepted_on_the_next_start(tmp_path: Path) -> None:
    first = resolve_secret(ApiConfig(), tmp_path / "home")
    assert len(first[0].encode()) >= 32
    assert resolve_secret(ApiConfig(), tmp_path / "home") == first
    service = TokenService(ApiConfig(), tmp_path / "home")
    family = uuid.uuid4()
    claims = service.verify_access(service.issue_access(7, "ana", version=3, family=family))
    assert (claims.user_id, claims.version, claims.family) == (7, 3, family)
