"""
Block (issue #24, section 1) over real sockets, on both stores and -- on
Redis -- between two daemons: the answers, the quota, the call ended for
the blocked side as if it simply ended, never paired again in either
role, no direct message or signaling either way; kept across restarts.
"""

import pytest
import pytest_twisted

from ..support.pairing import available
from ..support.servers import redis_daemon, stop_server

NO_PEER = "no_peer_available"


def block(client, user, kind="block_user", message_id="b1"):
    return client.request({"type": kind, "payload": {"userId": user}, "messageId": message_id},
                          "user_blocked" if kind == "block_user" else "user_unblocked")


async def blocked(client):
    return (await client.request({"type": "get_blocked"}, "blocked_users"))["payload"]


async def refused(client, message):
    """The code of the error C{message} is answered with."""
    return (await client.request(message, "error"))["payload"]["code"]


@pytest_twisted.ensureDeferred
async def test_block_unblock_and_list(two_servers):  # noqa: F811
    """Each request is answered, repeating its messageId; the list is sorted."""
    one, _ = await two_servers()
    alice = await one.connect("alice")
    answer = await block(alice, "zoe")
    assert answer["payload"] == {"userId": "zoe"} and answer["messageId"] == "b1"
    await block(alice, "bob")
    await block(alice, "bob")
    assert await blocked(alice) == {"users": ["bob", "zoe"]}
    answer = await block(alice, "zoe", "unblock_user", "u1")
    assert answer["payload"] == {"userId": "zoe"} and answer["messageId"] == "u1"
    await block(alice, "nobody", "unblock_user")
    assert await blocked(alice) == {"users": ["bob"]}


@pytest_twisted.ensureDeferred
async def test_bad_requests(two_servers):  # noqa: F811
    """No userId, a malformed one, oneself: invalid_message, and nothing kept."""
    one, _ = await two_servers()
    alice = await one.connect("alice")
    for payload in ({}, {"userId": "no spaces"}, {"userId": "alice"}):
        for kind in ("block_user", "unblock_user"):
            assert await refused(alice, {"type": kind, "payload": payload}) == "invalid_message"
    reply = await alice.request({"type": "block_user", "payload": {"userId": 7}},
                                "error_response")
    assert "$.payload.userId" in reply["payload"]["details"]
    assert await blocked(alice) == {"users": []}


@pytest_twisted.ensureDeferred
async def test_past_max_blocks(two_servers):  # noqa: F811
    """One block past --max-blocks is quota_exceeded; unblocking makes room."""
    one, _ = await two_servers(**{"max-blocks": "2"})
    alice = await one.connect("alice")
    await block(alice, "b")
    await block(alice, "c")
    assert await refused(alice, {"type": "block_user", "payload": {"userId": "d"}}) \
        == "quota_exceeded"
    await block(alice, "c")
    await block(alice, "c", "unblock_user")
    await block(alice, "d")
    assert await blocked(alice) == {"users": ["b", "d"]}


@pytest.mark.parametrize("blocker", ["alice", "bob"])
@pytest_twisted.ensureDeferred
async def test_blocking_the_partner_ends_the_call_and_any_pairing(two_servers, blocker):  # noqa: F811
    """
    The blocked side hears its call ended (reason "ended", never "blocked");
    the blocker hears only user_blocked. Neither is paired with the other
    again, in either role, whoever blocked; others still are.
    """
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await available(bob)
    alice.send({"type": "request_random_peer"})
    await alice.expect("assign_role")
    await bob.expect("assign_role")
    me, other = (alice, bob) if blocker == "alice" else (bob, alice)
    await block(me, other.user)
    hangup = await other.expect("hangup")
    assert hangup["fromUser"] == me.user and hangup["payload"] == {"reason": "ended"}
    await me.quiet()
    await available(alice, bob)
    for requester in (alice, bob):
        await requester.request({"type": "request_random_peer"}, NO_PEER)
    carol = await two.connect("carol")
    await available(carol)
    reply = await alice.request({"type": "request_random_peer"}, "assign_role")
    assert reply["payload"]["peerId"] == "carol"
    await carol.expect("assign_role")
    await bob.request({"type": "request_random_peer"}, NO_PEER)


@pytest.mark.parametrize("blocker", ["alice", "bob"])
@pytest_twisted.ensureDeferred
async def test_no_direct_message_nor_signaling_either_way(two_servers, blocker):  # noqa: F811
    """
    Direct messages and signaling between the two, either way, are refused
    forbidden; no direct message is kept. Unblocked, they pass again.
    """
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    me, other = (alice, bob) if blocker == "alice" else (bob, alice)
    await block(me, other.user)
    for sender, to in ((alice, "bob"), (bob, "alice")):
        error = await sender.request({"type": "chat_message", "toUser": to, "messageId": "m1",
                                      "payload": {"content": "hi"}}, "error")
        assert error["payload"]["code"] == "forbidden"
        assert error["payload"]["messageId"] == "m1"
        for kind in ("webrtc_offer", "webrtc_candidate", "hangup"):
            assert await refused(sender, {"type": kind, "toUser": to,
                                          "payload": {"sdp": "x"}}) == "forbidden"
        history = await sender.request({"type": "get_direct_messages",
                                        "payload": {"withUser": to}}, "direct_messages")
        assert history["payload"]["messages"] == []
    await alice.quiet()
    await bob.quiet()
    await block(me, other.user, "unblock_user")
    alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "hi"}})
    assert (await bob.expect("chat_message"))["payload"] == {"content": "hi"}
    bob.send({"type": "webrtc_offer", "toUser": "alice", "payload": {"sdp": "x"}})
    assert (await alice.expect("webrtc_offer", skip={"chat_message"}))["payload"] == {"sdp": "x"}


@pytest_twisted.ensureDeferred
async def test_blocks_outlive_the_daemons_on_redis(own_redis):
    """On Redis a block is kept: a daemon started afterwards honours it."""
    first = await redis_daemon(own_redis.port)
    alice = await first.connect("alice")
    await block(alice, "bob")
    await stop_server(first)
    second = await redis_daemon(own_redis.port)
    try:
        alice, bob = await second.connect("alice"), await second.connect("bob")
        assert await blocked(alice) == {"users": ["bob"]}
        assert await refused(bob, {"type": "chat_message", "toUser": "alice",
                                   "payload": {"content": "hi"}}) == "forbidden"
    finally:
        await stop_server(second)
