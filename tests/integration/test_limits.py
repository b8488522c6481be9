"""
Every limit through a real connection (issue: hardening, item 2); those
held without one: tests/unit/test_memory_limits.py.
"""

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from ..support.rawhttp import exchange, upgrade_request
from ..support.rawws import close_code, frame, opened, send_until_closed
from ..support.servers import ORIGIN, start_server, stop_server
from ..support.wsclient import WAIT, connect
from ..unit.test_memory_limits import _said, _wrote


@pytest.fixture
def limited():
    """A daemon started with the given limits; stopped after the test."""
    servers = []

    async def start(**given):
        servers.append(await start_server(**given))
        return servers[-1]

    yield start
    for server in servers:
        pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(server)))


@pytest_twisted.ensureDeferred
async def test_content_length_in_utf8_bytes(limited):
    """Chat content over the limit, counted in UTF-8 bytes, is refused with too_large."""
    server = await limited(**{"max-content-length": "4096"})
    alice = await server.connect("alice", room="r")
    error = await alice.request({"type": "chat_message", "room": "r",
                                 "payload": {"content": "€" * 1366}}, "error")
    assert error["payload"]["code"] == "too_large"
    alice.send({"type": "chat_message", "room": "r", "payload": {"content": "€" * 1365}})
    assert len((await alice.expect("chat_message"))["payload"]["content"]) == 1365
    error = await alice.request({"type": "chat_message", "toUser": "bob",
                                 "payload": {"content": "x" * 4097}}, "error")
    assert error["payload"]["code"] == "too_large"


@pytest_twisted.ensureDeferred
async def test_rooms_per_connection(limited):
    """A connection in its maximum of rooms may not join another (forbidden)."""
    server = await limited(**{"max-rooms": "3"})
    alice = await server.connect("alice")
    for room in ("a", "b"):
        await alice.request({"type": "join_room", "room": room}, "room_joined")
    error = await alice.request({"type": "join_room", "room": "c"}, "error")
    assert error["payload"]["code"] == "forbidden"
    await alice.request({"type": "join_room", "room": "a"}, "room_joined")
    await alice.request({"type": "leave_room", "room": "a"}, "room_left")
    await alice.request({"type": "join_room", "room": "c"}, "room_joined")


@pytest_twisted.ensureDeferred
async def test_rate_limit_then_close(limited):
    """
    Past the burst, messages are refused with rate_limited and retryAfter;
    as many refusals in a row as the burst close the connection with 1008.
    Others are not affected.
    """
    server = await limited(**{"rate-limit": "0.001", "rate-burst": "5"})
    alice, bob = await server.connect_many("alice", "bob")
    for _ in range(5):
        alice.send({"type": "get_rooms"})
    for _ in range(5):
        await alice.expect("rooms_list")
    alice.send({"type": "get_rooms"})
    error = await alice.expect("error")
    assert error["payload"]["code"] == "rate_limited"
    assert error["payload"]["retryAfter"] > 900_000
    for _ in range(5):
        alice.send({"type": "get_rooms"})
    code, reason = await alice.closed()
    assert (code, reason) == (1008, "rate limit exceeded")
    assert [m["payload"]["code"] for m in alice.inbox] == ["rate_limited"] * 4
    await bob.request({"type": "get_rooms"}, "rooms_list")


@pytest_twisted.ensureDeferred
async def test_rate_limit_names_the_request(limited):
    """
    A request dropped over the rate limit is refused naming its messageId,
    so a client settles it as dropped rather than waiting for an answer
    that never comes; a frame with no (valid) messageId, or no JSON, gets
    the refusal without one.
    """
    server = await limited(**{"rate-limit": "0.001", "rate-burst": "3"})
    alice = await server.connect("alice")
    for _ in range(3):
        await alice.request({"type": "get_rooms"}, "rooms_list")
    alice.send({"type": "chat_message", "room": "Lobby", "messageId": "m-1",
                "payload": {"content": "too fast"}})
    alice.send({"type": "get_rooms", "messageId": "x" * 129})
    alice.send("not json")
    errors = [await alice.expect("error") for _ in range(3)]
    assert [e["payload"]["code"] for e in errors] == ["rate_limited"] * 3
    assert [e["payload"].get("messageId") for e in errors] == ["m-1", None, None]
    assert all(e["payload"]["retryAfter"] > 0 for e in errors)


