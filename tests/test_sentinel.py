"""
Redis Sentinel (issue #26): the daemons follow the primary the sentinels
name, through a SIGKILLed primary and a manual failover, and stay honest
about what a failover may have lost.
"""

import re

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from .conftest import Server, make_config, stop_server
from .lifecycle_helpers import until
from .sentinel import SentinelSetup
from .test_resume import chat_until, say, write


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
    await bob.request({"type": "get_rooms"}, "rooms_list", skip={"chat_message"})
    alice.send({"type": "request_random_peer"})
    assert (await first(alice, lambda m: m["type"] == "assign_role"))["payload"][
        "peerId"] == bob.user
    assert (await first(bob, lambda m: m["type"] == "assign_role"))["payload"][
        "peerId"] == alice.user
    return alice, bob


@pytest_twisted.ensureDeferred
async def test_daemons_follow_a_sigkilled_primary(sentinels, daemons, log):
    """
    Two daemons serve through the sentinels; the primary is SIGKILLed. Once
    the sentinels name the replica, both serve again -- /ready 200, a DM
    across them, a room message, a pairing -- and say where the primary went.
    """
    one, two = await daemons()
    await serve_across(one, two, "1")
    sentinels.kill_primary()
    await until(lambda: not one.backend.connected)
    _, new = await deferToThread(sentinels.await_new_primary)
    for server in (one, two):
        await serving(server, within=2.0)
    await serve_across(one, two, "2")
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
