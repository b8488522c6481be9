"""
The credentials of the TURN REST API, as coturn's use-auth-secret checks
them (issue #25): C{<expiry>:<opaque>} and base64(HMAC-SHA1(secret, user name)).
"""

import base64
import hashlib
import hmac

from aleatoria.edge.ice import IceServers, credential

SECRET = "a-turn-secret-of-thirty-two-bytes-at-least"
NOW = 1_800_000_000.7


def test_credential_is_the_hmac_sha1_of_the_user_name():
    """Known answer: computed here with the standard library, independently."""
    username = "1800003600:abc"
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()
    assert credential(SECRET, username) == expected
    assert credential(SECRET, "1800003600:abd") != expected


def test_payload_has_stun_then_turn_with_fresh_credentials():
    """STUN URLs as given; the TURN ones with a user name that expires ttl seconds on."""
    ice = IceServers(stun=["stun:s.example:3478"],
                     turn=["turn:t.example:3478?transport=udp", "turns:t.example:443"],
                     secret=SECRET, ttl=600, seconds=lambda: NOW)
    payload = ice.fresh()
    stun, turn = payload["iceServers"]
    assert stun == {"urls": ["stun:s.example:3478"]}
    assert turn["urls"] == ["turn:t.example:3478?transport=udp", "turns:t.example:443"]
    expiry, opaque = turn["username"].split(":")
    assert int(expiry) == 1_800_000_600
    assert len(opaque) >= 16
    assert turn["credential"] == credential(SECRET, turn["username"])
    assert payload["ttl"] == 600
    assert payload["expiresAt"] == "2027-01-15T08:10:00Z"


def test_each_mint_is_new():
    """Two credentials share no opaque part: a TURN log ties no two relays to one user."""
    ice = IceServers(turn=["turn:t.example"], secret=SECRET, seconds=lambda: NOW)
    first, second = (ice.fresh()["iceServers"][0]["username"] for _ in range(2))
    assert first != second
    assert first.split(":")[1] != second.split(":")[1]


def test_without_turn_only_stun_or_nothing():
    """No secret: no TURN server is given out; none configured: an empty list."""
    assert IceServers(stun=["stun:s.example"], turn=["turn:t.example"],
                      seconds=lambda: NOW).fresh()["iceServers"] == [
                          {"urls": ["stun:s.example"]}]
    payload = IceServers(seconds=lambda: NOW).fresh()
    assert payload["iceServers"] == []
    assert payload["ttl"] == 3600
