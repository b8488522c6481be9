"""
Matchmaking rules (issue #24, section 4) over real sockets, on both stores
and -- on Redis -- between two daemons: skips past --skips-per-minute,
no instant rematch.
"""

import pytest_twisted

from ..support.pairing import available

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


@pytest_twisted.ensureDeferred
async def test_no_instant_rematch(two_servers):  # noqa: F811
    """
    With --rematch-after, two users whose match ended are not paired again,
    in either role, by a hangup or a skip; others still are.
    """
    one, two = await two_servers(**{"rematch-after": "300"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await available(bob)
    await alice.request(ASK, "assign_role")
    await bob.expect("assign_role")
    alice.send({"type": "hangup", "toUser": "bob"})
    await bob.expect("hangup")
    await alice.quiet()
    await available(alice, bob)
    for requester in (alice, bob):
        await requester.request(ASK, "no_peer_available")
    carol = await one.connect("carol")
    await available(carol)
    reply = await bob.request(ASK, "assign_role")
    assert reply["payload"]["peerId"] == "carol"
    await carol.expect("assign_role")
    reply = await carol.request({**ASK, "payload": {"currentPeerId": "bob"}}, "assign_role")
    assert reply["payload"]["peerId"] == "alice"
    await alice.expect("assign_role")
    await bob.expect("hangup")
    await available(bob)
    alice.send({"type": "hangup", "toUser": "carol"})
    await carol.expect("hangup")
    await carol.request(ASK, "no_peer_available")
