"""
Random pairing over real sockets: roles, skips, crossed requests, hangups
and disconnects (docs/protocol.rst).
"""

import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from ..support.pairing import available, pair, partners
from ..support.servers import start_server, stop_server

NO_PEER = {"message": "No peer available at the moment. Please try again later."}


@pytest_twisted.ensureDeferred
async def test_pairing_assigns_roles(server):
    """The requester is impolite, the picked peer polite; each names the other."""
    alice, bob = await server.connect_many("alice", "bob")
    await available(bob)
    mine, theirs = await pair(alice, bob)
    assert mine == {"role": "impolite", "peerId": "bob", "commonInterests": [], "iceServers": []}
    assert theirs == {"role": "polite", "peerId": "alice", "commonInterests": [],
                      "iceServers": []}


@pytest_twisted.ensureDeferred
async def test_nobody_available(server):
    """With an empty pool (or only oneself in it) the answer is no_peer_available."""
    alice = await server.connect("alice")
    reply = await alice.request({"type": "request_random_peer"}, "no_peer_available")
    assert reply["payload"] == NO_PEER
    await available(alice)
    reply = await alice.request({"type": "request_random_peer"}, "no_peer_available")
    assert reply["payload"] == NO_PEER


@pytest_twisted.ensureDeferred
async def test_pairing_takes_both_out_of_the_pool(server):
    """Once paired, neither user can be picked by somebody else."""
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")
    await available(alice, bob)
    await pair(alice, bob)
    reply = await carol.request({"type": "request_random_peer"}, "no_peer_available")
    assert reply["payload"] == NO_PEER


@pytest_twisted.ensureDeferred
async def test_unavailable_leaves_the_pool(server):
    """user_unavailable_webrtc takes the user out of the pool."""
    alice, bob = await server.connect_many("alice", "bob")
    await available(bob)
    bob.send({"type": "user_unavailable_webrtc"})
    await bob.quiet()
    reply = await alice.request({"type": "request_random_peer"}, "no_peer_available")
    assert reply["payload"] == NO_PEER


@pytest_twisted.ensureDeferred
async def test_current_peer_is_excluded(server):
    """currentPeerId is never picked, even when it is the only one in the pool."""
    alice, bob = await server.connect_many("alice", "bob")
    await available(bob)
    reply = await alice.request(
        {"type": "request_random_peer", "payload": {"currentPeerId": "bob"}},
        "no_peer_available",
    )
    assert reply["payload"] == NO_PEER


@pytest_twisted.ensureDeferred
async def test_crossed_request_repeats_the_assignment(server):
    """
    A matched user's request that does not name its peer crossed the
    assignment in flight: it gets its current assign_role again, and the
    pool is not touched.
    """
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")
    await available(bob)
    mine, _ = await pair(alice, bob)
    await available(carol)
    again = await bob.request({"type": "request_random_peer"}, "assign_role")
    assert again["payload"] == {"role": "polite", "peerId": "alice", "commonInterests": [],
                      "iceServers": []}
    repeat = await alice.request({"type": "request_random_peer"}, "assign_role")
    assert repeat["payload"] == mine
    await carol.quiet()


@pytest_twisted.ensureDeferred
async def test_skip_ends_the_match_and_finds_another(server):
    """
    Naming the current peer in currentPeerId skips it: the skipped peer gets a
    hangup, and the requester is paired with somebody else.
    """
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")
    await available(bob, carol)
    alice.send({"type": "request_random_peer"})
    first = (await alice.expect("assign_role"))["payload"]["peerId"]
    skipped, other = (bob, carol) if first == "bob" else (carol, bob)
    await skipped.expect("assign_role")

    alice.send({"type": "request_random_peer", "payload": {"currentPeerId": first}})
    hangup = await skipped.expect("hangup")
    assert hangup["fromUser"] == "alice"
    assert hangup["payload"] == {"reason": "skipped"}
    assert (await alice.expect("assign_role"))["payload"]["peerId"] == other.user
    assert (await other.expect("assign_role"))["payload"]["peerId"] == "alice"


@pytest_twisted.ensureDeferred
async def test_hangup_ends_the_match(server):
    """After a hangup both sides may be paired again, with other people."""
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")
    await available(bob)
    await pair(alice, bob)
    alice.send({"type": "hangup", "toUser": "bob"})
    await bob.expect("hangup")
    assert await server.backend.matchmaking.match_of("alice") is None
    assert await server.backend.matchmaking.match_of("bob") is None
    await available(carol)
    mine, _ = await pair(bob, carol)
    assert mine["peerId"] == "carol"


