"""
The hub without a network: recorded connections, a fake clock, and a
backend whose answers a test holds or fails where it needs to control the
order of events or inject a failure.
"""

import json

import pytest
from msgspec import Raw
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from aleatoria.domain.clock import MessageClock
from aleatoria.domain.events import NO_PAYLOAD, CallEnded, CallStarted, Signal
from aleatoria.domain.hub import Rules
from aleatoria.domain.matchmaking import POLITE
from aleatoria.edge.wire import ChatPayload, Envelope, PeerRequest, RecentMessagesQuery, decode
from aleatoria.memory.backend import MemoryBackend
from aleatoria.ops.metrics import Metrics

from ..support.hub import Recorder, connect, make_hub, received


def held_pairs(clock):
    """
    Failure injection: a backend whose pairings happen only when the test
    says so (C{backend.answer(requester)}), as a slow one would answer late.
    """
    backend = MemoryBackend(clock, 3600, 100)
    matchmaking, held = backend.matchmaking, {}
    pair = matchmaking.pair

    def hold(requester, skipped, ask):
        d = Deferred()
        held[requester] = (d, skipped, ask)
        return d

    def answer(requester):
        d, skipped, ask = held.pop(requester)
        pair(requester, skipped, ask).chainDeferred(d)

    matchmaking.pair = hold
    backend.answer = answer
    return backend


@pytest.fixture
def clock():
    return Clock()


def request(hub, conn, skipped=""):
    received(hub, conn, Envelope(type="request_random_peer", payload=PeerRequest(skipped)))


def test_create_times_strictly_increase(clock):
    """Even with a stuck wall clock, every message gets a later createTime."""
    hub = make_hub(clock, message_clock=MessageClock(lambda: 1))
    (alice,) = connect(hub, "alice", room="r")
    for _ in range(3):
        received(hub, alice, Envelope(type="get_rooms"))
    times = [m.createTime for m in alice.take()]
    assert times == sorted(set(times))


def test_crossed_requests_never_double_pair(clock):
    """
    Two requests in flight at once: bob's is served first and takes alice;
    alice's own request then finds her matched and repeats her assignment.
    Nobody else is touched.
    """
    backend = held_pairs(clock)
    hub = make_hub(clock, backend)
    alice, bob, carol = connect(hub, "alice", "bob", "carol")
    received(hub, alice, Envelope(type="user_available_webrtc"))
    request(hub, alice)
    request(hub, bob)
    backend.answer("bob")
    received(hub, carol, Envelope(type="user_available_webrtc"))
    backend.answer("alice")

    no_ice = {"commonInterests": [], "iceServers": []}
    assert [m.payload for m in bob.take()] == [{"role": "impolite", "peerId": "alice", **no_ice}]
    assert [m.payload for m in alice.take()] == [{"role": "polite", "peerId": "bob", **no_ice}] * 2
    assert carol.take() == []
    assert backend.matchmaking.pool_size().result == 1


def test_requester_gone_before_the_answer(clock):
    """
    A requester who disconnects before its pairing is answered: the pairing
    is undone before the peer hears of it, and the peer is back in the pool.
    """
    backend = held_pairs(clock)
    hub = make_hub(clock, backend)
    alice, bob = connect(hub, "alice", "bob")
    received(hub, bob, Envelope(type="user_available_webrtc"))
    request(hub, alice)
    hub.disconnected(alice)
    backend.answer("alice")
    assert bob.take() == [] and alice.take() == []
    assert backend.matchmaking.match_of("bob").result is None
    assert backend.matchmaking.pool_size().result == 1


def test_replaced_connection_closing_late_changes_nothing(clock):
    """The old connection's close, arriving after its replacement, leaves the new one be."""
    hub = make_hub(clock)
    old = Recorder("alice")
    hub.connected(old, "r")
    new = Recorder("alice")
    hub.connected(new, "r")
    assert old.closed == "replaced"
    hub.disconnected(old)
    assert "alice" in hub.connections and hub.members("r") == ["alice"]
    received(hub, old, Envelope(type="get_rooms"))
    assert old.kinds() == []