async def _upgrade(server, user, forwarded=None):
    """A raw upgrade request; its HTTP status (101 when accepted)."""
    headers = {b"Connection": [b"Upgrade"], b"Upgrade": [b"websocket"],
               b"Sec-WebSocket-Version": [b"13"],
               b"Sec-WebSocket-Key": [b"dGhlIHNhbXBsZSBub25jZQ=="],
               b"Origin": [ORIGIN.encode()]}
    if forwarded:
        headers[b"X-Forwarded-For"] = [forwarded.encode()]
    response = await Agent(reactor).request(
        b"GET", server.url(f"/ws?userId={user}"), Headers(headers))
    return response.code


@pytest_twisted.ensureDeferred
async def test_connections_per_address(limited):
    """An address with its maximum of open connections is refused with 429."""
    server = await limited(**{"max-connections-per-ip": "2"})
    first, second = await server.connect_many("u1", "u2")
    assert await _upgrade(server, "u3") == 429
    await first.close()
    third = await server.connect("u3")
    assert "u3" in server.hub.connections
    await third.close()
    await second.close()


@pytest_twisted.ensureDeferred
async def test_forwarded_for_only_from_trusted_proxies(limited):
    """
    Behind a trusted proxy each forwarded client has its own count; the
    header from anyone else is ignored.
    """
    server = await limited(**{"max-connections-per-ip": "1", "trusted-proxy": "127.0.0.0/8"})
    clients = [await server.connect(f"c{n}", headers={"X-Forwarded-For": f"203.0.113.{n}"})
               for n in (1, 2)]
    assert server.hub.connection_count == 2
    assert await _upgrade(server, "c3", forwarded="203.0.113.1") == 429
    assert await _upgrade(server, "c4", forwarded="198.51.100.7, 203.0.113.2") == 429
    for client in clients:
        await client.close()

    untrusting = await limited(**{"max-connections-per-ip": "1"})
    await untrusting.connect("d1", headers={"X-Forwarded-For": "203.0.113.1"})
    assert await _upgrade(untrusting, "d2", forwarded="203.0.113.99") == 429


class _Silent(Protocol):
    def connectionMade(self):
        self.factory.made.callback(None)

    def connectionLost(self, reason):
        self.factory.lost.callback(None)


@pytest_twisted.ensureDeferred
async def test_handshake_timeout(limited):
    """
    A client that connects and never finishes the handshake is cut off;
    open WebSockets live on past the same timeout.
    """
    server = await limited(**{"handshake-timeout": "0.5"})
    alice = await server.connect("alice")
    factory = Factory.forProtocol(_Silent)
    factory.made, factory.lost = Deferred(), Deferred()
    await TCP4ClientEndpoint(reactor, "127.0.0.1", server.port).connect(factory)
    await factory.made
    await factory.lost.addTimeout(WAIT, reactor)
    await alice.request({"type": "get_rooms"}, "rooms_list")
    assert server.hub.connection_count == 1


@pytest_twisted.ensureDeferred
async def test_tls_listener(limited, tmp_path):
    """
    --port ssl:... serves wss:// with the given certificate; the daemon's own
    https origin counts as same-origin.
    """
    from ..support.tls import make_ca_and_server

    ca, cert, key = make_ca_and_server(tmp_path, "localhost")
    server = await limited(**{"port": f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
                              "allowed-origin": None})
    alice = await server.connect("alice", ca=ca, origin=f"https://localhost:{server.port}")
    bob = await server.connect("bob", ca=ca, origin=f"https://localhost:{server.port}")
    alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "over tls"}})
    assert (await bob.expect("chat_message"))["payload"] == {"content": "over tls"}
    with pytest.raises(ConnectionError):
        await connect(server.port, "eve", ca=ca, origin=f"http://localhost:{server.port}")


class _Trickle(Protocol):
    """Sends its request a byte at a time, every C{factory.every} seconds, for ever."""

    def connectionMade(self):
        from twisted.internet.task import LoopingCall

        self._bytes = iter(b"GET /ws?userId=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: y" * 10**6)
        self._loop = LoopingCall(lambda: self.transport.write(bytes([next(self._bytes)])))
        self._loop.start(self.factory.every)
        self.factory.made.callback(None)

    def connectionLost(self, reason):
        self._loop.stop()
        self.factory.lost.callback(None)


