"""
What a store outage leaves behind on the daemon that delivered without
the store: it remembers the message it delivered so as not to deliver the
store's late copy a second time -- that copy only, not a later message that
happens to reuse the same C{messageId} (issue 22, item 10). Real
redis-server, real SIGSTOP/SIGCONT.
"""

import pytest
import pytest_twisted

from ..support.lifecycle_helpers import until
from ..support.servers import redis_daemon, stop_server


async def _received(client, content):
    """The chat message with C{content}; every chat message before it, in order."""
    seen = []
    while True:
        message = await client.next()
        if message["type"] == "chat_message":
            seen.append(message)
            if message["payload"]["content"] == content:
                return seen


def _in_room(content):
    return {"type": "chat_message", "room": "r", "messageId": "m1",
            "payload": {"content": content}}


def _to_bob(content):
    return {"type": "chat_message", "toUser": "bob", "messageId": "m1",
            "payload": {"content": content}}


@pytest.mark.parametrize("message, kept", [
    pytest.param(_in_room, ("ZCARD", "room:messages:r"), id="room"),
    pytest.param(_to_bob, ("LLEN", "dm:alice:bob"), id="direct"),
])
@pytest_twisted.ensureDeferred
async def test_a_reused_message_id_after_an_outage_is_delivered(own_redis, message, kept):
    """
    Redis hangs while alice sends C{m1}: bob, on the same daemon, gets it
    unnumbered, alice C{unavailable} and then her echo. Redis wakes and runs the
    save it was sent meanwhile: its numbered copy is not delivered again.
    A new message that reuses C{m1} is delivered to bob and echoed to
    alice, numbered.
    """
    server = await redis_daemon(own_redis.port, **{"redis-timeout": "1"})
    try:
        alice, bob = await server.connect_many("alice", "bob", room="r")
        await alice.expect("user_joined")
        await own_redis.becomes("1", "EXISTS", "presence:bob")
        own_redis.pause()
        try:
            alice.send(message("first"))
            fallback = (await _received(bob, "first"))[-1]
            assert "offset" not in fallback
            error = (await alice.expect("error"))["payload"]
            assert (error["code"], error["messageId"]) == ("unavailable", "m1")
            assert (await alice.expect("chat_message"))["messageId"] == "m1"
        finally:
            own_redis.resume()
        await own_redis.becomes("1", *kept)  # the late save ran
        await until(lambda: server.backend.connected)
        await server.settled()

        alice.send(message("second"))
        echo = await alice.expect("chat_message")
        assert (echo["payload"]["content"], echo["offset"]) == ("second", 2)
        seen = await _received(bob, "second")
        assert [(m["payload"]["content"], m["offset"]) for m in seen] == [("second", 2)]
        await alice.quiet()
        await bob.quiet()
    finally:
        await stop_server(server)
