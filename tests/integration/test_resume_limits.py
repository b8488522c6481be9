"""
What a resume may cost, and what it may not (issue 22, items 1 and 8): a
resume that cannot recover reads no history, one that can reads only its
gap; it names no more rooms than a connection may be in, no offset past
2^53, and is charged against the message rate; reads under way are
bounded; a slow Redis reply fails its own request only; and a replay
follows the client's reading, however much it missed.
"""

import re
import time

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from aleatoria.domain.events import DirectMessage, RoomMessage
from aleatoria.domain.values import Place

from ..support.lifecycle_helpers import until
from ..support.servers import redis_daemon, start_server, stop_server
from .test_resume import chat_until

_clock = iter(range(time.time_ns(), time.time_ns() + 10**15, 1000))


def sleep(seconds):
    return deferLater(reactor, seconds, lambda: None)


async def fill(backend, room, count, size=100, at=None):
    """C{count} messages of about C{size} bytes into C{room}'s stream; the last one's place."""
    streams = backend.streams
    for n in range(count):
        await streams.post_room(RoomMessage(
            room, "alice", f"{n} " + "x" * size, f"{room}-{n}",
            f"2026-12-01T00:00:00.{n:09d}Z"), next(_clock) if at is None else at[n])
    since = await streams.room_since(room, 2**53, "")
    return Place(since.last, since.epoch)


def wrote(sender, n):
    return DirectMessage(sender, "alice", f"{n}", f"{sender}-{n}",
                         f"2026-12-01T00:00:00.{n:09d}Z")


def redis_sent(redis):
    """Bytes Redis has written to its clients, in all."""
    return int(re.search(r"total_net_output_bytes:(\d+)", redis.raw("INFO", "stats"))[1])


def commands_run(redis):
    """Commands Redis has run (those inside scripts included), by name."""
    return {m[1]: int(m[2]) for m in re.finditer(r"cmdstat_([\w|]+):calls=(\d+)",
                                                  redis.raw("INFO", "commandstats"))}


async def resumed_after(client, rooms=None, direct=None):
    payload = {"rooms": rooms or {}}
    if direct is not None:
        payload["direct"] = direct
    client.send({"type": "resume", "payload": payload})
    return await chat_until(client, "resumed")


