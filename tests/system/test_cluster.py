"""
Several daemons on one Redis behave as one server: delivery, rooms,
presence and pairing across daemons; a daemon killed with -9 leaves no
ghosts (issue: Redis store, items 4 and 5).
"""

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from ..support.calls import registering
from ..support.daemons import Spawned
from ..support.lifecycle_helpers import until
from ..support.pairing import answered, available, pairs_settled, partners
from ..support.servers import redis_daemon, stop_server
from ..support.wsclient import connect


async def daemon(redis_port, **given):
    given.setdefault("node-ttl", "1")
    return await redis_daemon(redis_port, **given)


@pytest.fixture
def two_daemons(own_redis):
    """
    Two daemons on one Redis, stopped (clients closed) after the test. Their
    connect() waits until Redis knows the user: a user who connected a
    moment ago is reachable from other daemons one round trip later.
    """
    servers = []

    async def start():
        servers.extend([await daemon(own_redis.port), await daemon(own_redis.port)])
        for server in servers:
            registering(server, own_redis)
        return servers

    yield start
    for server in servers:
        pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(server)))


@pytest_twisted.ensureDeferred
async def test_direct_messages_and_signaling_cross_daemons(two_daemons):
    """A DM, an offer and a hangup reach a user on the other daemon."""
    one, two = await two_daemons()
    alice = await one.connect("alice")
    bob = await two.connect("bob")
    alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "hi"}})
    delivered = await bob.expect("chat_message")
    assert delivered["fromUser"] == "alice" and delivered["incoming"] is True
    await alice.expect("chat_message")
    alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {"sdp": "x"}})
    assert (await bob.expect("webrtc_offer"))["payload"] == {"sdp": "x"}
    error = await alice.request({"type": "webrtc_offer", "toUser": "nobody"}, "error")
    assert error["payload"]["code"] == "user_offline"


@pytest_twisted.ensureDeferred
async def test_rooms_span_daemons(two_daemons):
    """Room chat, presence and the member list include members on the other daemon."""
    one, two = await two_daemons()
    bob = await two.connect("bob", room="r")
    alice = await one.connect("alice", room="r")
    joined = await bob.expect("user_joined")
    assert joined["payload"] == {"room": "r", "userId": "alice"} and joined["toUser"] == "bob"
    members = await alice.request({"type": "get_room_members", "room": "r"}, "room_members",
                                  skip={"user_joined"})
    assert members["payload"]["members"] == ["alice", "bob"]
    bob.send({"type": "chat_message", "room": "r", "payload": {"content": "across"}})
    delivered = await alice.expect("chat_message", skip={"user_joined"})
    assert delivered["payload"] == {"content": "across"}
    await bob.expect("chat_message")
    await bob.close()
    assert (await alice.expect("user_left"))["payload"] == {"room": "r", "userId": "bob"}


@pytest_twisted.ensureDeferred
async def test_reconnecting_to_another_daemon_replaces(two_daemons):
    """
    A user who connects to the second daemon is closed on the first with
    4001; the room sees the user (re)join, never leave after joining.
    """
    one, two = await two_daemons()
    old = await one.connect("alice", room="r")
    watcher = await one.connect("bob", room="r")
    await old.expect("user_joined")
    new = await two.connect("alice", room="r")
    assert await old.closed() == (4001, "replaced")
    await until(lambda: "alice" not in one.hub.connections)
    members = await new.request({"type": "get_room_members", "room": "r"}, "room_members",
                                skip={"user_joined"})
    assert members["payload"]["members"] == ["alice", "bob"]
    assert (await watcher.expect("user_joined"))["payload"]["userId"] == "alice"
    await watcher.quiet()


@pytest_twisted.ensureDeferred
async def test_daemons_find_each_other_again_after_an_outage(two_daemons, own_redis):
    """After Redis restarts, both daemons resubscribe and deliver across again."""
    one, two = await two_daemons()
    alice = await one.connect("alice")
    bob = await two.connect("bob")
    own_redis.stop()
    clusters = [s.backend.bus for s in (one, two)]
    await until(lambda: not any(c.subscribed for c in clusters))
    own_redis.start()
    await until(lambda: all(c.subscribed for c in clusters))
    await until(lambda: one.backend.connected and two.backend.connected)
    alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "again"}})
    assert (await bob.expect("chat_message"))["payload"] == {"content": "again"}


@pytest_twisted.ensureDeferred
async def test_pairing_race_across_daemons(two_daemons):
    """
    100 users, half on each daemon, all in the pool; 50 of them (25 per
    daemon) request at once. Nobody holds two partners, every pair agrees,
    and every requester is answered.
    """
    one, two = await two_daemons()
    clients = []
    for n in range(100):
        clients.append(await (one if n % 2 else two).connect(f"u{n:03d}"))
    for client in clients:
        client.send({"type": "user_available_webrtc"})
    for client in clients:
        await client.quiet()
    requesters = clients[:50]
    for client in requesters:
        client.send({"type": "request_random_peer"})
    await gatherResults([Deferred.fromCoroutine(answered(c)) for c in requesters])
    await until(lambda: pairs_settled(clients))

    found = partners(clients)
    assert len(found) >= 50
    cross = sum(1 for u, (p, _) in found.items() if (int(u[1:]) - int(p[1:])) % 2)
    assert cross > 0, "no pair spanned the two daemons"




