"""
How long a call lasted, as the domain tells it for match.ended webhooks
(L{HungUp} and L{CallOver} C{seconds}): from the pairing as the daemon of
either user saw it, on a fake clock; C{None} when neither is here.
"""

import pytest
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from aleatoria.domain.clock import MessageClock
from aleatoria.domain.events import CallOver, HungUp
from aleatoria.domain.ports import IObserver
from aleatoria.edge.wire import Envelope, PeerRequest

from ..support.hub import connect, make_hub, received

SECOND = 10**9


@implementer(IObserver)
class Calls:
    """A hub on a fake wall clock, and the ends of calls it tells."""

    def __init__(self):
        self.now = 1_800_000_000 * SECOND
        self.hub = make_hub(Clock(), message_clock=MessageClock(lambda: self.now))
        self.facts = []
        self.hub.observe(self)

    def happened(self, fact):
        if isinstance(fact, HungUp | CallOver):
            self.facts.append(fact)

    def later(self, seconds):
        self.now += int(seconds * SECOND)

    def available(self, conn):
        received(self.hub, conn, Envelope(type="user_available_webrtc"))

    def request(self, conn, skipped=""):
        received(self.hub, conn,
                 Envelope(type="request_random_peer", payload=PeerRequest(skipped)))


@pytest.fixture
def calls():
    return Calls()


def test_the_calls_observe_as_observers_do(calls):
    """The test observes the hub as the daemon's observers do, through IObserver."""
    assert verifyObject(IObserver, calls)


def test_a_hangup_by_either_side(calls):
    """The requester, or the peer it was paired with, hangs up: the call's length."""
    alice, bob = connect(calls.hub, "alice", "bob")
    calls.available(bob)
    calls.request(alice)
    calls.later(7.25)
    received(calls.hub, alice, Envelope(type="hangup", toUser="bob", payload={}))
    calls.available(bob)
    calls.request(alice)
    calls.later(2)
    received(calls.hub, bob, Envelope(type="hangup", toUser="alice", payload={}))
    assert calls.facts == [HungUp("alice", "bob", 7.25), HungUp("bob", "alice", 2.0)]


def test_a_skip_and_a_disconnect(calls):
    """A skip ends the call the requester was in; a disconnect the leaver's."""
    alice, bob, carol = connect(calls.hub, "alice", "bob", "carol")
    calls.available(bob)
    calls.request(alice)
    calls.later(3)
    calls.available(carol)
    calls.request(alice, "bob")
    calls.later(4.5)
    calls.hub.disconnected(carol)
    assert calls.facts == [CallOver("bob", "alice", "skipped", 3.0),
                           CallOver("alice", "carol", "disconnected", 4.5)]


def test_a_reaped_peer_and_a_call_nobody_here_saw_start(calls):
    """
    A dead daemon's user is reaped here: its partner here knows when their
    call started. A call neither of whose users is here has no length.
    """
    alice, bob = connect(calls.hub, "alice", "bob")
    calls.available(bob)
    calls.request(alice)
    calls.later(60)
    calls.hub.reaped("bob", [], "alice")
    calls.hub.calls.end("zoe", "yann", "disconnected")
    assert calls.facts == [CallOver("alice", "bob", "disconnected", 60.0),
                           CallOver("zoe", "yann", "disconnected", None)]


def test_a_reason_the_user_is_not_told(calls):
    """
    A call ended for a reason its user must not hear (a block): the fact
    says why, the user hears what it is told.
    """
    alice, bob = connect(calls.hub, "alice", "bob")
    calls.available(bob)
    calls.request(alice)
    calls.later(5)
    started = calls.hub.calls.forget("alice")
    calls.hub.calls.end("bob", "alice", "blocked", started, told="ended")
    assert calls.facts == [CallOver("bob", "alice", "blocked", 5.0)]
    (hangup,) = [m for m in bob.sent if m.type == "hangup"]
    assert hangup.payload == {"reason": "ended"}
