"""
The daemon on a real Redis: the Go server's key layout, durability across
restarts, and what users see while Redis is away (issue: Redis store).
"""

import json

import pytest_twisted
from twisted.internet import reactor
from twisted.logger import formatEvent, globalLogPublisher

from aleatoria.daemon.service import make_service
from aleatoria.domain.clock import parse_rfc3339

from ..support.lifecycle_helpers import until
from ..support.redis_server import RedisServer
from ..support.servers import Server, redis_config, redis_daemon, stop_server


@pytest_twisted.ensureDeferred
async def test_keys_are_the_go_servers(own_redis):
    """
    Rooms, history, DMs and the pool land under the exact keys of
    docs/reference/keys.rst, as JSON envelopes, with the TTL set and the score the
    createTime in Unix nanoseconds.
    """
    server = await redis_daemon(own_redis.port)
    try:
        alice, bob = await server.connect_many("alice", "bob", room="r")
        await alice.expect("user_joined")
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": "42"}})
        sent = await alice.expect("chat_message")
        await bob.expect("chat_message")
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "dm"}})
        await alice.expect("chat_message")
        await bob.expect("chat_message")
        bob.send({"type": "user_available_webrtc"})
        await bob.quiet()
    finally:
        await stop_server(server)

    cli = own_redis.raw
    # the daemon cleaned membership and the pool when it shut down ...
    assert cli("SMEMBERS", "room:members:r") == ""
    assert cli("SCARD", "available:webrtc") == "0"
    # ... and kept the history.
    member, score = cli("ZRANGE", "room:messages:r", "0", "-1", "WITHSCORES").splitlines()
    stored = json.loads(member)
    assert stored == {
        "type": "chat_message", "fromUser": "alice", "room": "r",
        "payload": {"content": "42"}, "messageId": sent["messageId"],
        "createTime": sent["createTime"], "offset": 1, "epoch": sent["epoch"],
    }
    assert sent["offset"] == 1
    assert float(score) == float(parse_rfc3339(sent["createTime"]))
    assert 24 * 3600 - 60 < int(cli("TTL", "room:messages:r")) <= 24 * 3600
    (dm,) = cli("LRANGE", "dm:alice:bob", "0", "-1").splitlines()
    assert json.loads(dm)["payload"] == {"content": "dm"}
    assert json.loads(dm)["toUser"] == "bob"
    assert 24 * 3600 - 60 < int(cli("TTL", "dm:alice:bob")) <= 24 * 3600


@pytest_twisted.ensureDeferred
async def test_membership_and_pool_while_connected(own_redis):
    """While users are connected, Redis shows who is in which room and in the pool."""
    server = await redis_daemon(own_redis.port, **{"redis-prefix": "chat:"})
    try:
        alice, bob = await server.connect_many("alice", "bob", room="r")
        await alice.expect("user_joined")
        bob.send({"type": "user_available_webrtc"})
        await bob.quiet()
        assert sorted(own_redis.raw("SMEMBERS", "chat:room:members:r").split()) == ["alice", "bob"]
        assert sorted(own_redis.raw("SMEMBERS", "chat:user:rooms:alice").split()) == ["r"]
        assert own_redis.raw("SMEMBERS", "chat:available:webrtc").split() == ["bob"]
        assert own_redis.raw("KEYS", "room:*") == ""
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_history_survives_a_restart(own_redis):
    """Room and DM history written by one daemon is read by the next."""
    first = await redis_daemon(own_redis.port)
    try:
        alice = await first.connect("alice", room="r")
        for n in range(3):
            alice.send({"type": "chat_message", "room": "r", "payload": {"content": str(n)}})
            await alice.expect("chat_message")
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "later"}})
        await alice.expect("chat_message")
    finally:
        await stop_server(first)

    second = await redis_daemon(own_redis.port)
    try:
        alice = await second.connect("alice", room="r")
        history = await alice.request({"type": "get_recent_messages", "room": "r"},
                                      "recent_messages")
        assert [m["payload"]["content"] for m in history["payload"]["messages"]] == ["2", "1", "0"]
        bob = await second.connect("bob")
        dms = await bob.request({"type": "get_direct_messages", "payload": {"withUser": "alice"}},
                                "direct_messages")
        assert [m["payload"]["content"] for m in dms["payload"]["messages"]] == ["later"]
    finally:
        await stop_server(second)


