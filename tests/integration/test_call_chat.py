"""
Chat within a call (issue #25, section 3): C{call_message} reaches the
partner only, is echoed like chat, and is kept nowhere -- on both stores,
and across two daemons on Redis.
"""

import pytest_twisted

from ..support.calls import in_a_call


def call_message(to_user, content, message_id=None):
    message = {"type": "call_message", "toUser": to_user, "payload": {"content": content}}
    if message_id is not None:
        message["messageId"] = message_id
    return message


@pytest_twisted.ensureDeferred
async def test_call_message_reaches_the_partner_and_is_echoed(two_servers):
    """
    The partner gets it with incoming true, the sender its echo with
    incoming false; both carry the messageId and no offset or epoch.
    """
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    alice.send(call_message("bob", "hello there", "m1"))
    got = await bob.expect("call_message")
    echo = await alice.expect("call_message")
    for message, incoming in ((got, True), (echo, False)):
        assert message["fromUser"] == "alice" and message["toUser"] == "bob"
        assert message["payload"] == {"content": "hello there"}
        assert message["messageId"] == "m1" and message["incoming"] is incoming
        assert "offset" not in message and "epoch" not in message
        assert message["createTime"]
    assert got["createTime"] == echo["createTime"]
    bob.send(call_message("alice", "hi"))
    back = await alice.expect("call_message")
    assert back["fromUser"] == "bob" and back["payload"] == {"content": "hi"}
    assert len((await bob.expect("call_message"))["messageId"]) == 32
    await alice.quiet()
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_call_message_is_kept_nowhere(two_servers):
    """No history of the pair, no conversation, no unread count: it was never stored."""
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    alice.send(call_message("bob", "off the record"))
    await bob.expect("call_message")
    await alice.expect("call_message")
    for reader, other in ((alice, "bob"), (bob, "alice")):
        history = await reader.request({"type": "get_direct_messages",
                                        "payload": {"withUser": other}}, "direct_messages")
        assert history["payload"]["messages"] == []
        inbox = await reader.request({"type": "get_conversations"}, "conversations")
        assert inbox["payload"]["conversations"] == []


@pytest_twisted.ensureDeferred
async def test_call_message_to_anybody_else_is_forbidden(two_servers):
    """
    To a user one is not in a call with -- online or not, in a call with
    somebody else or in none -- or outside any call: C{forbidden}, and
    nobody hears anything.
    """
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    carol, dave = await two.connect("carol"), await one.connect("dave")
    error = await alice.request(call_message("bob", "hi", "x1"), "error")
    assert error["payload"]["code"] == "forbidden"
    assert error["payload"]["messageId"] == "x1"
    await in_a_call(alice, bob)
    await in_a_call(carol, dave)
    for to_user in ("carol", "dave", "nobody"):
        error = await alice.request(call_message(to_user, "hi"), "error")
        assert error["payload"]["code"] == "forbidden", to_user
    for client in (alice, bob, carol, dave):
        await client.quiet()


@pytest_twisted.ensureDeferred
async def test_call_message_ends_with_the_call(two_servers):
    """After a hangup, the former partner is anybody else."""
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    alice.send({"type": "hangup", "toUser": "bob"})
    await bob.expect("hangup")
    await alice.quiet()
    for sender, to_user in ((alice, "bob"), (bob, "alice")):
        error = await sender.request(call_message(to_user, "still there?"), "error")
        assert error["payload"]["code"] == "forbidden"


@pytest_twisted.ensureDeferred
async def test_call_message_has_the_limits_of_chat(two_servers):
    """
    Content over --max-content-length is too_large, empty content or no
    toUser invalid_message, no content at all error_response -- and the
    partner hears nothing of any.
    """
    one, two = await two_servers(**{"max-content-length": "10"})
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await in_a_call(alice, bob)
    error = await alice.request(call_message("bob", "x" * 11), "error")
    assert error["payload"]["code"] == "too_large"
    error = await alice.request(call_message("bob", ""), "error")
    assert error["payload"]["code"] == "invalid_message"
    error = await alice.request(call_message("", "hi"), "error")
    assert error["payload"]["code"] == "invalid_message"
    error = await alice.request(call_message("bob", "hi", "m" * 129), "error")
    assert error["payload"]["code"] == "invalid_message"
    await alice.request({"type": "call_message", "toUser": "bob"}, "error_response")
    alice.send(call_message("bob", "x" * 10))
    assert (await bob.expect("call_message"))["payload"]["content"] == "x" * 10
    await alice.expect("call_message")
    await bob.quiet()