@pytest_twisted.ensureDeferred
async def test_killed_daemon_leaves_no_ghosts(own_redis, tmp_path):
    """
    A daemon killed with -9 leaves its users in Redis. They are never picked
    as peers, never listed as members, and once reaped are gone from the
    keys; a live user in a call with one of them is told the call is over,
    and the members of their rooms that they left.
    """
    victim = Spawned(own_redis.port, tmp_path, "--node-ttl", "1")
    survivor = None
    try:
        port = victim.port
        ghosts = [await connect(port, user, "r", origin=None) for user in ("g1", "g2", "g3")]
        for ghost in ghosts:
            ghost.send({"type": "user_available_webrtc"})
            ghost.send({"type": "get_rooms"})
            while (await ghost.next())["type"] != "rooms_list":
                pass
        await own_redis.becomes("3", "SCARD", "available:webrtc")

        survivor = await daemon(own_redis.port, **{"call-grace": "0.5"})
        alice = await survivor.connect("alice", room="r")
        await alice.request({"type": "request_random_peer"}, "assign_role")
        victim.kill()

        heard = [await alice.next() for _ in range(4)]
        (hangup,) = [m for m in heard if m["type"] == "hangup"]
        assert hangup["payload"] == {"reason": "disconnected"}
        left = {m["payload"]["userId"] for m in heard if m["type"] == "user_left"}
        assert left == {"g1", "g2", "g3"}, heard
        await available(alice)
        bob = await survivor.connect("bob", room="r")
        assert (await alice.expect("user_joined"))["payload"]["userId"] == "bob"
        await bob.request({"type": "request_random_peer"}, "assign_role")
        assert (await alice.expect("assign_role"))["payload"]["peerId"] == "bob"
        members = await bob.request({"type": "get_room_members", "room": "r"}, "room_members")
        assert members["payload"]["members"] == ["alice", "bob"]
        assert sorted(own_redis.raw("SMEMBERS", "room:members:r").split()) == ["alice", "bob"]
        assert own_redis.raw("SCARD", "available:webrtc") == "0"
        assert own_redis.raw("KEYS", "presence:g*") == ""
    finally:
        victim.kill()
        if survivor is not None:
            await stop_server(survivor)


@pytest_twisted.ensureDeferred
async def test_lost_releases_heal_within_a_heartbeat(own_redis):
    """
    A session the daemon no longer has but Redis still lists (a release
    lost to a timeout) is ended at the next periodic resync.
    """
    server = await daemon(own_redis.port)
    try:
        node = server.backend.node
        own_redis.raw("SET", "presence:lost", node)
        own_redis.raw("SADD", f"node:{node}:users", "lost")
        own_redis.raw("SADD", "available:webrtc", "lost")
        own_redis.raw("SADD", "room:members:r", "lost")
        own_redis.raw("SADD", "user:rooms:lost", "r")
        await own_redis.becomes("0", "EXISTS", "presence:lost")
        assert own_redis.raw("SCARD", "available:webrtc") == "0"
        assert own_redis.raw("SCARD", "room:members:r") == "0"
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_reconnecting_to_another_daemon_does_not_refill_the_budget(own_redis):
    """
    A user who spends its message budget on one daemon and reconnects to
    another finds it spent there too (issue: security, item 1).
    """
    limits = {"rate-limit": "0.01", "rate-burst": "5"}
    one = await daemon(own_redis.port, **limits)
    two = await daemon(own_redis.port, **limits)
    try:
        alice = await one.connect("alice")
        for _ in range(5):
            await alice.request({"type": "get_rooms"}, "rooms_list")
        await alice.close()
        await own_redis.becomes("0", "EXISTS", "presence:alice")
        again = await two.connect("alice")
        await own_redis.becomes(two.backend.node, "GET", "presence:alice")  # claimed there
        refused = await again.request({"type": "get_rooms"}, "error")
        assert refused["payload"]["code"] == "rate_limited"
    finally:
        await stop_server(one)
        await stop_server(two)


@pytest_twisted.ensureDeferred
async def test_a_user_in_a_call_hears_only_its_partner_across_daemons(two_daemons):
    """
    Paired across daemons, the partner's signaling passes and a stranger's
    -- from the partner's daemon -- gets busy.
    """
    one, two = await two_daemons()
    alice, mallory = await one.connect("alice"), await one.connect("mallory")
    bob = await two.connect("bob")
    await available(bob)
    alice.send({"type": "request_random_peer"})
    assert (await alice.expect("assign_role"))["payload"]["peerId"] == "bob"
    await bob.expect("assign_role")
    for _ in range(3):
        alice.send({"type": "webrtc_candidate", "toUser": "bob", "payload": {"c": 1}})
        assert (await bob.expect("webrtc_candidate"))["fromUser"] == "alice"
    error = await mallory.request({"type": "webrtc_offer", "toUser": "bob", "payload": {}},
                                  "error")
    assert error["payload"]["code"] == "busy"
    await bob.quiet()