@pytest_twisted.ensureDeferred
async def test_reads_what_the_go_server_wrote(own_redis):
    """History the Go server stored (its time format, its incoming flag) reads back."""
    go_message = {"type": "chat_message", "fromUser": "old", "room": "r",
                  "payload": {"content": "from go"}, "messageId": "go-1",
                  "createTime": "2026-11-01T10:00:00.5Z", "incoming": True}
    own_redis.raw("ZADD", "room:messages:r", str(parse_rfc3339(go_message["createTime"])),
                  json.dumps(go_message))
    own_redis.raw("RPUSH", "dm:alice:old", json.dumps(go_message | {"toUser": "alice"}))
    own_redis.raw("ZADD", "room:messages:r", "1", "not json at all")
    server = await redis_daemon(own_redis.port)
    try:
        alice = await server.connect("alice", room="r")
        history = await alice.request({"type": "get_recent_messages", "room": "r"},
                                      "recent_messages")
        (message,) = history["payload"]["messages"]
        assert message["payload"] == {"content": "from go"} and message["messageId"] == "go-1"
        dms = await alice.request({"type": "get_direct_messages", "payload": {"withUser": "old"}},
                                  "direct_messages")
        assert dms["payload"]["messages"][0]["incoming"] is True
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_outage_and_recovery(own_redis):
    """
    With Redis gone, live traffic between connected users flows on, what
    needs the store answers 'unavailable' -- chat too, before its echo,
    naming the message that may have missed somebody or its history -- and
    /ready says degraded. When Redis comes back the daemon reconnects by
    itself.
    """
    server = await redis_daemon(own_redis.port, **{"redis-timeout": "1"})
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        alice, bob = await server.connect_many("alice", "bob", room="r")
        await alice.expect("user_joined")
        own_redis.stop()
        await until(lambda: not server.backend.connected)
        for n in range(20):
            alice.send({"type": "chat_message", "room": "r", "payload": {"content": str(n)},
                        "messageId": f"m{n}"})
            error = (await alice.expect("error"))["payload"]
            assert (error["code"], error["messageId"], error["failed"]) == (
                "unavailable", f"m{n}", ["delivery", "history"])
            assert (await alice.expect("chat_message"))["messageId"] == f"m{n}"
            assert (await bob.expect("chat_message"))["messageId"] == f"m{n}"

        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "dm"}})
        assert (await bob.expect("chat_message"))["payload"] == {"content": "dm"}
        error = (await alice.expect("error"))["payload"]
        echo = await alice.expect("chat_message")
        assert (error["messageId"], error["failed"]) == (echo["messageId"], ["history"])
        alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {"sdp": "x"}})
        await bob.expect("webrtc_offer")
        error = await alice.request({"type": "webrtc_offer", "toUser": "elsewhere"}, "error")
        assert error["payload"]["code"] == "unavailable"
        error = await alice.request({"type": "get_recent_messages", "room": "r"}, "error")
        assert error["payload"]["code"] == "unavailable"
        error = await alice.request({"type": "request_random_peer"}, "error")
        assert error["payload"]["code"] == "unavailable"
        assert await server.ready() == (503, {"status": "degraded", "store": "redis",
                                             "storeReachable": False, "connections": 2,
                                             "subscribed": False, "joined": False})

        lines = [formatEvent(e) for e in events]
        assert len([line for line in lines if "lost" in line]) == 1, lines
        assert not [line for line in lines if "failed" in line], lines

        own_redis.start()
        await server.settled()
        assert (await server.ready())[0] == 200
        history = await alice.request({"type": "get_recent_messages", "room": "r"},
                                      "recent_messages")
        assert history["payload"]["messages"] == []
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": "back"}})
        await alice.expect("chat_message")
        await bob.expect("chat_message")
        history = await bob.request({"type": "get_recent_messages", "room": "r"},
                                    "recent_messages")
        assert [m["payload"]["content"] for m in history["payload"]["messages"]] == ["back"]
    finally:
        globalLogPublisher.removeObserver(events.append)
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_redis_down_at_start(tmp_path):
    """A daemon whose Redis is down at start serves live traffic, then connects when it comes."""
    later = RedisServer(tmp_path)
    service = make_service(redis_config(later.port, **{"redis-timeout": "1"}), reactor)
    service.startService()
    server = Server(service)
    try:
        alice, bob = await server.connect_many("alice", "bob")
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "hi"}})
        await bob.expect("chat_message")
        assert (await server.ready())[0] == 503
        later.start()
        await server.settled()
        assert (await server.ready())[0] == 200
    finally:
        await stop_server(server)
        later.stop()