@pytest_twisted.ensureDeferred
async def test_a_trickled_request_is_cut_off_at_the_deadline(limited):
    """
    Slowloris: a request trickled in a byte at a time, each well within
    the idle timeout, is cut off once --handshake-timeout has passed since
    the connection began (issue: security, item 10).
    """
    server = await limited(**{"handshake-timeout": "1"})
    factory = Factory.forProtocol(_Trickle)
    factory.every, factory.made, factory.lost = 0.2, Deferred(), Deferred()
    await TCP4ClientEndpoint(reactor, "127.0.0.1", server.port).connect(factory)
    await factory.made
    began = reactor.seconds()
    await factory.lost.addTimeout(WAIT, reactor)
    # cut off by the daemon at its deadline (a second), not sooner, not at WAIT
    assert 0.9 <= reactor.seconds() - began < WAIT / 2


@pytest_twisted.ensureDeferred
async def test_pending_handshakes_count_against_the_address(limited):
    """
    Connections that have not finished their handshake count against
    --max-connections-per-ip as open WebSockets do: with two pending, a
    third connection from the address gets 429; once they go, it is let in.
    """
    server = await limited(**{"max-connections-per-ip": "2", "handshake-timeout": "30"})
    pending = []
    for _ in range(2):
        factory = Factory.forProtocol(_Silent)
        factory.made, factory.lost = Deferred(), Deferred()
        pending.append((await TCP4ClientEndpoint(reactor, "127.0.0.1", server.port)
                        .connect(factory), factory))
        await factory.made
    assert await _upgrade(server, "u1") == 429
    for protocol, factory in pending:
        protocol.transport.loseConnection()
        await factory.lost
    for _ in range(100):  # until the daemon has seen them go
        status, _, _ = await deferToThread(
            exchange, server.port, upgrade_request("userId=u1", ORIGIN))
        if " 101 " in status:
            break
        await deferLater(reactor, 0.05, lambda: None)
    assert " 101 " in status


@pytest_twisted.ensureDeferred
async def test_reconnecting_does_not_refill_the_budget(limited):
    """
    The message budget is the user's: spending it, disconnecting and
    coming back does not buy more (issue: security, item 1).
    """
    server = await limited(**{"rate-limit": "0.01", "rate-burst": "5"})
    alice = await server.connect("alice")
    for _ in range(5):
        await alice.request({"type": "get_rooms"}, "rooms_list")
    await alice.close()
    again = await server.connect("alice")
    refused = await again.request({"type": "get_rooms"}, "error")
    assert refused["payload"]["code"] == "rate_limited"


@pytest_twisted.ensureDeferred
async def test_connection_attempts_per_address_are_limited(limited):
    """Past --connect-burst attempts at once from an address, 429 at once."""
    server = await limited(**{"connect-rate": "0.01", "connect-burst": "3"})
    for user in ("a", "b", "c"):
        client = await server.connect(user)
        await client.close()
    status, _, body = await deferToThread(
        exchange, server.port, upgrade_request("userId=d", ORIGIN))
    assert " 429 " in status and b"connection attempts" in body


def _flood(port, frames):
    """Open /ws, send C{frames}, and read the daemon's close (in a thread)."""
    raw = opened(port, "flooder", ORIGIN)
    try:
        send_until_closed(raw, frames)
        return close_code(raw)
    finally:
        raw.close()


@pytest.mark.parametrize("frames, reason", [
    pytest.param([frame(9) for _ in range(3000)], "too many frames", id="pings"),
    pytest.param([frame(1, b"a", fin=False)] + [frame(0, fin=False) for _ in range(3000)],
                 "message in too many fragments", id="empty-continuations"),
    pytest.param([frame(1, b"x", fin=False)] + [frame(0, b"x", fin=False) for _ in range(40)],
                 "message in too many fragments", id="one-byte-fragments"),
])
@pytest_twisted.ensureDeferred
async def test_frames_are_metered(limited, frames, reason):
    """
    A flood of frames that are not messages -- pings, empty continuations,
    a message cut into one-byte fragments -- closes the connection with
    1008 and the reason; everybody else is served on (issue: security,
    item 6).
    """
    server = await limited(**{"rate-limit": "20", "rate-burst": "40"})
    alice = await server.connect("alice")
    assert await deferToThread(_flood, server.port, frames) == (1008, reason)
    await alice.request({"type": "get_rooms"}, "rooms_list")


