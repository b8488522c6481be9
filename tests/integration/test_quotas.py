"""
Shares of what is kept, per user and per client address (issue 22, items
4 and 9): bytes and messages stored an hour, conversations started, rooms
opened. Real daemons, real clients; other addresses come through a
trusted proxy's X-Forwarded-For.
"""

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from ..support.servers import ORIGIN, start_server, stop_server
from ..support.wsclient import connect
from .test_auth import SECRET, token

ATTACKER = "203.0.113.7"
HONEST = "198.51.100.20"


@pytest.fixture
def limited():
    """A daemon behind a trusted proxy on loopback, with the given limits."""
    servers = []

    async def start(env=None, **given):
        given.setdefault("trusted-proxy", "127.0.0.1")
        servers.append(await start_server(env, **given))
        return servers[-1]

    yield start
    for server in servers:
        pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(server)))


def from_address(address):
    return {"headers": {"X-Forwarded-For": address}}


def dm(to, content):
    return {"type": "chat_message", "toUser": to, "payload": {"content": content}}


def to_room(room, content):
    return {"type": "chat_message", "room": room, "payload": {"content": content}}


async def answer(client, message):
    """Send C{message}; its echo, or the code of the error it got."""
    client.send(message)
    reply = await client.next()
    return reply["payload"]["code"] if reply["type"] == "error" else "accepted"


@pytest_twisted.ensureDeferred
async def test_one_address_cannot_fill_the_history(limited):
    """
    The issue's attack: ten made-up ids on one address send 4 000-byte
    direct messages to made-up users. They are stopped at the address's
    share, --address-stored-bytes-per-hour (here 40 000): 9 accepted
    (36 000 bytes of text; each weighs its text and some 130 bytes of
    envelope, once, although the store keeps three copies), then
    quota_exceeded, and what is refused is kept nowhere. A user of another
    address goes on writing.
    """
    share = 40_000
    server = await limited(**{"address-stored-bytes-per-hour": str(share)})
    ids = [await server.connect(f"m{n}", **from_address(ATTACKER)) for n in range(10)]
    text = "x" * 4000
    outcomes = [await answer(ids[n % 10], dm(f"ghost{n}", text)) for n in range(30)]
    accepted = outcomes.count("accepted")
    assert outcomes == ["accepted"] * accepted + ["quota_exceeded"] * (30 - accepted)
    assert accepted * len(text) <= share and accepted == 9
    for n in (accepted, 29):
        kept = await ids[n % 10].request(
            {"type": "get_direct_messages", "payload": {"withUser": f"ghost{n}"}},
            "direct_messages")
        assert kept["payload"]["messages"] == []

    alice = await server.connect("alice", **from_address(HONEST))
    bob = await server.connect("bob", **from_address(HONEST))
    for _ in range(3):
        assert await answer(alice, dm("bob", text)) == "accepted"
        assert (await bob.expect("chat_message"))["payload"]["content"] == text
    assert await answer(alice, to_room("home-alice", "still here")) == "accepted"


@pytest_twisted.ensureDeferred
async def test_a_direct_message_weighs_once(limited):
    """
    A user's share of bytes, --stored-bytes-per-hour (here 10 000), holds
    two direct messages of 4 000 bytes -- each weighed once, not by the
    three copies the store keeps -- and refuses the third: quota_exceeded,
    not delivered.
    """
    server = await limited(**{"stored-bytes-per-hour": "10000"})
    alice, bob = await server.connect_many("alice", "bob")
    text = "y" * 4000
    for _ in range(2):
        assert await answer(alice, dm("bob", text)) == "accepted"
        await bob.expect("chat_message")
    assert await answer(alice, dm("bob", text)) == "quota_exceeded"
    assert await answer(alice, dm("bob", "a short one fits")) == "accepted"
    assert (await bob.expect("chat_message"))["payload"]["content"] == "a short one fits"
    await bob.quiet()


async def _client(server, policy, name):
    """C{name}, from loopback, as the identity C{policy} makes it; its id, its client."""
    if policy == "declared":
        return name, await server.connect(name, room=f"room-{name}")
    if policy == "jwt":
        client = await connect(server.port, None, f"room-{name}", origin=ORIGIN,
                               extra=f"&token={token(sub=name)}")
        return name, client
    client = await connect(server.port, None, f"room-{name}", origin=ORIGIN)
    return (await client.expect("welcome"))["payload"]["userId"], client


@pytest.mark.parametrize("policy, env, counted", [
    pytest.param("declared", {}, True, id="declared-ids"),
    pytest.param("anonymous", {"ALEATORIA_ANONYMOUS_SECRET": "s" * 32}, True, id="anonymous"),
    pytest.param("jwt", {"ALEATORIA_JWT_SECRET": SECRET}, False, id="jwt"),
])
@pytest_twisted.ensureDeferred
async def test_the_hourly_quota_counts_per_address_when_ids_are_free(
        limited, policy, env, counted):
    """
    Where a client names itself (the default) or the server names every
    new client (--anonymous), a new id costs nothing: the users of one
    address share --address-stored-per-hour and
    --address-conversations-per-hour. With tokens ids are the app's, and
    each user has only its own quota. A refused message spends nothing.
    """
    server = await limited(env, anonymous=policy == "anonymous", **{
        "address-stored-per-hour": "3", "address-conversations-per-hour": "1"})
    one, first = await _client(server, policy, "u1")
    two, second = await _client(server, policy, "u2")
    try:
        assert await answer(first, to_room("room-u1", "1")) == "accepted"
        assert await answer(first, dm("ghost1", "2")) == "accepted"
        expected = "accepted" if not counted else "quota_exceeded"
        assert await answer(second, dm("ghost2", "new conversation")) == expected
        assert await answer(second, to_room("room-u2", "3")) == "accepted"
        assert await answer(second, to_room("room-u2", "4")) == expected
    finally:
        await first.close()
        await second.close()
    assert one != two


