"""
Redis Sentinel (issue #26): the daemons follow the primary the sentinels
name, through a SIGKILLed primary and a manual failover, and stay honest
about what a failover may have lost.
"""

import itertools
import re

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from ..integration.test_resume import chat_until, say, write
from ..support.lifecycle_helpers import until
from ..support.sentinel import SentinelSetup
from ..support.servers import Server, make_config, stop_server


@pytest.fixture
def sentinels(tmp_path):
    """A primary, a replica and three sentinels of this test's own."""
    setup = SentinelSetup(tmp_path).start()
    yield setup
    setup.stop()


@pytest.fixture
def log():
    """The lines the daemons log during the test, formatted."""
    from twisted.logger import formatEvent, globalLogPublisher

    lines = []

    def heard(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(heard)
    yield lines
    globalLogPublisher.removeObserver(heard)


@pytest.fixture
def daemons(sentinels):
    """Start daemons that ask the sentinels where Redis is; stopped after the test."""
    started = []

    async def start(count=2, env=None, settled=True, **given):
        from twisted.internet import reactor

        from aleatoria.daemon.service import make_service

        given.setdefault("store", "redis")
        given.setdefault("redis-sentinel", sentinels.addresses)
        given.setdefault("node-ttl", "1")
        for _ in range(count):
            service = make_service(make_config(env, **given), reactor)
            service.startService()
            server = Server(service)
            started.append(server)
            if settled:
                await server.settled()
        return started[-count:]

    yield start
    for server in started:
        pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(server)))


def test_the_fixture_fails_over(sentinels):
    """The sentinels name the replica once the primary is SIGKILLed, and it takes writes."""
    first = sentinels.primary.port
    assert sentinels.named() == first
    sentinels.kill_primary()
    old, new = sentinels.await_new_primary()
    assert (old, new) == (first, sentinels.primary.port) and new != first
    assert sentinels.primary.raw("SET", "k", "v") == "OK"


