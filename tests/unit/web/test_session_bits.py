"""The dashboard's small pure pieces: where a sign-in may send the browser, the CSRF
token of a session, the quality flags as the pages name them, and inert page data."""

from __future__ import annotations

import base64
import hashlib

import pytest

from metrify.web import pages
from metrify.web.session import csrf_of, safe_next, same


@pytest.mark.parametrize(
    ("asked", "sent_to"),
    [
        ("/meters/M-1?from=2025-01-01", "/meters/M-1?from=2025-01-01"),
        ("//evil.example/x", "/"),  # protocol-relative: another site
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),  # browsers read a backslash as a slash
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_sends_only_to_this_site(asked: str | None, sent_to: str) -> None:
    assert safe_next(asked) == sent_to


def test_csrf_token_is_a_digest_of_the_refresh_token() -> None:
    token = "mr_abc"
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"metrify-csrf:mr_abc").digest())
    assert csrf_of(token) == expected.decode().rstrip("=")
    assert csrf_of("mr_abd") != csrf_of(token)
    assert same(csrf_of(token), csrf_of(token))
    assert not same("", "") and not same(None, csrf_of(token))


def test_flags_are_named_by_their_fixed_bits() -> None:
    # bit 0 missing, bit 8 estimated, bit 10 anomaly (the data contract's table)
    assert pages.flags_of(1 | 256) == "missing, estimated"
    assert pages.flags_of(1024 | 8) == "spike, anomaly"
    assert pages.flags_of(0) == "" and pages.flags_of(None) == ""


def test_page_data_cannot_close_its_script_element() -> None:
    """Text in the page's JSON (a meter id, a note) must not end the element early."""
    from starlette.requests import Request

    request = Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    )
    page = pages.render(request, "forbidden.html", None, detail="x", data={"v": "</script><b>"})
    body = page.body.decode()
    start = body.index('id="page-data">')
    assert "</script><b>" not in body[start:]
    assert "<\\/script><b>" in body[start:]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (45, "45 s"), (-30, "-30 s"), (720, "12 min"), (12_000, "3 h 20 min")],
)
def test_durations_read_as_people_say_them(seconds: float | None, text: str) -> None:
    assert pages.duration(seconds) == text
    # a historical load: stored 643 days and 8 hours after the interval ended
    assert pages.duration(643 * 86400 + 8 * 3600 + 59) == "643 d 8 h"