@pytest_twisted.ensureDeferred
async def test_stored_messages_per_hour(limited):
    """
    Past --stored-per-hour a chat message is refused with quota_exceeded:
    not delivered, not stored (issue: security, item 2).
    """
    server = await limited(**{"stored-per-hour": "3"})
    alice, bob = await server.connect_many("alice", "bob", room="r")
    await alice.expect("user_joined")
    for n in range(3):
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": str(n)}})
        await bob.expect("chat_message")
    error = await alice.request({"type": "chat_message", "room": "r",
                                 "payload": {"content": "one too many"}}, "error",
                                skip=("chat_message",))
    assert error["payload"]["code"] == "quota_exceeded"
    history = await bob.request({"type": "get_recent_messages", "room": "r"}, "recent_messages")
    assert len(history["payload"]["messages"]) == 3
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_new_conversations_per_hour(limited):
    """
    Direct messages to made-up users are stored for them: past
    --conversations-per-hour new addressees, quota_exceeded and nothing
    stored; writing on in a conversation already started is not limited.
    """
    server = await limited(**{"conversations-per-hour": "2"})
    alice = await server.connect("alice")
    for peer in ("ghost1", "ghost2", "ghost1"):
        echo = await alice.request({"type": "chat_message", "toUser": peer,
                                    "payload": {"content": "hello"}}, "chat_message")
        assert echo["toUser"] == peer
    error = await alice.request({"type": "chat_message", "toUser": "ghost3",
                                 "payload": {"content": "hello"}}, "error")
    assert error["payload"]["code"] == "quota_exceeded"
    stored = await alice.request({"type": "get_direct_messages",
                                  "payload": {"withUser": "ghost3"}}, "direct_messages")
    assert stored["payload"]["messages"] == []


@pytest_twisted.ensureDeferred
async def test_rooms_and_their_members_are_bounded(limited):
    """A full room, or one room too many, is refused with quota_exceeded."""
    server = await limited(**{"max-room-members": "2", "max-rooms-total": "3"})
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")  # 3 home rooms
    error = await alice.request({"type": "join_room", "room": "fourth"}, "error")
    assert error["payload"]["code"] == "quota_exceeded"
    await bob.request({"type": "join_room", "room": "home-alice"}, "room_joined")
    error = await carol.request({"type": "join_room", "room": "home-alice"}, "error")
    assert error["payload"]["code"] == "quota_exceeded"
    assert server.hub.members("home-alice") == ["alice", "bob"]


@pytest_twisted.ensureDeferred
async def test_past_the_history_budget_the_oldest_streams_go(limited):
    """
    Past --max-history-bytes the streams written longest ago are evicted --
    rooms, conversations, inboxes alike -- and chat goes on: nobody is
    refused (issue 22, item 4); /metrics counts the evictions.
    """
    server = await limited(**{"max-history-bytes": "5000"})
    alice = await server.connect("alice", room="old")
    body = "x" * 1000
    for _ in range(2):
        await alice.request({"type": "chat_message", "room": "old",
                             "payload": {"content": body}}, "chat_message")
    for ghost in ("ghost1", "ghost2", "ghost3"):
        echo = await alice.request({"type": "chat_message", "toUser": ghost,
                                    "payload": {"content": body}}, "chat_message")
        assert echo["toUser"] == ghost
    old = await alice.request({"type": "get_recent_messages", "room": "old"},
                              "recent_messages")
    assert old["payload"]["messages"] == []
    for ghost in ("ghost1", "ghost2", "ghost3"):
        kept = await alice.request({"type": "get_direct_messages",
                                    "payload": {"withUser": ghost}}, "direct_messages")
        assert [m["payload"]["content"] for m in kept["payload"]["messages"]] == [body]
    page = await Agent(reactor).request(b"GET", server.url("/metrics"))
    from twisted.web.client import readBody

    text = (await readBody(page)).decode()
    assert 'aleatoria_streams_evicted_total{kind="room"} 1.0' in text
    assert 'aleatoria_streams_evicted_total{kind="inbox"} 0.0' in text


@pytest_twisted.ensureDeferred
async def test_the_users_of_one_address_share_a_budget(limited):
    """
    Many made-up users from one address cannot multiply the rate: past
    --address-burst messages together, rate_limited (issue: security, item 1).
    """
    server = await limited(**{"address-rate": "0.01", "address-burst": "4"})
    alice, bob = await server.connect_many("alice", "bob")
    for client in (alice, bob, alice, bob):
        await client.request({"type": "get_rooms"}, "rooms_list")
    refused = await alice.request({"type": "get_rooms"}, "error")
    assert refused["payload"]["code"] == "rate_limited"