@pytest_twisted.ensureDeferred
async def test_rooms_opened_per_address(limited):
    """
    An address may have opened --max-rooms-per-address rooms (here 3) that
    still have members; one more is quota_exceeded. Joining a room that
    has members opens nothing, for anybody; another address opens rooms
    all the same. A room counts for the address that opened it until it
    is empty -- then that address may open another.
    """
    server = await limited(**{"max-rooms-per-address": "3"})
    mallory = await server.connect("mallory", room="m0", **from_address(ATTACKER))
    for room in ("m1", "m2"):
        await mallory.request({"type": "join_room", "room": room}, "room_joined")
    error = await mallory.request({"type": "join_room", "room": "m3"}, "error")
    assert error["payload"]["code"] == "quota_exceeded"

    alice = await server.connect("alice", room="a0", **from_address(HONEST))
    for room in ("m1", "a1", "a2"):
        await alice.request({"type": "join_room", "room": room}, "room_joined")
    sybil = await server.connect("sybil", room="m2", **from_address(ATTACKER))
    await sybil.request({"type": "join_room", "room": "a0"}, "room_joined")
    error = await sybil.request({"type": "join_room", "room": "m3"}, "error")
    assert error["payload"]["code"] == "quota_exceeded"

    presence = ("user_joined", "user_left")
    await mallory.request({"type": "leave_room", "room": "m1"}, "room_left",
                          skip=presence)  # alice stays in it
    error = await mallory.request({"type": "join_room", "room": "m3"}, "error")
    assert error["payload"]["code"] == "quota_exceeded"
    await sybil.close()
    await mallory.request({"type": "leave_room", "room": "m2"}, "room_left", skip=presence)
    await mallory.request({"type": "join_room", "room": "m3"}, "room_joined", skip=presence)
    assert "m2" not in server.hub.room_names()


def test_by_default_one_address_fills_no_more_than_a_share_of_the_history_in_a_day():
    """
    With the default settings, on a fake clock: the ids of one address
    writing 4 000-byte direct messages (some 4 150 bytes encoded) as fast
    as they are let, for 24 hours -- by then the first have expired --
    have 25 hours' worth of --address-stored-bytes-per-hour kept: 210 MB,
    630 MB in the store's three copies, below the default
    --max-history-bytes of 1 GiB. An honest heavy user on another address
    -- a 1 KB message every 4 s all day -- is never refused.
    """
    from twisted.internet.task import Clock

    from aleatoria.daemon import config
    from aleatoria.daemon.service import quotas
    from aleatoria.domain.limits import OverQuota

    defaults = config.resolve({}, {})
    clock = Clock()
    shares = quotas(defaults, clock.seconds)
    kept = attempts = 0
    for _ in range(24 * 3600 // 4):
        shares.charge("alice", HONEST, 1150, to_user="bob")
        while True:
            attempts += 1
            sender = f"m{attempts % 10}"
            try:
                shares.charge(sender, ATTACKER, 4150, to_user=f"ghost-{sender}-{attempts % 50}")
            except OverQuota as short:
                assert (short.whose, short.what) == ("address", "bytes")
                break
            kept += 4150
        clock.advance(4)
    assert kept <= 25 * defaults.address_stored_bytes_per_hour
    assert 3 * kept < defaults.max_history_bytes


@pytest_twisted.ensureDeferred
async def test_the_server_api_has_no_share():
    """
    The server API speaks as C{system}, from no client address: what it
    posts counts against no share, while a client's is used up already.
    """
    from ..support.api import api_server, call

    one = {what: "1" for what in ("stored-per-hour", "stored-bytes-per-hour",
                                  "address-stored-per-hour", "address-stored-bytes-per-hour")}
    server = await api_server(**one)
    try:
        bob = await server.connect("bob", room="r")
        assert await answer(bob, to_room("r", "mine")) == "quota_exceeded"
        for n in range(3):
            status, _, _ = await call(server, "POST", "/api/v1/publish",
                                      {"room": "r", "content": f"news {n}"})
            assert status == 200
            status, _, _ = await call(server, "POST", "/api/v1/send",
                                      {"toUser": "bob", "content": f"note {n}"})
            assert status == 200
        history = await bob.request({"type": "get_direct_messages",
                                     "payload": {"withUser": "system"}}, "direct_messages",
                                    skip=("chat_message",))
        assert len(history["payload"]["messages"]) == 3
    finally:
        await stop_server(server)