@pytest_twisted.ensureDeferred
async def test_a_resume_reads_only_what_it_replays(own_redis):
    """
    Across ten rooms full of history, a resume that cannot recover --
    another epoch, a gap past the kept history, an offset past the last --
    makes Redis send less than one message per room; an exact one, about
    the messages it replays (before: up to the whole kept history per room,
    decoded inside Redis, whatever the answer).
    """
    server = await redis_daemon(own_redis.port, **{"history-size": "40"})
    try:
        rooms = [f"r{n}" for n in range(10)]
        ends = {room: await fill(server.backend, room, 60, size=1000) for room in rooms}
        entry = len(own_redis.raw("ZRANGE", "room:messages:r0", "0", "0"))
        alice = await server.connect("alice", room="r0")
        await resumed_after(alice, {room: {"offset": 0} for room in rooms})

        async def cost(offset, epoch):
            before = redis_sent(own_redis)
            chats, resumed = await resumed_after(alice, {
                room: {"offset": offset(end), "epoch": epoch(end)} for room, end in ends.items()})
            return redis_sent(own_redis) - before, chats, resumed["payload"]["rooms"]

        for offset, epoch in ((lambda end: end.offset - 30, lambda end: "another"),
                              (lambda end: 5, lambda end: end.epoch),
                              (lambda end: end.offset + 100, lambda end: end.epoch)):
            sent, chats, answers = await cost(offset, epoch)
            assert chats == [] and not any(a["recovered"] for a in answers.values())
            assert sent < len(rooms) * entry, (sent, entry)

        sent, chats, answers = await cost(lambda end: end.offset - 5, lambda end: end.epoch)
        assert all(a["recovered"] for a in answers.values()) and len(chats) == 5 * len(rooms)
        assert sent < len(rooms) * 7 * entry, (sent, entry)
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_streams_kept_before_the_index_answer_exactly_or_not_at_all(own_redis):
    """
    A room whose kept messages have no time in the index (kept by an older
    version, or the index lost) is not recovered -- never replayed wrong;
    where the index has the gap's times, the replay is exact.
    """
    server = await redis_daemon(own_redis.port)
    try:
        ends = {room: await fill(server.backend, room, 20) for room in ("old", "half", "new")}
        own_redis.raw("DEL", "room:times:old")
        own_redis.raw("HDEL", "room:times:half", *map(str, range(1, 11)))
        alice = await server.connect("alice")
        chats, resumed = await resumed_after(alice, {
            room: {"offset": 5, "epoch": end.epoch} for room, end in ends.items()})
        answers = resumed["payload"]["rooms"]
        assert not answers["old"]["recovered"] and not answers["half"]["recovered"]
        assert answers["new"]["recovered"] and answers["new"]["offset"] == 20
        assert [(m["room"], m["offset"]) for m in chats] == [("new", n) for n in range(6, 21)]
        chats, resumed = await resumed_after(alice, {
            "half": {"offset": 12, "epoch": ends["half"].epoch}})
        assert resumed["payload"]["rooms"]["half"]["recovered"]
        assert [m["offset"] for m in chats] == list(range(13, 21))
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_clocks_apart_replay_exactly_or_not_at_all(redis_server, redis_prefix):
    """
    Two daemons a little apart stamp a room's messages out of the order of
    their offsets: a replay still reads only the gap's time range and sends
    exactly the gap, in order. A message one far behind stamped so early
    that the history's cap dropped it makes the gap incomplete, never wrong.
    """
    from aleatoria.daemon.backends import make_backend
    from aleatoria.ops.reporting import Reporter

    from ..support.servers import redis_config, started

    backend = await started(make_backend(redis_config(redis_server.port, **{
        "redis-prefix": redis_prefix, "history-size": "10"}), reactor,
        Reporter(clock=reactor).daemon))
    try:
        apart = [10_000 + 1000 * n + (-5 if n % 2 else 5) for n in range(10)]
        end = await fill(backend, "apart", 10, at=apart)
        since = await backend.streams.room_since("apart", 3, end.epoch)
        assert since.complete and [m.offset for m in since.messages] == list(range(4, 11))
        behind = [10_000 + 1000 * n for n in range(10)] + [500]
        end = await fill(backend, "behind", 11, at=behind)
        since = await backend.streams.room_since("behind", 8, end.epoch)
        assert not since.complete and [m.offset for m in since.messages] == [9, 10]
    finally:
        await backend.stopService()


@pytest_twisted.ensureDeferred
async def test_offsets_outside_0_to_2_53_are_refused_before_the_store(own_redis):
    """
    An offset below 0 or past 2^53 (JavaScript's exact integers), or an
    epoch longer than any the server makes, is refused as it is decoded:
    error_response, and the store never sees it (before, -10^17 made Redis
    answer an error the daemon took for a bug, per frame).
    """
    server = await redis_daemon(own_redis.port)
    try:
        alice = await server.connect("alice")
        for position in ({"offset": -100000000000000000}, {"offset": -1},
                         {"offset": 2**53 + 1}, {"offset": 1, "epoch": "e" * 65}):
            answer = await alice.request({"type": "resume", "payload": {
                "rooms": {"r": position}}}, "error_response")
            assert "$.payload.rooms" in answer["payload"]["details"]
        answer = await alice.request({"type": "resume", "payload": {
            "rooms": {"r": {"offset": 2**53}}, "direct": {"offset": 2**53}}}, "resumed",
            skip=("chat_message",))
        assert answer["payload"]["rooms"]["r"]["recovered"] is False
        assert answer["payload"]["direct"] == {"recovered": False, "offset": 0, "epoch": ""}
        await alice.quiet()
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_resume_naming_more_rooms_than_max_rooms_is_refused_whole():
    """Past --max-rooms, the whole resume is invalid_message: no room is joined."""
    server = await start_server(**{"max-rooms": "3"})
    try:
        alice = await server.connect("alice")
        answer = await alice.request({"type": "resume", "messageId": "big", "payload": {
            "rooms": {f"r{n}": {"offset": 0} for n in range(4)}}}, "error")
        assert answer["payload"]["code"] == "invalid_message"
        assert answer["payload"]["messageId"] == "big"
        rooms = await alice.request({"type": "get_rooms"}, "rooms_list")
        assert rooms["payload"]["rooms"] == ["home-alice"]
        answer = await alice.request({"type": "resume", "payload": {
            "rooms": {f"r{n}": {"offset": 0} for n in range(3)}}}, "resumed")
        assert answer["payload"]["rooms"]["r2"]["code"] == "forbidden"
    finally:
        await stop_server(server)


