"""api/forwarded.py: X-Forwarded-For / Forwarded believed only from the operator's proxies."""

from __future__ import annotations

import pytest

from switchboard.api.forwarded import client_address
from switchboard.config import parse_networks

PROXIES = parse_networks("10.0.0.1, 192.168.0.0/16")


def h(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def test_no_trusted_proxies_means_the_headers_are_ignored():
    assert client_address("127.0.0.1", h(x_forwarded_for="1.2.3.4"), ()) == "127.0.0.1"
    assert client_address("127.0.0.1", h(forwarded="for=1.2.3.4"), parse_networks("")) == "127.0.0.1"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_name_its_address():
    assert client_address("203.0.113.9", h(x_forwarded_for="1.2.3.4"), PROXIES) == "203.0.113.9"


def test_the_rightmost_untrusted_hop_is_the_client():
    # the client forged "6.6.6.6"; the trusted proxy appended the address it saw
    assert client_address("10.0.0.1", h(x_forwarded_for="6.6.6.6, 198.51.100.7"), PROXIES) == "198.51.100.7"
    # two trusted proxies in a row
    assert client_address("10.0.0.1", h(x_forwarded_for="198.51.100.7, 192.168.3.4"), PROXIES) == "198.51.100.7"


def test_forwarded_wins_over_x_forwarded_for_and_ports_and_brackets_go():
    hdrs = h(forwarded='for="[2001:db8::7]:4711";proto=https, for=192.168.1.1', x_forwarded_for="9.9.9.9")
    assert client_address("10.0.0.1", hdrs, PROXIES) == "2001:db8::7"
    assert client_address("10.0.0.1", h(x_forwarded_for="198.51.100.7:5555"), PROXIES) == "198.51.100.7"


def test_garbage_stops_at_the_last_trusted_hop():
    assert client_address("10.0.0.1", h(x_forwarded_for="not-an-ip"), PROXIES) == "10.0.0.1"
    assert client_address("10.0.0.1", h(forwarded="for=unknown"), PROXIES) == "10.0.0.1"
    assert client_address("10.0.0.1", [], PROXIES) == "10.0.0.1"


def test_bad_networks_are_refused_with_their_name():
    with pytest.raises(ValueError, match="bogus"):
        parse_networks("10.0.0.1, bogus")
