"""Which address a request comes from, believing X-Forwarded-For only from trusted proxies.

Every hop appends the address it received the request from, so only the right end of
``X-Forwarded-For`` is written by proxies we run; anything further left may be written
by the client. The client is therefore the rightmost address that is not one of our
proxies, reached by walking left from the direct peer while each hop is trusted. A peer
that is not trusted is the client, whatever headers it sends: otherwise anyone could
pick the address the sign-in throttle and the audit log see.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The parsed ``trusted_proxies`` (validated by the settings already)."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]
) -> bool:
    return any(address.version == n.version and address in n for n in trusted)


def client_of(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client address of a request from ``peer`` with these X-Forwarded-For headers.

    A hop that is not an IP address ends the walk: the last address reached (a trusted
    proxy) is the best we know. With no trusted proxies the peer is the answer.
    """
    if peer is None or not trusted:
        return peer
    current = _address(peer)
    if current is None or not _trusted(current, trusted):
        return peer
    hops = [h for header in forwarded_for for h in header.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)
