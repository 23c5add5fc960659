"""The client address behind trusted proxies: the rightmost hop that is not ours."""

from __future__ import annotations

import pytest

from metrify.api.auth.proxies import client_of, networks
from metrify.settings.api import ApiConfig

TRUSTED = networks(("10.0.0.0/8", "fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # an untrusted peer is the client, whatever it claims
        ("192.0.2.9", ["203.0.113.5"], "192.0.2.9"),
        # a trusted peer: the address it received the request from
        ("10.0.0.1", ["203.0.113.5"], "203.0.113.5"),
        # two of our proxies: walk past both; the client-written left end is ignored
        ("10.0.0.1", ["198.51.100.99, 203.0.113.5, 10.0.0.2"], "203.0.113.5"),
        # several header lines are one list, in order
        ("10.0.0.1", ["198.51.100.99", "203.0.113.5"], "203.0.113.5"),
        # a trusted peer that forwards nothing: the peer itself
        ("10.0.0.1", [], "10.0.0.1"),
        # every hop ours: the leftmost one reached
        ("10.0.0.1", ["10.1.1.1, 10.0.0.2"], "10.1.1.1"),
        # garbage ends the walk at the last address we trust
        ("10.0.0.1", ["203.0.113.5, not-an-ip"], "10.0.0.1"),
        # IPv6, and an IPv4 address mapped into IPv6
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["203.0.113.5"], "203.0.113.5"),
    ],
)
def test_client_of(peer: str, forwarded: list[str], client: str) -> None:
    assert client_of(peer, forwarded, TRUSTED) == client


def test_no_trusted_proxy_means_the_peer() -> None:
    assert client_of("10.0.0.1", ["203.0.113.5"], ()) == "10.0.0.1"


def test_a_bad_cidr_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        ApiConfig(trusted_proxies=["10.0.0.0/33"])
    assert ApiConfig(trusted_proxies=[" 10.1.2.3/8 "]).trusted_proxies == ["10.0.0.0/8"]