@pytest_twisted.ensureDeferred
async def test_available_during_a_call_waits_for_its_end(server):
    """A user who says available while in a call enters the pool when the call ends."""
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")
    await available(bob)
    await pair(alice, bob)
    await available(alice)
    await carol.request({"type": "request_random_peer"}, "no_peer_available")
    bob.send({"type": "hangup", "toUser": "alice"})
    await alice.expect("hangup")
    mine, _ = await pair(carol, alice)
    assert mine["peerId"] == "alice"


@pytest_twisted.ensureDeferred
async def test_disconnect_hangs_up_on_the_peer(server):
    """A matched user who disconnects: the peer gets hangup with reason disconnected."""
    alice, bob = await server.connect_many("alice", "bob")
    await available(bob)
    await pair(alice, bob)
    await alice.close()
    hangup = await bob.expect("hangup")
    assert hangup["fromUser"] == "alice" and hangup["toUser"] == "bob"
    assert hangup["payload"] == {"reason": "disconnected"}


@pytest_twisted.ensureDeferred
async def test_disconnect_leaves_the_pool(server):
    """A user who disconnects is never picked afterwards."""
    alice, bob = await server.connect_many("alice", "bob")
    await available(bob)
    await bob.close()
    reply = await alice.request({"type": "request_random_peer"}, "no_peer_available")
    assert reply["payload"] == NO_PEER


@pytest_twisted.ensureDeferred
async def test_client_cannot_send_assign_role(server):
    """assign_role from a client is refused and reaches nobody."""
    alice, bob = await server.connect_many("alice", "bob")
    error = await alice.request(
        {"type": "assign_role", "toUser": "bob", "payload": {"role": "polite", "peerId": "x"}},
        "error",
    )
    assert error["payload"]["code"] == "forbidden"
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_simultaneous_requests_never_double_pair(server):
    """
    40 users in the pool, 20 of them request at once: every requester gets
    an answer, nobody holds two partners, and every pair agrees on who is
    whom and on opposite roles.
    """
    clients = await server.connect_many(*(f"u{n:02d}" for n in range(40)))
    await available(*clients)
    requesters = clients[:20]
    for client in requesters:
        client.send({"type": "request_random_peer"})
    await gatherResults([Deferred.fromCoroutine(_settle(c)) for c in requesters])
    await gatherResults([Deferred.fromCoroutine(_settle(c)) for c in clients[20:]])

    found = partners(clients)
    for client in requesters:
        kinds = {m["type"] for m in client.inbox}
        assert kinds & {"assign_role", "no_peer_available"}, client.user
    assert len(found) >= 20


async def _settle(client):
    """
    Wait until the server has answered everything this client sent so far,
    leaving what arrived in its inbox.
    """
    client.send({"type": "get_room_members", "room": "nowhere"})
    seen = []
    while not seen or seen[-1]["type"] != "error":
        seen.append(await client.next())
    client.inbox[:0] = seen[:-1]


@pytest_twisted.ensureDeferred
async def test_a_user_in_a_call_hears_only_its_partner(server):
    """
    Offers, candidates and hangups from a stranger never reach a user in a
    call: the stranger gets busy, naming its message; the partner's pass
    (issue: security, item 9).
    """
    alice, bob, mallory = await server.connect_many("alice", "bob", "mallory")
    await available(bob)
    await pair(alice, bob)
    for kind in ("webrtc_offer", "webrtc_candidate", "hangup"):
        error = await mallory.request({"type": kind, "toUser": "bob", "messageId": kind,
                                       "payload": {"sdp": "evil"}}, "error")
        assert error["payload"]["code"] == "busy" and error["payload"]["messageId"] == kind
    alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {"sdp": "ok"}})
    offer = await bob.expect("webrtc_offer")
    assert offer["fromUser"] == "alice" and offer["payload"] == {"sdp": "ok"}
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_matched_signaling_passes_only_within_a_pairing():
    """
    With --signaling matched, offers pass between the two users of a
    pairing and nowhere else -- not to a free user, and to an offline one
    with the same answer, so nobody learns who is online.
    """
    server = await start_server(signaling="matched")
    try:
        alice, bob, carol = await server.connect_many("alice", "bob", "carol")
        for target in ("bob", "nobody-here"):
            error = await carol.request(
                {"type": "webrtc_offer", "toUser": target, "payload": {}}, "error")
            assert error["payload"]["code"] == "forbidden"
        await available(bob)
        await pair(alice, bob)
        alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {"sdp": "ok"}})
        assert (await bob.expect("webrtc_offer"))["fromUser"] == "alice"
        bob.send({"type": "webrtc_answer", "toUser": "alice", "payload": {"sdp": "ok"}})
        assert (await alice.expect("webrtc_answer"))["fromUser"] == "bob"
    finally:
        await stop_server(server)
