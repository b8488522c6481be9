"""
A call survives a blip (issue #25, section 2): a matched user whose
connection is lost -- not closed by the client -- has its call held for
--call-grace seconds; back within them, on any daemon, it is told the
call again (C{resumed}) and its partner C{peer_reconnected}; not back,
the partner hears C{hangup} C{disconnected}. A clean close ends the call
at once. On both stores; on Redis the user comes back to the other daemon.
"""

import pytest_twisted

from ..support.calls import drop, in_a_call, offer, resumed, unmatched
from ..support.servers import redis_daemon, stop_server


@pytest_twisted.ensureDeferred
async def test_a_lost_connection_that_comes_back_keeps_the_call(two_servers):
    """
    The partner hears nothing while the user is away; signaling and call
    chat to it are user_offline with retryAfter, what is left of the
    grace; back, the user gets its assign_role again with resumed true,
    the partner peer_reconnected, and the call goes on both ways.
    """
    one, two = await two_servers(**{"call-grace": "30"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    await drop(bob, two)
    error = await alice.request(offer("bob"), "error")
    assert error["payload"]["code"] == "user_offline"
    assert error["payload"]["messageId"] == "o1"
    assert 0 < error["payload"]["retryAfter"] <= 30_000
    error = await alice.request({"type": "call_message", "toUser": "bob",
                                 "payload": {"content": "there?"}}, "error")
    assert error["payload"]["code"] == "user_offline"
    assert 0 < error["payload"]["retryAfter"] <= 30_000
    await alice.quiet()

    bob = await one.connect("bob")
    back = await bob.expect("assign_role")
    assert resumed(back) == ("polite", "alice", True)
    assert back["fromUser"] == "system" and back["toUser"] == "bob"
    told = await alice.expect("peer_reconnected")
    assert told["payload"] == {"peerId": "bob"}
    assert told["fromUser"] == "system" and told["toUser"] == "alice"
    alice.send(offer("bob", "o2"))
    assert (await bob.expect("webrtc_offer"))["messageId"] == "o2"
    bob.send({"type": "webrtc_answer", "toUser": "alice", "payload": {"sdp": "a"}})
    assert (await alice.expect("webrtc_answer"))["payload"] == {"sdp": "a"}
    bob.send({"type": "call_message", "toUser": "alice", "payload": {"content": "back"}})
    assert (await alice.expect("call_message"))["payload"] == {"content": "back"}
    await bob.expect("call_message")
    await alice.quiet()
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_a_lost_connection_that_stays_away_ends_the_call_after_the_grace(two_servers):
    """
    Past the grace the partner gets hangup from the user, reason
    disconnected, and is free; the user, back later, has no call.
    """
    one, two = await two_servers(**{"call-grace": "0.5"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    await drop(bob, two)
    hangup = await alice.expect("hangup")
    assert hangup["fromUser"] == "bob" and hangup["payload"] == {"reason": "disconnected"}
    error = await alice.request(offer("bob"), "error")
    assert error["payload"]["code"] == "user_offline"
    assert "retryAfter" not in error["payload"]
    bob = await one.connect("bob")
    await bob.quiet()
    carol = await two.connect("carol")
    await in_a_call(alice, carol)


@pytest_twisted.ensureDeferred
async def test_a_clean_close_ends_the_call_at_once(two_servers):
    """A close frame from the client ends its call within a grace far longer than any wait."""
    one, two = await two_servers(**{"call-grace": "3600"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    await bob.close()
    hangup = await alice.expect("hangup")
    assert hangup["fromUser"] == "bob" and hangup["payload"] == {"reason": "disconnected"}


@pytest_twisted.ensureDeferred
async def test_a_close_frame_without_a_code_ends_the_call_at_once(two_servers):
    """A close frame with no status code (a browser's close()) is a close all the same."""
    one, two = await two_servers(**{"call-grace": "3600"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    bob._protocol.sendClose()
    await bob.closed()
    hangup = await alice.expect("hangup")
    assert hangup["fromUser"] == "bob" and hangup["payload"] == {"reason": "disconnected"}


@pytest_twisted.ensureDeferred
async def test_a_hangup_to_a_user_away_ends_the_call(two_servers):
    """
    The partner may hang up on a user inside its grace: no error, the
    call is over, and the user, back, is not told it again.
    """
    one, two = await two_servers(**{"call-grace": "30"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    await drop(bob, two)
    alice.send({"type": "hangup", "toUser": "bob", "messageId": "h1"})
    await unmatched(one, "bob")
    await alice.quiet()
    bob = await one.connect("bob")
    await bob.quiet()
    await alice.quiet()
    for sender, to_user in ((alice, "bob"), (bob, "alice")):
        error = await sender.request({"type": "call_message", "toUser": to_user,
                                      "payload": {"content": "hi"}}, "error")
        assert error["payload"]["code"] == "forbidden"


@pytest_twisted.ensureDeferred
async def test_a_replaced_connection_keeps_the_call(two_servers):
    """
    A user who connects again before the server noticed its old
    connection was lost (it replaces it) keeps its call, as after a drop.
    """
    one, two = await two_servers(**{"call-grace": "30"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    again = await one.connect("bob")
    assert (await bob.closed())[0] == 4001
    back = await again.expect("assign_role")
    assert resumed(back) == ("polite", "alice", True)
    assert (await alice.expect("peer_reconnected"))["payload"] == {"peerId": "bob"}
    alice.send(offer("bob"))
    await again.expect("webrtc_offer")
    await alice.quiet()


@pytest_twisted.ensureDeferred
async def test_a_daemon_without_grace_ends_a_call_another_held(own_redis):
    """
    Every daemon sweeps the graces that are over, its own grace 0 too:
    a call another daemon held (one since stopped, or configured
    otherwise before a restart) still ends.
    """
    server = await redis_daemon(own_redis.port, **{"call-grace": "0"})
    try:
        alice, bob = await server.connect("alice"), await server.connect("bob")
        await in_a_call(alice, bob)
        own_redis.raw("ZADD", "matches:held", "1", "bob")
        hangup = await alice.expect("hangup")
        assert hangup["fromUser"] == "bob" and hangup["payload"] == {"reason": "disconnected"}
        assert own_redis.raw("EXISTS", "match:alice") == "0"
    finally:
        await stop_server(server)