def test_store_failure_answers_unavailable(clock):
    """A history read that fails is answered with error code unavailable."""
    backend = MemoryBackend(clock, 3600, 100)
    backend.streams.room_history = lambda *args: fail(ConnectionError("store down"))
    hub = make_hub(clock, backend)
    (alice,) = connect(hub, "alice")
    received(hub, alice, Envelope(type="get_recent_messages", room="home-alice",
                                 payload=RecentMessagesQuery()))
    (error,) = alice.take()
    assert error.type == "error" and error.payload["code"] == "unavailable"


def broken_join(room, user):
    """Failure injection: a join that raises instead of returning a Deferred."""
    raise RuntimeError("bug")


def test_handler_exception_is_contained(clock):
    """
    An exception while handling one message answers that client with an error
    and leaves the connection and the hub working.
    """
    backend = MemoryBackend(clock, 3600, 100)
    backend.sessions.join_room = broken_join
    hub = make_hub(clock, backend)
    alice = Recorder("alice")
    with pytest.raises(RuntimeError):
        hub.connected(alice, "r")
    received(hub, alice, Envelope(type="join_room", room="x"))
    assert alice.take()[-1].payload["code"] == "unavailable"
    received(hub, alice, Envelope(type="get_rooms"))
    assert alice.take()[0].type == "rooms_list"


def test_shutdown_releases_sessions_without_waiting_for_clients(clock):
    """
    Stopping closes every client with 1001 and releases every session at
    once -- rooms, pool and calls are clean before any client answers the
    close -- and fires only when every client has gone.
    """
    hub = make_hub(clock)
    alice, bob = connect(hub, "alice", "bob", room="r")
    received(hub, bob, Envelope(type="user_available_webrtc"))
    stopped = hub.stopService()
    assert alice.closed == bob.closed == "going away"
    assert hub.connection_count == 0 and hub.room_names() == []
    assert hub.backend.sessions.room_members("r", 10, "").result == ([], 0, None)
    assert hub.backend.matchmaking.pool_size().result == 0
    hub.disconnected(alice)
    assert not stopped.called
    hub.disconnected(bob)
    assert stopped.called


def test_no_new_clients_while_stopping(clock):
    """A client that arrives during shutdown is closed with 1001 at once."""
    hub = make_hub(clock)
    hub.stopService()
    late = Recorder("late")
    hub.connected(late, "r")
    assert late.closed == "going away"
    assert "late" not in hub.connections


def test_room_broadcast_is_prepared_once_per_body(clock):
    """
    A room message to many members is prepared twice in all -- once for the
    members, once for the sender's echo -- however many members there are.
    """
    prepared = []
    hub = make_hub(clock, prepare=lambda e: prepared.append(e) or e)
    members = connect(hub, *[f"u{n}" for n in range(50)], room="shared")
    for conn in members:
        received(hub, conn, Envelope(type="join_room", room="big"))
    prepared.clear()
    received(hub, members[0], Envelope(type="chat_message", room="big",
                                      payload=ChatPayload("hello")))
    assert [e.incoming for e in prepared] == [True, False]
    assert all(conn.sent[-1].payload == ChatPayload("hello") for conn in members)


