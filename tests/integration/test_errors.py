"""
Bad input over a real socket (docs/protocol.rst, "Errors"): every malformed or
refused message gets its error, reaches nobody else, stores nothing, and
leaves the connection working.
"""

import pytest
import pytest_twisted

MALFORMED = [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"[1, 2]", id="array"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"room": "r"}', id="no-type"),
    pytest.param(b'{"type": 7}', id="numeric-type"),
    pytest.param(b'{"type": "chat_message", "toUser": 5, "payload": {"content": "x"}}',
                 id="numeric-toUser"),
    pytest.param(b'{"type": "chat_message", "room": null, "payload": {"content": "x"}}',
                 id="null-room"),
    pytest.param(b'{"type": "chat_message", "room": "r", "payload": {"content": ["x"]}}',
                 id="list-content"),
    pytest.param(b'{"type": "chat_message", "room": "r", "payload": "x"}', id="string-payload"),
    pytest.param(b'{"type": "chat_message", "room": "r"}', id="no-content"),
    pytest.param(b'{"type": "join_room", "room": ["r"]}', id="list-room"),
    pytest.param(b'{"type": "chat_message", "room": "r", "messageId": 3, '
                 b'"payload": {"content": "x"}}', id="numeric-messageId"),
    pytest.param(b'{"type": "get_recent_messages", "room": "r", "payload": {"limit": "5"}}',
                 id="string-limit"),
    pytest.param(b'{"type": "get_recent_messages", "room": "r", "payload": {"limit": 1e999}}',
                 id="infinite-limit"),
    pytest.param(b'{"type": "request_random_peer", "payload": {"currentPeerId": 1}}',
                 id="numeric-currentPeerId"),
    pytest.param(b'{"type": "webrtc_offer", "toUser": "bob", "payload": [1]}', id="list-signal"),
]


@pytest.mark.parametrize("frame", MALFORMED)
@pytest_twisted.ensureDeferred
async def test_malformed_frame_gets_error_response(server, frame):
    """
    A frame that is not a well-typed envelope is answered with error_response
    (compat shape), reaches nobody, and the connection goes on.
    """
    alice, bob = await server.connect_many("alice", "bob", room="r")
    await alice.expect("user_joined")
    alice.send(frame)
    reply = await alice.expect("error_response")
    assert reply["payload"]["error"] == "Invalid message structure"
    assert reply["payload"]["details"]
    assert reply["messageId"] == "err-" + reply["createTime"]
    await bob.quiet()
    await alice.quiet()
    history = await bob.request({"type": "get_recent_messages", "room": "r"}, "recent_messages")
    assert history["payload"]["messages"] == []


@pytest_twisted.ensureDeferred
async def test_binary_frame_gets_error_response(server):
    """The protocol is JSON text: a binary frame is answered, not obeyed."""
    alice = await server.connect("alice")
    alice.send_binary(b'{"type": "join_room", "room": "r"}')
    reply = await alice.expect("error_response")
    assert "Binary" in reply["payload"]["details"]
    assert (await alice.request({"type": "get_rooms"}, "rooms_list"))["payload"] == {
        "rooms": ["home-alice"]
    }


@pytest_twisted.ensureDeferred
async def test_refused_message_gets_error(server):
    """
    A well-formed but unacceptable message gets error with its code over
    the wire, and the connection goes on. (Every refusal case is a hub unit
    test: tests/unit/test_hub.py, test_refused_message_gets_error.)
    """
    alice, bob = await server.connect_many("alice", "bob", room="r")
    await alice.expect("user_joined")
    error = await alice.request({"type": "no_such_type"}, "error")
    assert error["fromUser"] == "system" and error["toUser"] == "alice"
    assert error["payload"] == {"error": "Unknown message type 'no_such_type'.",
                                "code": "unknown_type"}
    await bob.quiet()
    await alice.quiet()


@pytest_twisted.ensureDeferred
async def test_huge_limit_is_clamped(server):
    """A huge history limit is served as at most 100 messages."""
    alice = await server.connect("alice", room="r")
    for n in range(105):
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": str(n)}})
    for _ in range(105):
        await alice.expect("chat_message")
    reply = await alice.request(
        {"type": "get_recent_messages", "room": "r", "payload": {"limit": 10**12}},
        "recent_messages",
    )
    messages = reply["payload"]["messages"]
    assert len(messages) == 100
    assert messages[0]["payload"]["content"] == "104"


@pytest_twisted.ensureDeferred
async def test_unknown_fields_are_ignored(server):
    """Fields the server does not know are ignored, as clients ignore unknown types."""
    alice = await server.connect("alice", room="r")
    alice.send({"type": "chat_message", "room": "r", "payload": {"content": "x", "color": "red"},
                "futureField": {"a": 1}})
    echo = await alice.expect("chat_message")
    assert echo["payload"] == {"content": "x"}
    assert "futureField" not in echo


@pytest_twisted.ensureDeferred
async def test_oversized_message_closes_with_1009():
    """A message over the size limit closes that connection with 1009, nobody else's."""
    from ..support.servers import start_server, stop_server

    server = await start_server(**{"max-message-size": "2048"})
    try:
        alice, bob = await server.connect_many("alice", "bob")
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "x" * 4096}})
        code, _ = await alice.closed()
        assert code == 1009
        await bob.quiet()
        assert "alice" not in server.hub.connections
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_invalid_utf8_text_frame_closes_with_1007(server):
    """
    A text frame that is not UTF-8 fails that connection with 1007, as RFC
    6455 requires; it never reaches anybody else.
    """
    alice, bob = await server.connect_many("alice", "bob")
    alice._protocol.sendMessage(
        b'{"type": "webrtc_offer", "toUser": "bob", "payload": {"sdp": "\xc3"}}'
    )
    code, _ = await alice.closed()
    assert code == 1007
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_deeply_nested_json_gets_error_response(server):
    """
    JSON nested 10 000 levels deep (20 KB) is answered with error_response
    like any malformed frame; the connection goes on and nobody else hears
    of it (msgspec raises RecursionError, not DecodeError, for it).
    """
    alice, bob = await server.connect_many("alice", "bob", room="r")
    await alice.expect("user_joined")
    alice.send(b'{"type": "webrtc_offer", "toUser": "bob", "payload": '
               + b"[" * 10000 + b"]" * 10000 + b"}")
    reply = await alice.expect("error_response")
    assert "nested too deeply" in reply["payload"]["details"]
    await bob.quiet()
    await alice.quiet()