async def allowed(client):
    """How many requests C{client} may send at once now, before one is rate_limited."""
    count = 0
    while True:
        client.send({"type": "get_rooms"})
        answer = await client.next()
        if answer["type"] == "error":
            assert answer["payload"]["code"] == "rate_limited"
            return count
        count += 1


@pytest_twisted.ensureDeferred
async def test_a_resume_costs_a_message_per_stream_and_per_hundred_replayed():
    """
    A resume naming three rooms and the inbox, replaying 250 messages, costs
    the user's rate 4 + 2 messages, and its address's as much: what is left
    of the bursts says so (before: one message, whatever it asked).
    """
    for address_burst, who, left in ((1000, "alice", 10 - 6), (14, "bob", 14 - 6)):
        server = await start_server(**{
            "rate-limit": "0.001", "rate-burst": "10", "address-rate": "0.001",
            "address-burst": str(address_burst), "history-size": "300"})
        try:
            await fill(server.backend, "r0", 250)
            alice = await server.connect("alice")
            chats, resumed = await resumed_after(
                alice, {room: {"offset": 0} for room in ("r0", "r1", "r2")}, {"offset": 0})
            assert len(chats) == 250 and resumed["payload"]["rooms"]["r0"]["recovered"]
            client = alice if who == "alice" else await server.connect(who)
            assert await allowed(client) == left
        finally:
            await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_reads_under_way_are_bounded_per_user_and_per_address(own_redis):
    """
    While Redis hangs, a user may have --max-reads requests that read the
    store under way, an address --max-reads-per-ip: one more is answered
    rate_limited with retryAfter at once, and the rest in their time.
    """
    server = await redis_daemon(own_redis.port, **{
        "redis-timeout": "1", "max-reads": "2", "max-reads-per-ip": "3"})
    try:
        alice = await server.connect("alice")
        bob = await server.connect("bob")
        own_redis.pause()
        try:
            for n in range(3):
                alice.send({"type": "get_recent_messages", "room": "home-alice",
                            "messageId": f"a{n}"})
            refused = (await alice.expect("error"))["payload"]
            assert (refused["code"], refused["messageId"], refused["retryAfter"]) == (
                "rate_limited", "a2", 1000)
            for n in range(2):
                bob.send({"type": "get_conversations", "messageId": f"b{n}"})
            refused = (await bob.expect("error"))["payload"]
            assert (refused["code"], refused["messageId"]) == ("rate_limited", "b1")
        finally:
            own_redis.resume()
        for client, ids in ((alice, {"a0", "a1"}), (bob, {"b0"})):
            answered = set()
            while answered != ids:
                answer = await client.next()
                answered.add(answer.get("messageId") or answer["payload"]["messageId"])
        await server.settled()
        await alice.request({"type": "get_recent_messages", "room": "home-alice"},
                            "recent_messages")
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_marking_read_costs_the_same_in_a_long_conversation(own_redis):
    """
    mark_read runs as many Redis commands for a conversation of 400 unread
    messages as for one of 10: it reads an index of the unread offsets, not
    the conversation's history (before: 50 messages per LRANGE, each
    decoded).
    """
    server = await redis_daemon(own_redis.port, **{"node-ttl": "60"})
    try:
        for partner, count in (("short", 10), ("long", 400)):
            for n in range(count):
                await server.backend.streams.post_direct(wrote(partner, n))
        alice = await server.connect("alice")
        costs = {}
        for partner, first in (("short", 1), ("long", 11)):
            before = commands_run(own_redis)
            answer = await alice.request({"type": "mark_read", "payload": {
                "withUser": partner, "offset": first}}, "marked_read")
            after = commands_run(own_redis)
            costs[partner] = sum(after.values()) - sum(before.values())
            assert answer["payload"]["unread"] == {"short": 9, "long": 399}[partner]
        assert costs["short"] == costs["long"], costs
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_unread_counts_kept_before_the_index_never_drop_too_far(own_redis):
    """
    Unread messages kept before the index of their offsets was (its key
    gone): marking part of them read leaves the count as it was; marking
    up to the conversation's last message clears it.
    """
    server = await redis_daemon(own_redis.port)
    try:
        for n in range(5):
            await server.backend.streams.post_direct(wrote("bob", n))
        own_redis.raw("DEL", "inbox:incoming:alice:bob")
        assert await server.backend.streams.mark_read("alice", "bob", 2) == 5
        assert await server.backend.streams.mark_read("alice", "bob", 5) == 0
    finally:
        await stop_server(server)