REFUSED = [
    pytest.param({"type": "no_such_type"}, "unknown_type", id="unknown-type"),
    pytest.param({"type": ""}, "unknown_type", id="empty-type"),
    pytest.param({"type": "join_room", "room": ""}, "invalid_message", id="empty-room"),
    pytest.param({"type": "join_room", "room": "x" * 101}, "invalid_message", id="long-room"),
    pytest.param({"type": "join_room", "room": "a\nb"}, "invalid_message", id="control-room"),
    pytest.param({"type": "join_room", "room": "gro\u202eup"}, "invalid_message", id="bidi-room"),
    pytest.param({"type": "join_room"}, "invalid_message", id="no-room"),
    pytest.param({"type": "chat_message", "payload": {"content": "x"}}, "invalid_message",
                 id="chat-nowhere"),
    pytest.param({"type": "chat_message", "room": "r", "payload": {"content": ""}},
                 "invalid_message", id="empty-content"),
    pytest.param({"type": "chat_message", "toUser": "bad user", "payload": {"content": "x"}},
                 "invalid_message", id="bad-toUser"),
    pytest.param({"type": "chat_message", "toUser": "alice", "payload": {"content": "x"}},
                 "invalid_message", id="dm-self"),
    pytest.param({"type": "chat_message", "room": "r", "messageId": "m" * 129,
                  "payload": {"content": "x"}}, "invalid_message", id="long-messageId"),
    pytest.param({"type": "get_recent_messages", "room": "r", "payload": {"limit": 0}},
                 "invalid_message", id="zero-limit"),
    pytest.param({"type": "get_recent_messages", "room": "r", "payload": {"before": "yesterday"}},
                 "invalid_message", id="bad-before"),
    pytest.param({"type": "get_direct_messages", "payload": {}}, "invalid_message",
                 id="no-withUser"),
    pytest.param({"type": "get_recent_messages"}, "invalid_message", id="history-no-room"),
    pytest.param({"type": "get_room_members"}, "invalid_message", id="members-no-room"),
    pytest.param({"type": "get_direct_messages", "payload": {"withUser": "bob", "limit": -1}},
                 "invalid_message", id="negative-limit"),
    pytest.param({"type": "webrtc_offer", "toUser": "alice"}, "invalid_message",
                 id="signal-self"),
    pytest.param({"type": "chat_message", "toUser": "system", "payload": {"content": "x"}},
                 "invalid_message", id="dm-to-system"),
]


@pytest.mark.parametrize("message, code", REFUSED)
def test_refused_message_gets_error(clock, message, code):
    """
    A well-formed but unacceptable message (decoded as the protocol decodes
    it) gets error with its code, and nothing else happens: nothing reaches
    the other member, nothing is stored.
    """
    hub = make_hub(clock)
    alice, bob = connect(hub, "alice", "bob")
    for conn in (alice, bob):
        received(hub, conn, Envelope(type="join_room", room="r"))
    alice.take(), bob.take()
    received(hub, alice, decode(json.dumps(message).encode()))
    (error,) = alice.take()
    assert (error.type, error.fromUser, error.toUser) == ("error", "system", "alice")
    assert error.payload["code"] == code and error.payload["error"].endswith(".")
    assert bob.take() == []
    assert hub.backend.streams.room_history("r", 10).result == []


@pytest.mark.parametrize("message, text", [
    pytest.param({"type": "chat_message", "toUser": "alice", "payload": {"content": "x"}},
                 "You cannot message yourself.", id="dm-self"),
    pytest.param({"type": "webrtc_offer", "toUser": "alice"},
                 "You cannot signal yourself (offer).", id="signal-self"),
    pytest.param({"type": "get_direct_messages", "payload": {}},
                 "get_direct_messages needs payload.withUser.", id="no-withUser"),
    pytest.param({"type": "chat_message", "toUser": "bad user", "payload": {"content": "x"}},
                 "toUser 'bad user' is not a user id (1-64 letters, digits or _ - . : @).",
                 id="bad-toUser"),
])
def test_refusals_say_what_is_wrong(clock, message, text):
    """A refusal's sentence names the actual mistake, not a neighbouring one."""
    hub = make_hub(clock)
    (alice,) = connect(hub, "alice")
    alice.take()
    received(hub, alice, decode(json.dumps(message).encode()))
    (error,) = alice.take()
    assert error.payload["error"] == text


