"""
The client's address as the per-address limits and the log see it
(handshake.client_address): the peer's, or behind trusted proxies the
nearest forwarded address that is not one of them.
"""

import ipaddress

import pytest

from aleatoria.edge.handshake import client_address

PROXY = (ipaddress.ip_network("127.0.0.1/32"),)


class _Request:
    def __init__(self, peer, forwarded=None):
        self.peer = peer
        self.headers = {"x-forwarded-for": forwarded} if forwarded is not None else {}


@pytest.mark.parametrize("peer, forwarded, expected", [
    pytest.param("tcp4:198.51.100.7:4000", None, "198.51.100.7", id="direct"),
    pytest.param("tcp4:198.51.100.7:4000", "203.0.113.9", "198.51.100.7",
                 id="untrusted-peer-forwarding"),
    pytest.param("tcp4:127.0.0.1:4000", "203.0.113.9", "203.0.113.9", id="trusted-proxy"),
    pytest.param("tcp6:::ffff:127.0.0.1:4000", "203.0.113.9", "203.0.113.9",
                 id="ipv4-mapped-proxy"),
    pytest.param("tcp6:::ffff:198.51.100.7:4000", None, "198.51.100.7", id="ipv4-mapped-client"),
    pytest.param("tcp4:127.0.0.1:4000", "evil", "127.0.0.1", id="not-an-address"),
    pytest.param("tcp4:127.0.0.1:4000", "203.0.113.9, evil", "127.0.0.1",
                 id="garbage-breaks-the-chain"),
    pytest.param("tcp4:127.0.0.1:4000", "evil, 203.0.113.9", "203.0.113.9",
                 id="garbage-beyond-the-client"),
    pytest.param("tcp4:127.0.0.1:4000", "::ffff:203.0.113.9", "203.0.113.9",
                 id="forwarded-ipv4-mapped"),
])
def test_client_address(peer, forwarded, expected):
    """
    IPv4-mapped addresses count as IPv4; forwarded values that are no
    address are not believed.
    """
    assert client_address(_Request(peer, forwarded), PROXY) == expected