async def serving(server, within=10.0):
    """Wait until C{server}'s /ready says 200, at most C{within} seconds."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + within
    while reactor.seconds() < deadline:
        code, body = await server.ready()
        if code == 200:
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"not ready within {within} s: {body}")


async def first(client, condition):
    """The first message from now on for which C{condition} holds."""
    while not condition(message := await client.next()):
        pass
    return message


async def drain(client):
    """Everything C{client} has received, up to the answer to one more request."""
    client.send({"type": "get_rooms"})
    found = []
    while (message := await client.next())["type"] != "rooms_list":
        found.append(message)
    return found


async def serve_across(one, two, tag):
    """A DM across the two daemons, a room message, a pairing: all work."""
    alice = await one.connect(f"alice{tag}", room=f"r{tag}")
    bob = await two.connect(f"bob{tag}", room=f"r{tag}")
    await first(alice, lambda m: m["type"] == "user_joined")
    alice.send({"type": "chat_message", "toUser": bob.user, "payload": {"content": "dm"}})
    got = await first(bob, lambda m: m["type"] == "chat_message")
    assert got["payload"] == {"content": "dm"} and got["fromUser"] == alice.user
    bob.send({"type": "chat_message", "room": f"r{tag}", "payload": {"content": "room"}})
    got = await first(alice, lambda m: m["type"] == "chat_message" and "room" in m)
    assert got["payload"] == {"content": "room"} and got["fromUser"] == bob.user
    bob.send({"type": "user_available_webrtc"})
    # a read of the store, answered after the offer (the same link, in
    # order): bob is in the pool before alice asks on the other daemon
    await bob.request({"type": "get_blocked"}, "blocked_users", skip={"chat_message"})
    alice.send({"type": "request_random_peer"})
    answer = await first(alice, lambda m: m["type"] in ("assign_role", "no_peer_available"))
    assert answer["type"] == "assign_role" and answer["payload"]["peerId"] == bob.user
    assert (await first(bob, lambda m: m["type"] == "assign_role"))["payload"][
        "peerId"] == alice.user
    return alice, bob


@pytest_twisted.ensureDeferred
async def test_daemons_follow_a_sigkilled_primary(sentinels, daemons, log):
    """
    Two daemons serve through the sentinels, a room message across them
    every 50 ms; the primary is SIGKILLed. Once the sentinels name the
    replica, both serve again within 2 s -- /ready 200, a DM across them, a
    room message, a pairing -- and say where the primary went. Every
    message of the traffic reached the other daemon's member, or its
    sender was told it may not have.
    """
    one, two = await daemons()
    await serve_across(one, two, "1")
    talker = await one.connect("talker", room="busy")
    listener = await two.connect("listener", room="busy")
    await first(talker, lambda m: m["type"] == "user_joined")
    traffic = LoopingCall(lambda: talker.send({
        "type": "chat_message", "room": "busy", "messageId": f"t{next(serial)}",
        "payload": {"content": "steady"}}))
    serial = itertools.count()
    traffic.start(0.05)
    try:
        await until(lambda: len(talker.inbox) > 5)
        sentinels.kill_primary()
        await until(lambda: not one.backend.connected)
        _, new = await deferToThread(sentinels.await_new_primary)
        for server in (one, two):
            await serving(server, within=2.0)
        await serve_across(one, two, "2")
    finally:
        traffic.stop()
    sent = {f"t{n}" for n in range(next(serial))}
    # the listener hears a stream in order: once it has "end", it has all it will
    talker.send({"type": "chat_message", "room": "busy", "messageId": "end",
                 "payload": {"content": "end"}})
    heard = set()
    while "end" not in heard:
        heard.add((await first(listener, lambda m: m["type"] == "chat_message"))["messageId"])
    refused = {m["payload"].get("messageId") for m in await drain(talker)
               if m["type"] == "error"}
    assert sent - heard <= refused, "lost silently: " + str(sorted(sent - heard - refused))
    assert heard & sent and sent - heard, "no traffic across the failover"
    moved = [line for line in log if line.startswith("Redis primary is now")]
    assert len(moved) == 2, moved
    assert all(re.fullmatch(rf"Redis primary is now 127\.0\.0\.1:{new} "
                            r"\(failover after \d+\.\d s\)", line) for line in moved)


def cut_replication(primary):
    """
    From now on the replica gets nothing more from the primary: what the
    primary acknowledges is lost in a failover (on loopback a replica is
    never far enough behind to lose anything by itself). Connections
    already open to the primary stay logged in.
    """
    primary.raw("CONFIG", "SET", "requirepass", "cut-off-the-replica")
    primary.login = ("default", "cut-off-the-replica")
    primary.raw("CLIENT", "KILL", "TYPE", "replica")


@pytest_twisted.ensureDeferred
async def test_a_resume_across_a_failover_that_lost_writes_is_not_recovered(
        sentinels, daemons):
    """
    Bob stands at offset 2 of a room and of his inbox; alice writes two
    more of each, acknowledged by a primary whose replica no longer gets
    them; the primary dies and the replica takes over without them; alice
    writes again. Bob's resume must not claim the gap is whole: the
    streams began a new epoch, and the new messages are numbered in it.
    """
    one, two = await daemons()
    alice = await one.connect("alice", room="r")
    bob = await two.connect("bob", room="r")
    await first(alice, lambda m: m["type"] == "user_joined")
    for n in range(2):
        say(alice, "r", f"kept {n}")
        write(alice, "bob", f"kept {n}")
    seen = [await first(bob, lambda m: m["type"] == "chat_message") for _ in range(4)]
    room_at = [m for m in seen if "room" in m][-1]
    inbox_at = [m for m in seen if "room" not in m][-1]
    await bob.close()
    await until(lambda: "bob" not in one.hub.rooms.membership.members("r"))

    cut_replication(sentinels.primary)
    for n in range(2):
        say(alice, "r", f"lost {n}")
        write(alice, "bob", f"lost {n}")
    for _ in range(4):
        await first(alice, lambda m: m["type"] == "chat_message")
    sentinels.kill_primary()
    await until(lambda: not one.backend.connected)
    await deferToThread(sentinels.await_new_primary)
    for server in (one, two):
        await serving(server)
    await alice.close()
    alice = await one.connect("alice", room="r")
    say(alice, "r", "after")
    write(alice, "bob", "after")
    after = [await first(alice, lambda m: m["type"] == "chat_message") for _ in range(2)]
    assert {m["epoch"] for m in after}.isdisjoint({room_at["epoch"], inbox_at["epoch"]})

    bob = await two.connect("bob")
    bob.send({"type": "resume", "payload": {
        "rooms": {"r": {"offset": room_at["offset"], "epoch": room_at["epoch"]}},
        "direct": {"offset": inbox_at["offset"], "epoch": inbox_at["epoch"]}}})
    chats, resumed = await chat_until(bob, "resumed")
    assert chats == []
    assert resumed["payload"]["rooms"]["r"]["recovered"] is False
    assert resumed["payload"]["direct"]["recovered"] is False
    assert resumed["payload"]["rooms"]["r"]["epoch"] != room_at["epoch"]


@pytest_twisted.ensureDeferred
async def test_a_manual_failover_moves_both_links_and_reports_once(sentinels, daemons, log):
    """
    SENTINEL FAILOVER, as an operator runs it: the old primary still says
    it is the primary for seconds, yet both daemons leave it on the
    sentinels' word and serve on the new one; the one reporting to Sentry
    sends one event for the failover, and none for the lost connection.
    """
    from ..support.sentry_receiver import SentryReceiver

    receiver = SentryReceiver()
    try:
        one, = await daemons(1, env={"SENTRY_DSN": receiver.dsn})
        two, = await daemons(1)
        await serve_across(one, two, "1")
        assert sentinels.failover() == "OK"
        _, new = await deferToThread(sentinels.await_new_primary)
        for server in (one, two):
            await until(lambda server=server: server.backend.commands.link.where
                        == f"127.0.0.1:{new}" and server.backend.bus.link.where
                        == f"127.0.0.1:{new}")
            await serving(server, within=2.0)
        await serve_across(one, two, "2")
        assert sentinels.primary.raw("GET", "presence:alice2") == one.backend.node
        await receiver.event(operation="redis_failover")
        await serve_across(one, two, "3")
        assert len(receiver.events(operation="redis_failover")) == 1
        assert receiver.events(operation="redis_connect") == []
        assert sum(line.startswith("Redis primary is now") for line in log) == 2
    finally:
        await receiver.stop()


@pytest_twisted.ensureDeferred
async def test_one_sentinel_of_three_down(sentinels, daemons):
    """With one sentinel down, the daemons still find the primary, and follow a failover."""
    sentinels.sentinels[0].stop()
    one, two = await daemons()
    await serve_across(one, two, "1")
    sentinels.kill_primary()
    await until(lambda: not one.backend.connected)
    await deferToThread(sentinels.await_new_primary)
    for server in (one, two):
        await serving(server, within=2.0)
    await serve_across(one, two, "2")


@pytest.fixture
def guarded_sentinels(tmp_path):
    """The setup, its sentinels asking a password of their clients."""
    setup = SentinelSetup(tmp_path, password="sentinels-only").start()
    yield setup
    setup.stop()


def connections(sentinel):
    """The connections C{sentinel} has accepted so far."""
    return int(dict(line.split(":", 1) for line in sentinel.ask("INFO", "stats").splitlines()
                    if ":" in line)["total_connections_received"])


@pytest_twisted.ensureDeferred
async def test_the_wrong_sentinel_password(guarded_sentinels, log):
    """
    A daemon given the wrong sentinel password says so in one line, is
    not ready, and keeps trying: once the sentinels take its password it
    serves.
    """
    from twisted.internet import reactor

    from aleatoria.daemon.service import make_service

    service = make_service(make_config(
        {"ALEATORIA_REDIS_SENTINEL_PASSWORD": "not-the-one"}, store="redis",
        **{"redis-sentinel": guarded_sentinels.addresses}), reactor)
    service.startService()
    server = Server(service)
    try:
        await until(lambda: any("sentinel did not complete our handshake" in line
                                for line in log))
        watched = guarded_sentinels.sentinels[0]
        before = await deferToThread(connections, watched)
        while await deferToThread(connections, watched) < before + 3:
            pass
        code, _ = await server.ready()
        assert code == 503
        for sentinel in guarded_sentinels.sentinels:
            sentinel.ask("ACL", "SETUSER", "default", ">not-the-one")
        await serving(server)
        assert sum("sentinel did not complete our handshake" in line for line in log) == 1
        assert "WRONGPASS" in next(line for line in log if "sentinel did not" in line)
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_master_name_the_sentinels_do_not_know_is_told_as_such(sentinels, log):
    """Not "Redis is unreachable": the sentinels answer, and name no primary of that name."""
    from twisted.internet import reactor

    from aleatoria.daemon.service import make_service

    service = make_service(make_config(
        store="redis", **{"redis-sentinel": sentinels.addresses,
                          "redis-sentinel-master": "nosuch", "redis-timeout": "0.5"}), reactor)
    service.startService()
    server = Server(service)
    try:
        await until(lambda: any("No Redis primary through the sentinels" in line
                                for line in log))
        line = next(line for line in log if "No Redis primary through the sentinels" in line)
        assert "'nosuch'" in line and "--redis-sentinel-master" in line
        assert not any("is unreachable (down" in line for line in log)
        code, _ = await server.ready()
        assert code == 503
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_pairing_lost_in_a_failover_leaves_no_ghost(sentinels, daemons):
    """
    Alice waits in the pool; carol is paired with her on a primary whose
    replica no longer gets its writes; the primary dies, and the new one
    still has alice waiting and no match. Once the daemons have told it
    who is in which call, dave asking for a peer does not get alice: nobody
    is told of two partners.
    """
    one, two = await daemons()
    alice = await one.connect("alice")
    carol = await two.connect("carol")
    dave = await two.connect("dave")
    alice.send({"type": "user_available_webrtc"})
    await alice.quiet()
    await sentinels.replica.becomes("1", "SISMEMBER", "available:webrtc", "alice")
    cut_replication(sentinels.primary)
    carol.send({"type": "request_random_peer"})
    assert (await carol.expect("assign_role"))["payload"]["peerId"] == "alice"
    assert (await alice.expect("assign_role"))["payload"]["peerId"] == "carol"
    sentinels.kill_primary()
    await until(lambda: not one.backend.connected)
    await deferToThread(sentinels.await_new_primary)
    for server in (one, two):
        await serving(server)
        await server.settled()
    dave.send({"type": "request_random_peer"})
    assert (await first(dave, lambda m: m["type"] in ("assign_role", "no_peer_available")))[
        "type"] == "no_peer_available"
    await alice.quiet()
    await carol.quiet()
    assert sentinels.primary.raw("HGET", "match:alice", "peer") == "carol"


@pytest_twisted.ensureDeferred
async def test_users_of_a_daemon_that_has_not_resynced_are_not_paired_with(own_redis):
    """
    A primary of another era (after a failover) may lack a pairing its
    users are in: until their daemon has told it their calls, nobody is
    paired with them; its heartbeat finds out, and it resyncs.
    """
    from ..support.servers import redis_daemon

    one = await redis_daemon(own_redis.port, **{"node-ttl": "60"})
    two = await redis_daemon(own_redis.port, **{"node-ttl": "60"})
    try:
        alice = await two.connect("alice")
        dave = await one.connect("dave")
        alice.send({"type": "user_available_webrtc"})
        await alice.quiet()
        node = f"node:{two.backend.node}"
        await deferToThread(own_redis.raw, "SET", node, "another-era", "KEEPTTL")
        reply = await dave.request({"type": "request_random_peer"}, "no_peer_available")
        assert reply["type"] == "no_peer_available"
        assert await two.backend.sessions.heartbeat() is False
        two.backend.sessions.resync()
        await own_redis.becomes(two.backend.commands.era, "GET", node)
        assert (await dave.request({"type": "request_random_peer"}, "assign_role"))[
            "payload"]["peerId"] == "alice"
    finally:
        await stop_server(one)
        await stop_server(two)


def _state(ip, port, epoch, flags="master"):
    return ["name", "mymaster", "ip", ip, "port", str(port), "flags", flags,
            "config-epoch", str(epoch)]


@pytest.mark.parametrize(("answers", "named"), [
    # a sentinel slow to hear of the failover is outvoted by the newer epoch
    ([(True, _state("10.0.0.1", 6379, 1)), (True, _state("10.0.0.2", 6380, 2))],
     ("10.0.0.2", 6380)),
    # a primary the sentinels see down is no answer; nor is a sentinel's error
    ([(True, _state("10.0.0.1", 6379, 3, "master,s_down")), (False, None),
      (True, _state("10.0.0.2", 6380, 2))], ("10.0.0.2", 6380)),
])
def test_the_newest_configuration_names_the_primary(answers, named):
    """Of the sentinels' answers, the newest configuration epoch of a primary that is up wins."""
    from twisted.internet import reactor

    from aleatoria.redis.sentinel import Sentinels

    sentinels = Sentinels([], "mymaster", reactor, None, timeout=1, retry_max=1)
    assert sentinels._newest(answers) == named


