"""
Direct messages and WebRTC signaling between two users over real sockets
(docs/protocol.rst).
"""

import pytest_twisted


@pytest_twisted.ensureDeferred
async def test_direct_message_delivered_and_echoed(server):
    """A DM reaches toUser with incoming true and echoes to the sender with false."""
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")
    alice.send({"type": "chat_message", "toUser": "bob", "room": "ignored",
                "payload": {"content": "hey"}, "fromUser": "carol"})
    delivered = await bob.expect("chat_message")
    echo = await alice.expect("chat_message")
    assert delivered["incoming"] is True and echo["incoming"] is False
    for message in (delivered, echo):
        assert message["fromUser"] == "alice"
        assert message["toUser"] == "bob"
        assert "room" not in message
        assert message["payload"] == {"content": "hey"}
    await carol.quiet()


@pytest_twisted.ensureDeferred
async def test_direct_message_to_offline_user_is_kept(server):
    """A DM to someone offline is stored; they read it when they come."""
    alice = await server.connect("alice")
    for n in range(3):
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": f"m{n}"}})
        await alice.expect("chat_message")

    bob = await server.connect("bob")
    history = await bob.request(
        {"type": "get_direct_messages", "payload": {"withUser": "alice", "limit": 2}},
        "direct_messages",
    )
    assert history["payload"]["withUser"] == "alice"
    messages = history["payload"]["messages"]
    assert [m["payload"]["content"] for m in messages] == ["m1", "m2"]
    assert all(m["incoming"] is True and m["fromUser"] == "alice" for m in messages)

    mine = await alice.request(
        {"type": "get_direct_messages", "payload": {"withUser": "bob"}}, "direct_messages"
    )
    assert [m["payload"]["content"] for m in mine["payload"]["messages"]] == ["m0", "m1", "m2"]
    assert all(m["incoming"] is False for m in mine["payload"]["messages"])


@pytest_twisted.ensureDeferred
async def test_direct_history_only_for_its_parties(server):
    """A third user asking for alice's history gets only their own conversation."""
    alice, carol = await server.connect_many("alice", "carol")
    alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "private"}})
    await alice.expect("chat_message")
    snoop = await carol.request(
        {"type": "get_direct_messages", "payload": {"withUser": "bob"}}, "direct_messages"
    )
    assert snoop["payload"]["messages"] == []


@pytest_twisted.ensureDeferred
async def test_signaling_relayed_untouched(server):
    """offer, answer and candidate reach toUser with the payload exactly as sent."""
    alice, bob = await server.connect_many("alice", "bob")
    payloads = {
        "webrtc_offer": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n"},
        "webrtc_answer": {"type": "answer", "sdp": "v=0\r\n"},
        "webrtc_candidate": {"candidate": {"candidate": "candidate:1 1 UDP 2 10.0.0.1 9 typ host",
                                            "sdpMid": "0", "sdpMLineIndex": 0},
                             "extra": [1, 2.5, None, True]},
    }
    for kind, payload in payloads.items():
        alice.send({"type": kind, "toUser": "bob", "payload": payload, "fromUser": "eve"})
        relayed = await bob.expect(kind)
        assert relayed["payload"] == payload
        assert relayed["fromUser"] == "alice" and relayed["toUser"] == "bob"
        assert relayed["createTime"]
    await alice.quiet()


@pytest_twisted.ensureDeferred
async def test_signaling_without_recipient(server):
    """Signaling without toUser is refused (the Go server dropped it silently)."""
    alice = await server.connect("alice")
    for kind in ("webrtc_offer", "webrtc_answer", "webrtc_candidate", "hangup"):
        error = await alice.request({"type": kind, "payload": {}}, "error")
        assert error["payload"]["code"] == "invalid_message"
        assert "toUser" in error["payload"]["error"]


@pytest_twisted.ensureDeferred
async def test_signaling_to_offline_user(server):
    """Signaling to someone not connected answers user_offline."""
    alice = await server.connect("alice")
    error = await alice.request({"type": "webrtc_offer", "toUser": "ghost", "payload": {}}, "error")
    assert error["payload"] == {"error": "ghost is not online.", "code": "user_offline"}


@pytest_twisted.ensureDeferred
async def test_hangup_relayed(server):
    """hangup reaches toUser."""
    alice, bob = await server.connect_many("alice", "bob")
    alice.send({"type": "hangup", "toUser": "bob"})
    hangup = await bob.expect("hangup")
    assert hangup["fromUser"] == "alice"