def test_only_work_for_other_daemons_is_timed_as_delivery(clock):
    """
    aleatoria_store_seconds{operation="deliver"} times handing a message to
    the peers; a relay to a connection on this daemon is not store work.
    """
    metrics = Metrics()
    hub = make_hub(clock, metrics=metrics)
    alice, bob = connect(hub, "alice", "bob")
    router = hub.router

    def deliveries():
        return metrics.registry.get_sample_value(
            "aleatoria_store_seconds_count", {"operation": "deliver"}) or 0

    def timed(operation):
        return metrics.registry.get_sample_value(
            "aleatoria_store_seconds_count", {"operation": operation}) or 0

    router.received(alice, Envelope(type="webrtc_offer", toUser="bob", payload=Raw(b"{}")))
    assert bob.kinds()[-1] == "webrtc_offer" and deliveries() == 0
    router.received(alice, Envelope(type="webrtc_offer", toUser="carol", payload=Raw(b"{}")))
    assert deliveries() == 1
    # a chat message is store work wherever its addressee is: it is kept, numbered
    router.received(alice, Envelope(type="chat_message", toUser="bob",
                                    payload=ChatPayload("here")))
    assert bob.kinds()[-1] == "chat_message"
    assert (deliveries(), timed("post_direct")) == (1, 1)


def test_joining_a_room_past_the_presence_limit_sends_nothing(clock):
    """
    Past --presence-limit members, a join or a leave costs no message at
    all, however large the room: filling a room is linear, not quadratic.
    """
    prepared = []
    hub = make_hub(clock, prepare=lambda e: prepared.append(e) or e,
                   rules=Rules(presence_limit=10))
    counts = []
    for n in range(300):
        before = len(prepared)
        conn = Recorder(f"u{n}")
        hub.connected(conn, "lobby")
        counts.append(len(prepared) - before)
    assert sum(counts[:10]) == sum(range(10))  # each told the ones before it
    assert counts[10:] == [0] * 290
    hub.disconnected(conn)
    assert len(prepared) == sum(range(10))


def test_signaling_here_never_asks_the_store(clock):
    """
    Between users of one daemon, whom each is matched with is known from
    what the daemon told them (assign_role, hangup): candidates cost no
    store look-up, a stranger is still refused as busy, and after the
    hangup the two are free again.
    """
    backend = MemoryBackend(clock, 3600, 100)
    asked, match_of = [], backend.matchmaking.match_of
    backend.matchmaking.match_of = lambda user: asked.append(user) or match_of(user)
    hub = make_hub(clock, backend)
    alice, bob, eve = connect(hub, "alice", "bob", "eve")
    received(hub, bob, Envelope(type="user_available_webrtc"))
    request(hub, alice)
    for _ in range(10):
        received(hub, alice, Envelope(type="webrtc_candidate", toUser="bob", payload={}))
    assert bob.kinds().count("webrtc_candidate") == 10
    received(hub, eve, Envelope(type="webrtc_candidate", toUser="bob", payload={}))
    assert eve.take()[-1].payload["code"] == "busy"
    received(hub, bob, Envelope(type="hangup", toUser="alice", payload={}))
    received(hub, eve, Envelope(type="webrtc_offer", toUser="bob", payload={}))
    assert bob.take()[-1].type == "webrtc_offer"
    assert asked == []


def test_create_times_read_back_across_second_boundaries():
    """Stamps made from the cached second read back exactly, either side of a boundary."""
    from aleatoria.domain.clock import format_ns, parse_rfc3339

    for ns in (1764496364_999999999, 1764496365_000000000, 1764496364_000000001, 0):
        assert parse_rfc3339(format_ns(ns)) == ns
    assert format_ns(1764496365_000000001) == "2025-11-30T09:52:45.000000001Z"


