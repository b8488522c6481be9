"""
The grace of a call on the hub with a fake clock (issue #25, section 2):
to the millisecond, the partner of a user who lost its connection hears
nothing within the grace, and the call's end just after it.
"""

import pytest
from msgspec import UNSET
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from aleatoria.domain.refusals import StoreUnavailable
from aleatoria.edge.wire import Envelope, PeerRequest
from aleatoria.memory.backend import LAPSE_SECONDS, MemoryBackend

from ..support.hub import Recorder, connect, make_hub, received

GRACE = 20


@pytest.fixture
def clock():
    return Clock()


def in_a_call(clock):
    backend = MemoryBackend(clock, 3600, 100, call_grace=GRACE)
    backend.startService()
    hub = make_hub(clock, backend)
    alice, bob = connect(hub, "alice", "bob")
    received(hub, bob, Envelope(type="user_available_webrtc"))
    received(hub, alice, Envelope(type="request_random_peer", payload=PeerRequest()))
    alice.take()
    bob.take()
    return hub, alice, bob


def seen(conn):
    """What C{conn} was sent (an assign_role's iceServers aside)."""
    return [(m.type, m.fromUser, _without_ice(m.payload)) for m in conn.take()]


def _without_ice(payload):
    if isinstance(payload, dict):
        return {k: v for k, v in payload.items() if k != "iceServers"}
    return payload


def test_the_partner_hears_of_a_lost_user_only_when_the_grace_is_over(clock):
    hub, alice, bob = in_a_call(clock)
    hub.disconnected(bob, clean=False)
    clock.pump([LAPSE_SECONDS] * int((GRACE - LAPSE_SECONDS) / LAPSE_SECONDS))
    assert alice.take() == []
    clock.pump([LAPSE_SECONDS] * 2)
    assert seen(alice) == [("hangup", "bob", {"reason": "disconnected"})]


def test_a_user_back_at_the_end_of_the_grace_keeps_its_call(clock):
    hub, alice, bob = in_a_call(clock)
    hub.disconnected(bob, clean=False)
    clock.pump([LAPSE_SECONDS] * int((GRACE - LAPSE_SECONDS) / LAPSE_SECONDS))
    back = Recorder("bob")
    hub.connected(back, "home-bob")
    assert seen(back) == [("assign_role", "system",
                           {"role": "polite", "peerId": "alice", "commonInterests": [],
                            "resumed": True})]
    assert seen(alice) == [("peer_reconnected", "system", {"peerId": "bob"})]
    clock.pump([LAPSE_SECONDS] * 8 * GRACE)
    assert alice.take() == [] and back.take() == []


def test_signaling_inside_the_grace_says_when_it_ends(clock):
    hub, alice, bob = in_a_call(clock)
    hub.disconnected(bob, clean=False)
    clock.advance(5)
    received(hub, alice, Envelope(type="webrtc_offer", toUser="bob"))
    (error,) = alice.take()
    assert error.payload["code"] == "user_offline"
    assert error.payload["retryAfter"] == (GRACE - 5) * 1000


def test_a_clean_close_ends_the_call_at_once(clock):
    hub, alice, bob = in_a_call(clock)
    hub.disconnected(bob)
    assert seen(alice) == [("hangup", "bob", {"reason": "disconnected"})]


def test_no_grace_ends_the_call_at_once(clock):
    hub = make_hub(clock, MemoryBackend(clock, 3600, 100))
    alice, bob = connect(hub, "alice", "bob")
    received(hub, bob, Envelope(type="user_available_webrtc"))
    received(hub, alice, Envelope(type="request_random_peer", payload=PeerRequest()))
    alice.take()
    hub.disconnected(bob, clean=False)
    assert seen(alice) == [("hangup", "bob", {"reason": "disconnected"})]


def test_a_user_back_as_its_partner_hangs_up_hears_the_hangup(clock):
    """
    bob hangs up on alice, away, just as she comes back: the match ends
    first and the hangup is relayed after, so alice -- told her call
    again meanwhile -- hears it end, and never believes in a dead call.
    """
    hub, alice, bob = in_a_call(clock)
    hub.disconnected(alice, clean=False)
    matchmaking, pending = hub.backend.matchmaking, []
    hang_up = matchmaking.hang_up

    def slow_hang_up(user, peer):
        d = Deferred()
        pending.append(lambda: hang_up(user, peer).chainDeferred(d))
        return d

    matchmaking.hang_up = slow_hang_up
    received(hub, bob, Envelope(type="hangup", toUser="alice"))
    back = Recorder("alice")
    hub.connected(back, "home-alice")
    pending.pop()()
    assert seen(back) == [
        ("assign_role", "system", {"role": "impolite", "peerId": "bob", "commonInterests": [],
                                   "resumed": True}),
        ("hangup", "bob", UNSET)]
    assert seen(bob) == [("peer_reconnected", "system", {"peerId": "alice"})]
    assert hub.calls.partner("alice") is None


def test_a_hangup_in_an_outage_is_relayed_and_answered_unavailable(clock):
    """
    The store cannot end the match: the partner hears the hangup all the
    same (signaling is live traffic), and the sender is told to send it again.
    """
    hub, alice, bob = in_a_call(clock)
    hub.backend.matchmaking.hang_up = lambda user, peer: fail(StoreUnavailable())
    received(hub, bob, Envelope(type="hangup", toUser="alice", messageId="h1"))
    assert seen(alice) == [("hangup", "bob", UNSET)]
    (error,) = bob.take()
    assert (error.payload["code"], error.payload["messageId"]) == ("unavailable", "h1")