@pytest_twisted.ensureDeferred
async def test_cut_offs_from_one_address_are_summed_up(limited):
    """
    Slow connections cut off at the deadline are logged once per address
    and window, not one line each: a slowloris cannot flood the log.
    """
    from twisted.logger import formatEvent, globalLogPublisher

    server = await limited(**{"handshake-timeout": "0.5"})
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        factories = []
        for _ in range(5):
            factory = Factory.forProtocol(_Silent)
            factory.made, factory.lost = Deferred(), Deferred()
            await TCP4ClientEndpoint(reactor, "127.0.0.1", server.port).connect(factory)
            factories.append(factory)
        for factory in factories:
            await factory.lost.addTimeout(WAIT, reactor)
    finally:
        globalLogPublisher.removeObserver(events.append)
    cut = [formatEvent(e) for e in events if "Cut off" in formatEvent(e)]
    assert cut == ["Cut off 127.0.0.1: no WebSocket within 0.5 s"], cut


def _redis_counts(redis):
    """Commands Redis ran (INFO itself left out) and bytes it sent, since CONFIG RESETSTAT."""
    import re

    sent = int(re.search(r"total_net_output_bytes:(\d+)", redis.raw("INFO", "stats"))[1])
    commands = sum(int(m[2]) for m in re.finditer(
        r"cmdstat_([\w|]+):calls=(\d+)", redis.raw("INFO", "commandstats"))
        if m[1] not in ("info", "config|resetstat"))
    return commands, sent


@pytest_twisted.ensureDeferred
async def test_a_page_of_members_costs_what_it_holds(own_redis):
    """
    get_room_members in a room of 1 000 costs Redis what the page holds, not
    the room (issue 22, item 7): counted in the commands Redis runs and the
    bytes it sends back for a page of 10.
    """
    from ..support.servers import redis_daemon

    server = await redis_daemon(own_redis.port)
    try:
        for n in range(999):
            await server.backend.sessions.claim(f"member{n:04}")
            await server.backend.sessions.join_room("big", f"member{n:04}")
        alice = await server.connect("alice", room="big")
        await deferToThread(own_redis.raw, "CONFIG", "RESETSTAT")
        page = await alice.request({"type": "get_room_members", "room": "big",
                                    "payload": {"limit": 10, "after": "member0499"}},
                                   "room_members")
        commands, sent = await deferToThread(_redis_counts, own_redis)
        assert page["payload"] == {
            "room": "big", "count": 1000, "next": "member0509",
            "members": [f"member{n:04}" for n in range(500, 510)]}
        assert commands <= 20, commands
        assert sent <= 1000, sent
    finally:
        await stop_server(server)


def _used_memory(redis):
    import re

    return int(re.search(r"used_memory:(\d+)", redis.raw("INFO", "memory"))[1])


def _baseline(redis):
    """
    What an empty Redis uses, without the latency histogram Redis 7 makes
    for each command the first time it runs (tens of KB each, for good).
    """
    redis.raw("CONFIG", "SET", "latency-tracking", "no")
    return _used_memory(redis)