BUSY = """
local start = redis.call('TIME')
while true do
  local now = redis.call('TIME')
  if (now[1] - start[1]) * 1000000 + now[2] - start[2] > tonumber(ARGV[1]) then break end
end
"""


def command_clients(redis):
    """The ids of the clients on normal connections, but redis-cli's own."""
    return {line.split()[0] for line in redis.raw("CLIENT", "LIST", "TYPE", "normal").splitlines()
            if "cmd=client|list" not in line}


@pytest_twisted.ensureDeferred
async def test_a_slow_reply_fails_its_own_request_only(own_redis):
    """
    Redis busy 1.7 s in a script (a redis-cli of its own): a history request
    sent meanwhile is answered unavailable after --redis-timeout (1 s); the
    daemon keeps its connection (the same CLIENT ID: before, txredisapi's
    reply timeout cut it, and every user's requests with it), drops the late
    reply, and answers the next request with its own.
    """
    server = await redis_daemon(own_redis.port, **{"redis-timeout": "1"})
    try:
        alice = await server.connect("alice", room="r")
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": "kept"}})
        await alice.expect("chat_message")
        clients = command_clients(own_redis)
        busy = deferToThread(own_redis.raw, "EVAL", BUSY, "0", "1700000")
        await sleep(0.2)
        answer = await alice.request({"type": "get_recent_messages", "room": "r"}, "error")
        assert answer["payload"]["code"] == "unavailable"
        await busy
        await sleep(0.5)
        assert command_clients(own_redis) == clients
        history = await alice.request({"type": "get_recent_messages", "room": "r"},
                                      "recent_messages")
        assert [m["payload"]["content"] for m in history["payload"]["messages"]] == ["kept"]
        assert server.backend.connected
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_replay_follows_the_client_reading():
    """
    A client resuming ten rooms full of history -- far more than may wait
    for it (--outbound-messages 16) -- is not dropped: it gets every message
    once, in order, and what was said live meanwhile after the replay
    (before: the replay was queued at once, and the client dropped as not
    reading).
    """
    server = await start_server(**{"history-size": "300", "outbound-messages": "16",
                                   "max-rooms": "11"})
    try:
        rooms = [f"r{n}" for n in range(10)]
        for room in rooms:
            await fill(server.backend, room, 300, size=500)
        alice = await server.connect("alice", room="r0")
        bob = await server.connect("bob")
        bob.send({"type": "resume", "payload": {"rooms": {room: {"offset": 0} for room in rooms}}})
        first = await bob.expect("chat_message")
        for n in range(5):
            alice.send({"type": "chat_message", "room": "r0", "payload": {"content": f"live {n}"}})
        chats, resumed = await chat_until(bob, "resumed")
        chats.insert(0, first)
        while sum(m["room"] == "r0" for m in chats) < 305:
            chats.append(await bob.expect("chat_message"))
        for room in rooms:
            offsets = [m["offset"] for m in chats if m["room"] == room]
            assert offsets == list(range(1, 306 if room == "r0" else 301)), room
            assert resumed["payload"]["rooms"][room]["recovered"] is True
        assert [m["payload"]["content"] for m in chats if m["room"] == "r0"][-5:] == [
            f"live {n}" for n in range(5)]
        await bob.quiet()
        assert "bob" in server.hub.connections
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_mid_replay_is_dropped():
    """
    The replay waits for the client to read; one that stops is dropped
    after --outbound-stall, and its resume is let go.
    """
    server = await start_server(**{"history-size": "300", "outbound-stall": "0.5",
                                   "max-rooms": "11"})
    try:
        rooms = [f"r{n}" for n in range(10)]
        for room in rooms:
            await fill(server.backend, room, 300, size=3000)
        carol = await server.connect("carol")
        carol.send({"type": "resume", "payload": {
            "rooms": {room: {"offset": 0} for room in rooms}}})
        await carol.expect("chat_message")
        carol._protocol.transport.pauseProducing()
        await until(lambda: "carol" not in server.hub.connections)
        assert not server.hub.delivery.resuming("carol")
        carol._protocol.transport.resumeProducing()
        await carol.closed()
    finally:
        await stop_server(server)