def test_news_of_a_new_call_overtaking_the_end_of_the_last(clock):
    """
    Another daemon pairs alice with carol before the news that bob's end
    of their call put her back in the pool arrives (both are published
    after their scripts): alice hears her call with bob end first, then
    the new one, and the late end is dropped -- never two partners.
    """
    hub = make_hub(clock)
    alice, bob = connect(hub, "alice", "bob")
    received(hub, alice, Envelope(type="user_available_webrtc"))
    request(hub, bob)
    alice.take()
    hub.deliver_local("alice", CallStarted("alice", "carol", POLITE, "t1"))
    hub.deliver_local("alice", CallEnded("alice", "bob", "disconnected", "t0"))
    assert [(m.type, m.fromUser, m.payload) for m in alice.take()] == [
        ("hangup", "bob", {"reason": "ended"}),
        ("assign_role", "system", {"role": "polite", "peerId": "carol", "commonInterests": [],
                          "iceServers": []})]


def test_the_end_of_the_current_call_still_arrives(clock):
    hub = make_hub(clock)
    alice, bob = connect(hub, "alice", "bob")
    received(hub, alice, Envelope(type="user_available_webrtc"))
    request(hub, bob)
    alice.take()
    hub.deliver_local("alice", CallEnded("alice", "bob", "disconnected", "t0"))
    assert [(m.type, m.payload) for m in alice.take()] == [
        ("hangup", {"reason": "disconnected"})]


def test_an_answer_overtaking_the_hangup_of_the_last_call(clock):
    """
    bob hangs up alice on another daemon; his hangup, relayed through the
    bus, is still on its way when alice's own request is answered with
    carol (the daemon reads its replies and the bus on separate links):
    alice hears the end of bob's call first, and bob's late hangup never.
    """
    backend = MemoryBackend(clock, 3600, 100)
    hub = make_hub(clock, backend)
    alice, carol = connect(hub, "alice", "carol")
    received(hub, alice, Envelope(type="user_available_webrtc"))
    hub.deliver_local("alice", CallStarted("alice", "bob", POLITE, "t0"))
    assert backend.matchmaking.pair("bob", "").result.match.peer == "alice"  # bob's daemon
    backend.matchmaking.hang_up("bob", "alice")  # bob's hangup ended it; its news is late
    received(hub, carol, Envelope(type="user_available_webrtc"))
    alice.take()
    request(hub, alice)
    hub.deliver_local("alice", Signal("hangup", "bob", "alice", NO_PAYLOAD, "", "t1"))
    assert [(m.type, m.fromUser, m.payload.get("reason"), m.payload.get("peerId"))
            for m in alice.take()] == [("hangup", "bob", "ended", None),
                                       ("assign_role", "system", None, "carol")]


def test_a_request_sent_after_a_hangup_waits_for_it(clock):
    """
    The store ends alice's call with bob only after her hangup is relayed;
    her request, sent right after, must not be paired first -- it would be
    answered with the call she had just hung up, which then ends under it.
    """
    backend = MemoryBackend(clock, 3600, 100)
    matchmaking, held = backend.matchmaking, []
    hang_up = matchmaking.hang_up

    def hold(user, peer):
        d = Deferred()
        held.append(lambda: hang_up(user, peer).chainDeferred(d))
        return d

    matchmaking.hang_up = hold
    hub = make_hub(clock, backend)
    alice, bob, carol = connect(hub, "alice", "bob", "carol")
    received(hub, bob, Envelope(type="user_available_webrtc"))
    request(hub, alice)
    received(hub, carol, Envelope(type="user_available_webrtc"))
    alice.take()
    received(hub, alice, Envelope(type="hangup", toUser="bob"))
    request(hub, alice)
    assert alice.take() == []
    held.pop()()
    assert [(m.type, m.payload.get("peerId")) for m in alice.take()] == [
        ("assign_role", "carol")]
    assert len(hub.calls.turns) == 0  # nothing kept once the steps are done
