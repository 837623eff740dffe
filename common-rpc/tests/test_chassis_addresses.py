"""Addresses in settings are echoed canonical: RFC 5952 for IPv6, host names as written."""

from __future__ import annotations

import pytest

from common_rpc.chassis.addresses import canonical_host_port, canonical_url


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("[0000::1]:3260", "[::1]:3260"),
        ("[0:0:0:0:0:0:0:1]:3260", "[::1]:3260"),
        ("[::BABE:220.12.22.2]:3260", "[::babe:dc0c:1602]:3260"),
        ("[2001:DB8:0:0:1:0:0:1]:3260", "[2001:db8::1:0:0:1]:3260"),
        ("10.0.0.5:3260", "10.0.0.5:3260"),
        ("storage-1:3260", "storage-1:3260"),
    ],
)
def test_host_port(given: str, shown: str) -> None:
    assert canonical_host_port(given) == shown


@pytest.mark.parametrize(
    "bad", ["::1:3260", "[::1]", "[::1]3260", "[10.0.0.5]:3260", "host", "host:0", "h:99999"]
)
def test_host_port_that_is_not_one(bad: str) -> None:
    with pytest.raises(ValueError):
        canonical_host_port(bad)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("http://[0:0::1]:8080/identity", "http://[::1]:8080/identity"),
        ("https://[2001:DB8::0001]/", "https://[2001:db8::1]/"),
        ("http://user:pw@[::0001]:9/x?y=1#z", "http://user:pw@[::1]:9/x?y=1#z"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://Gateway.Example:8080/", "http://Gateway.Example:8080/"),
    ],
)
def test_url(given: str, shown: str) -> None:
    assert canonical_url(given) == shown
