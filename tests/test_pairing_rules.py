"""
Matchmaking rules (issue #24, section 4) over real sockets, on both stores
and -- on Redis -- between two daemons: skips past --skips-per-minute,
no instant rematch.
"""

import pytest_twisted

from aleatoria.memory.pairing_rules import Skips

from .test_matchmaking import available
from .test_resume import two_servers  # noqa: F401 (a fixture)

ASK = {"type": "request_random_peer", "messageId": "r"}


async def limited(client):
    """The retryAfter of a request refused rate_limited, after checking the answer."""
    reply = (await client.request(ASK, "error"))["payload"]
    assert reply["code"] == "rate_limited" and reply.get("messageId") == "r"
    assert 0 < reply["retryAfter"] <= 60000
    return reply["retryAfter"]


@pytest_twisted.ensureDeferred
async def test_skips_past_the_limit_follow_the_user(two_servers):  # noqa: F811
    """
    The fourth request in a minute with --skips-per-minute 3 is refused,
    changing nothing; so it is after reconnecting to the other daemon.
    Another user's budget is its own.
    """
    one, two = await two_servers(**{"skips-per-minute": "3"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    for _ in range(3):
        await alice.request(ASK, "no_peer_available")
    await available(bob)
    await limited(alice)
    await alice.close()
    alice = await two.connect("alice")
    await limited(alice)
    await bob.quiet()
    carol = await one.connect("carol")
    reply = await carol.request(ASK, "assign_role")
    assert reply["payload"]["peerId"] == "bob"


def test_the_window_slides():
    """A request leaves the count 60 s after it was made; users who stopped asking are forgotten."""
    now = [0.0]
    skips = Skips(lambda: now[0])
    assert skips.take("alice", 2) is None
    now[0] = 30
    assert skips.take("alice", 2) is None
    assert skips.take("alice", 2) == 30
    now[0] = 60
    assert skips.take("alice", 2) is None
    assert skips.take("alice", 2) == 30
    assert skips.take("bob", 0) is None
    now[0] = 200
    assert skips.take("bob", 1) is None
    assert list(skips._asked) == ["bob"]