@pytest_twisted.ensureDeferred
async def test_redis_evicts_the_streams_written_longest_ago(own_redis):
    """
    On Redis, a weighing past the budget (Redis's used_memory) evicts the
    streams written longest ago -- every key of each -- until under it, and
    the store is not full; an evicted room written again begins a new
    epoch. Only with nothing left to evict is the store full (issue 22,
    item 4).
    """
    from twisted.logger import capturedLogs

    from aleatoria.daemon.backends import make_backend
    from aleatoria.ops.reporting import Reporter

    from ..support.servers import redis_config, started

    budget = await deferToThread(_baseline, own_redis) + 1_200_000

    def backend_of(budget):
        return started(make_backend(redis_config(own_redis.port, **{
            "max-history-bytes": str(budget)}), reactor, Reporter(clock=reactor).daemon))

    backend = await backend_of(budget)
    streams = backend.streams
    try:
        body = "x" * 4000
        await streams.post_room(_said("room0", body), 0)
        first = (await streams.room_history("room0", 1))[0]
        for n in range(1, 40):
            await streams.post_room(_said(f"room{n}", body, n=n), n)
        for n in range(60):
            await streams.post_direct(_wrote("alice", f"ghost{n}", body, n))
        assert await deferToThread(_used_memory, own_redis) > budget + 600_000  # 1.9 MB
        with capturedLogs() as events:
            await backend.budget.weigh()
        (told,) = [e for e in events if e["log_format"].startswith("Evicted")]
        assert told["streams"] == sum(backend.evictions.total.values()) > 60
        # within what the clients' buffers, which come and go, may add
        assert await deferToThread(_used_memory, own_redis) <= budget + 50_000
        assert not streams.full()
        assert backend.evictions.total["room"] == 40
        assert backend.evictions.total["direct"] > 10 and backend.evictions.total["inbox"] > 10
        keys = ["room:messages:room0", "room:offset:room0", "room:epoch:room0",
                "room:times:room0", "dm:alice:ghost0", "inbox:ghost0", "inbox:epoch:ghost0",
                "inbox:offset:ghost0", "inbox:latest:ghost0", "inbox:conversations:ghost0",
                "inbox:unread:ghost0"]
        assert await deferToThread(own_redis.raw, "EXISTS", *keys) == "0"
        assert len(await streams.direct_history("ghost59", "alice", 10)) == 1
        assert (await streams.inbox_since("alice", 0, "")).last == 60
        await streams.post_room(_said("room0", "again", n=99), 99)
        again = (await streams.room_history("room0", 1))[0]
        assert again.offset == 1 and again.epoch != first.epoch
    finally:
        await backend.stopService()

    with capturedLogs() as events:
        backend = await backend_of(1)
        await backend.budget.weigh()
        await backend.budget.weigh()
    try:
        assert backend.streams.full()
        assert len([e for e in events if "no history left" in e["log_format"]]) == 1
        assert await deferToThread(own_redis.raw, "EXISTS", "room:messages:room0",
                                   "dm:alice:ghost59", "inbox:alice", "streams") == "0"
    finally:
        await backend.stopService()


@pytest_twisted.ensureDeferred
async def test_redis_forgets_expired_streams(own_redis):
    """The streams Redis expired leave the index of streams at the next write."""
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from aleatoria.ops.reporting import Reporter
    from aleatoria.redis.backend import RedisBackend

    from ..support.servers import started

    backend = await started(RedisBackend(
        (TCP4ClientEndpoint(reactor, "127.0.0.1", own_redis.port), "here", {"timeout": 2.0}),
        reactor, ttl=1, history_size=10, node_ttl=60, report=Reporter(clock=reactor).daemon))
    streams = backend.streams
    try:
        await streams.post_room(_said("gone", "soon"), 1)
        await streams.post_direct(_wrote("alice", "bob", "soon"))
        await own_redis.becomes("0", "EXISTS", "room:messages:gone", "inbox:alice")
        await streams.post_room(_said("here", "now", n=2), 2)
        assert await deferToThread(own_redis.raw, "ZRANGE", "streams", "0", "-1") == "room:here"
    finally:
        await backend.stopService()


@pytest_twisted.ensureDeferred
async def test_one_user_cannot_fill_the_history_for_everybody(own_redis):
    """
    The attack of issue 22, item 4: one user writes 4 000-byte direct
    messages to made-up users far past --max-history-bytes. Nobody is
    refused -- the attacker neither -- and once weighed, Redis is back
    under the budget, the oldest conversations gone and the newest kept.
    """
    from ..support.servers import redis_daemon

    budget = await deferToThread(_baseline, own_redis) + 1_500_000
    server = await redis_daemon(own_redis.port, **{"max-history-bytes": str(budget)})
    try:
        mallory, bob = await server.connect_many("mallory", "bob")
        body = "x" * 4000
        for n in range(250):
            echo = await mallory.request({"type": "chat_message", "toUser": f"made-up{n}",
                                          "payload": {"content": body}}, "chat_message")
            assert echo["toUser"] == f"made-up{n}"
            if n % 50 == 49:
                await server.backend.budget.weigh()
                await bob.request({"type": "chat_message", "toUser": "mallory",
                                   "payload": {"content": "still here"}}, "chat_message")
                await mallory.expect("chat_message")
        await server.backend.budget.weigh()
        # within what the clients' buffers, which come and go, may add
        assert await deferToThread(_used_memory, own_redis) <= budget + 50_000
        oldest, newest = [(await mallory.request(
            {"type": "get_direct_messages", "payload": {"withUser": user}},
            "direct_messages"))["payload"]["messages"] for user in ("made-up0", "made-up249")]
        assert (oldest, len(newest)) == ([], 1)
        assert server.backend.evictions.total["direct"] > 100
    finally:
        await stop_server(server)
