"""IP addresses in settings as the APIs echo them: canonical (RFC 5952 for IPv6).

An operator may write ``[0:0:0:0:0:0:0:1]:3260`` or ``http://[::0001]:8080``; responses
(an iSCSI portal, catalog links) show ``[::1]:3260`` and ``http://[::1]:8080``, as OpenStack
does. Host names are kept as written.

    canonical_host_port("[0000::1]:3260")    # "[::1]:3260"
    canonical_url("http://[::0001]:8080/x")  # "http://[::1]:8080/x"
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def _canonical_host(host: str) -> str:
    """``host`` canonical when it is an IP address (no brackets), else unchanged."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def canonical_host_port(value: str) -> str:
    """``host:port`` or ``[v6]:port`` with the address canonical; ValueError if malformed."""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":") or ipaddress.ip_address(host).version != 6:
            raise ValueError(f"{value!r} is not [IPv6 address]:port")
        port = rest[1:]
    else:
        host, sep, port = value.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{value!r} is not host:port (an IPv6 address goes in brackets)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} has no port between 1 and 65535")
    host = _canonical_host(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def canonical_url(value: str) -> str:
    """``value`` with an IP address host written canonically (port, path and all kept)."""
    parts = urlsplit(value)
    if parts.hostname is None:
        return value
    try:
        canonical = str(ipaddress.ip_address(parts.hostname))
    except ValueError:
        return value  # a host name
    netloc = f"[{canonical}]" if ":" in canonical else canonical
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    userinfo, at, _hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{netloc}"))
