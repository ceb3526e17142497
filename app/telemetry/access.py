"""Who may read /metrics without logging in: the addresses LOUPE_METRICS_ALLOW names.

Pure: strings in, booleans out. The metrics tell how busy the site is and which model
versions serve; a scraper (Prometheus in the cluster, or a local agent) reads them
without a login, so the allow-list is the whole protection and it starts closed: loopback
only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = "127.0.0.1/32,::1/128"


def parse_allow_list(value: str) -> tuple[Network, ...]:
    """Comma-separated addresses and CIDR blocks; a bare address is a block of one.
    Raises ValueError naming the entry that is neither."""
    networks = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an address or a CIDR block") from exc
    return tuple(networks)


def allowed(host: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether a caller at `host` (the peer's address as the server saw it) may read.
    A host that is not an IP address (a unix socket, a test client's name) is refused."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 from a dual-stack socket
    return any(address.version == net.version and address in net for net in networks)


# Behind a proxy, the peer address is what the proxy headers say (uvicorn --proxy-headers,
# as the chart and compose run it), and their leftmost entry is the caller's own words:
# `X-Forwarded-For: 127.0.0.1` through the ingress would pass the allow-list. A scraper
# reaches the pod directly, so a request that came through a proxy is never a scraper.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def forwarded(headers: Mapping[str, str]) -> bool:
    """Whether the request came through a proxy (header names in lower case, as Starlette's
    Headers and ASGI give them)."""
    return any(name in headers for name in PROXY_HEADERS)