def test_no_primary_up_is_no_answer():
    """Sentinels that all see the primary down name none: the attempt fails, and is retried."""
    from twisted.internet import reactor

    from aleatoria.redis.sentinel import NoPrimary, Sentinels

    sentinels = Sentinels([], "mymaster", reactor, None, timeout=1, retry_max=1)
    with pytest.raises(NoPrimary):
        sentinels._newest([(True, _state("10.0.0.1", 6379, 1, "master,o_down"))])


@pytest_twisted.ensureDeferred
async def test_a_demoted_primary_is_left_at_its_first_readonly(own_redis, tmp_path, log):
    """
    Without sentinels to announce it (a managed Redis failing over behind
    one address), the primary is demoted to a replica under the daemon: the
    first write that meets READONLY fails as unavailable, both links leave,
    and the handshake refuses the replica -- /ready 503, and not one write
    lost to it -- until it is the primary again.
    """
    from ..support.redis_server import RedisServer
    from ..support.servers import redis_daemon

    (tmp_path / "other").mkdir()
    other = RedisServer(tmp_path / "other").start()
    server = await redis_daemon(own_redis.port)
    try:
        alice = await server.connect("alice", room="r")
        await deferToThread(own_redis.raw, "REPLICAOF", "127.0.0.1", str(other.port))
        alice.send({"type": "chat_message", "room": "r", "messageId": "m1",
                    "payload": {"content": "to a replica"}})
        error = await first(alice, lambda m: m["type"] == "error")
        assert error["payload"]["code"] == "unavailable"
        await until(lambda: not server.backend.connected and not server.backend.bus.subscribed)
        code, _ = await server.ready()
        assert code == 503
        await until(lambda: any("not the primary: role:slave" in line for line in log))
        await deferToThread(own_redis.raw, "REPLICAOF", "NO", "ONE")
        await serving(server)
        assert any("Leaving Redis at 127.0.0.1" in line for line in log)
    finally:
        await stop_server(server)
        other.stop()