@pytest_twisted.ensureDeferred
async def test_scripts_reload_after_a_script_flush(own_redis):
    """
    A Redis whose script cache was flushed under a live connection gets the
    scripts again: the write lands. (The retry goes out after the NOSCRIPT
    reply, so a read sent meanwhile may run first; hence the wait.)
    """
    server = await redis_daemon(own_redis.port)
    try:
        alice = await server.connect("alice", room="r")
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": "1"}})
        await alice.expect("chat_message")
        own_redis.raw("SCRIPT", "FLUSH")
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": "2"}})
        await alice.expect("chat_message")
        await own_redis.becomes("2", "ZCARD", "room:messages:r")
        history = await alice.request({"type": "get_recent_messages", "room": "r"},
                                      "recent_messages")
        assert [m["payload"]["content"] for m in history["payload"]["messages"]] == ["2", "1"]
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_users_who_left_during_an_outage_are_forgotten(own_redis):
    """
    A user who disconnects while Redis is away is not left behind in it: when
    Redis returns, the daemon tells it who is still here.
    """
    server = await redis_daemon(own_redis.port, **{"redis-timeout": "1"})
    try:
        alice, carol = await server.connect_many("alice", "carol", room="r")
        await alice.expect("user_joined")
        carol.send({"type": "user_available_webrtc"})
        await carol.quiet()
        own_redis.stop()
        await until(lambda: not server.backend.connected)
        await carol.close()
        await alice.expect("user_left")
        own_redis.start()
        await until(lambda: server.backend.connected)
        await own_redis.becomes("alice", "SMEMBERS", "room:members:r")
        assert own_redis.raw("SMEMBERS", "user:rooms:alice") == "r"
        assert own_redis.raw("EXISTS", "presence:carol") == "0"
        await alice.request({"type": "request_random_peer"}, "no_peer_available")
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_direct_message_keys_cannot_collide(own_redis):
    """
    User ids may contain ':', the key separator: the conversation of ns:x
    and ns:y must not be the one of ns and x:ns:y, nor readable or writable
    through it. Ids without ':' keep the Go server's keys.
    """
    server = await redis_daemon(own_redis.port)
    try:
        nsx, nsy, ns = await server.connect_many("ns:x", "ns:y", "ns")
        nsx.send({"type": "chat_message", "toUser": "ns:y", "payload": {"content": "private"}})
        await nsx.expect("chat_message")
        await nsy.expect("chat_message")
        read = await ns.request({"type": "get_direct_messages",
                                 "payload": {"withUser": "x:ns:y"}}, "direct_messages")
        assert read["payload"]["messages"] == []
        ns.send({"type": "chat_message", "toUser": "x:ns:y", "payload": {"content": "forged"}})
        await ns.expect("chat_message")
        kept = await nsy.request({"type": "get_direct_messages",
                                  "payload": {"withUser": "ns:x"}}, "direct_messages")
        assert [m["payload"]["content"] for m in kept["payload"]["messages"]] == ["private"]
        alice, bob = await server.connect_many("alice", "bob")
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "hi"}})
        await alice.expect("chat_message")
        await own_redis.becomes("1", "EXISTS", "dm:alice:bob")
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_history_bytes_are_weighed_on_redis(own_redis):
    """On Redis, the byte quota is Redis's used memory, weighed as it connects and every 5 s."""
    server = await redis_daemon(own_redis.port, **{"max-history-bytes": "1"})
    try:
        await until(server.backend.streams.full)
        alice = await server.connect("alice")
        error = await alice.request({"type": "chat_message", "toUser": "bob",
                                     "payload": {"content": "x"}}, "error")
        assert error["payload"]["code"] == "quota_exceeded"
    finally:
        await stop_server(server)
